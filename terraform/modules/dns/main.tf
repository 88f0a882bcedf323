# The private zone for zk1..zkN, brokers (broker-<id>.<cluster>.<domain>, written by
# kafka-bootstrap) and clusters (<cluster>.<domain>).
resource "aws_route53_zone" "this" {
  name    = var.domain
  comment = "kafka-fleet: ZooKeeper, broker and cluster names"
  vpc {
    vpc_id = var.vpc_id
  }
  tags = var.tags
}

resource "aws_route53_record" "zookeeper" {
  #checkov:skip=CKV2_AWS_23:points at the fixed addresses of the ZooKeeper interfaces (modules/topology), which outlive instances
  for_each = { for n in var.zookeeper_nodes : n.name => n }

  zone_id = aws_route53_zone.this.zone_id
  name    = each.value.fqdn
  type    = "A"
  ttl     = 60
  records = [each.value.private_ip]
}
