# Five (or N) nodes, each with an address that survives replacing its instance: a network
# interface created on its own with a fixed private IP, attached as the instance's second
# interface (a primary interface cannot be detached, a secondary one moves). When the instance is
# replaced, the attachment is removed and the interface (address, security group) is attached to
# the new one, so the ensemble's config and clients' connect strings never change. An Elastic IP
# would do the same for a public address; the ensemble has no business on one.
resource "aws_network_interface" "node" {
  for_each = { for n in var.nodes : n.name => n }

  subnet_id       = var.subnet_ids[each.value.zone]
  private_ips     = [each.value.private_ip]
  security_groups = [var.security_group_id]
  description     = "${var.name} ${each.key} (fixed address)"
  tags            = merge(var.tags, { Name = "${var.name}-${each.key}" })
}

# The transaction log on an SSD volume of its own: fsync latency is ZooKeeper's latency, and
# sharing a device with snapshots or the OS makes it jitter. The volume outlives the instance.
resource "aws_ebs_volume" "txlog" {
  for_each = { for n in var.nodes : n.name => n }

  availability_zone = each.value.zone
  type              = "gp3"
  size              = var.txlog_volume_size_gib
  iops              = var.txlog_iops
  encrypted         = true
  kms_key_id        = var.kms_key_arn
  tags              = merge(var.tags, { Name = "${var.name}-${each.key}-txlog" })
}

resource "aws_instance" "node" {
  #checkov:skip=CKV2_AWS_41:ZooKeeper nodes call no AWS API; a role would only be a credential to steal
  for_each = { for n in var.nodes : n.name => n }

  ami                    = var.image_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[each.value.zone]
  vpc_security_group_ids = [var.security_group_id]
  user_data              = var.user_data[each.key]
  ebs_optimized          = true
  monitoring             = var.detailed_monitoring

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 20
    encrypted   = true
    kms_key_id  = var.kms_key_arn
  }

  tags = merge(var.tags, { Name = "${var.name}-${each.key}", "fleet:zookeeper-id" = tostring(each.value.id) })
}

resource "aws_network_interface_attachment" "node" {
  for_each = { for n in var.nodes : n.name => n }

  instance_id          = aws_instance.node[each.key].id
  network_interface_id = aws_network_interface.node[each.key].id
  device_index         = 1
}

resource "aws_volume_attachment" "txlog" {
  for_each = { for n in var.nodes : n.name => n }

  device_name = "/dev/sdf"
  volume_id   = aws_ebs_volume.txlog[each.key].id
  instance_id = aws_instance.node[each.key].id
}
