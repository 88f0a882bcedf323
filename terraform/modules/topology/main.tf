locals {
  zone_count = length(var.zones)

  # One private subnet per zone, from the low end of the VPC block: 4 extra bits leave room for
  # 16 subnets (zones, then future public or database subnets) of a /20 in a /16.
  subnet_bits = 4
  private_subnets = {
    for index, zone in var.zones : zone => {
      index = index
      cidr  = cidrsubnet(var.vpc_cidr, local.subnet_bits, index)
    }
  }

  # ZooKeeper nodes round-robin over the zones: 5 over 3 zones is 2/2/1, so no zone holds a
  # majority and losing any one zone leaves a quorum. Each node's address is fixed inside its
  # zone's subnet (.10, .11, ... of the subnet) so that it survives instance replacement.
  zookeeper_nodes = [
    for index in range(var.zookeeper_count) : {
      id         = index + 1
      name       = "zk${index + 1}"
      fqdn       = "zk${index + 1}.${var.domain}"
      zone       = var.zones[index % local.zone_count]
      private_ip = cidrhost(local.private_subnets[var.zones[index % local.zone_count]].cidr, 10 + floor(index / local.zone_count))
    }
  ]
  zookeeper_per_zone = { for zone in var.zones : zone => length([for n in local.zookeeper_nodes : n if n.zone == zone]) }
  quorum             = floor(var.zookeeper_count / 2) + 1
  zookeeper_connect  = join(",", [for n in local.zookeeper_nodes : "${n.fqdn}:2181"])

  zookeeper_config = templatefile("${path.module}/templates/zoo.cfg.tftpl", { nodes = local.zookeeper_nodes })
  zookeeper_user_data = {
    for n in local.zookeeper_nodes : n.name => templatefile("${path.module}/templates/zookeeper-user-data.sh.tftpl", {
      myid   = n.id
      config = local.zookeeper_config
      fqdn   = n.fqdn
    })
  }

  # Names a host of a family may register (bootstrap's Route53 names: broker-<id>.<cluster>.<zone>
  # and <cluster>.<zone>; a KRaft controller's controller-<id>.<cluster>.<zone>), for the family's
  # own cluster and its builds <family>-<n>.
  broker_record_patterns = {
    for c in var.clusters : c => [
      "${c}.${var.domain}",
      "broker-*.${c}.${var.domain}",
      "controller-*.${c}.${var.domain}",
      "${c}-*.${var.domain}",
      "broker-*.${c}-*.${var.domain}",
      "controller-*.${c}-*.${var.domain}",
    ]
  }
}
