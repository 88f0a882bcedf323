# What the fleet manager launches Kafka hosts with: one template per role (brokers; KRaft
# controllers, whose volume holds only the metadata log). It supplies, per launch, the subnet of
# the zone, the cluster's instance profile, its tags and the user-data that runs kafka-bootstrap
# in the host's role; the template holds what is the same for every host of the role.
locals {
  roles = {
    broker = {
      instance_type    = var.instance_type
      data_volume_size = var.data_volume_size_gib
      description      = "kafka-fleet broker hosts (launched by the fleet manager)"
    }
    controller = {
      instance_type    = var.controller_instance_type
      data_volume_size = var.controller_data_volume_size_gib
      description      = "kafka-fleet KRaft controller hosts (launched by the fleet manager)"
    }
  }
}

moved {
  from = aws_launch_template.broker
  to   = aws_launch_template.host["broker"]
}

resource "aws_launch_template" "host" {
  for_each = local.roles

  name_prefix            = "${var.name}-${each.key}-"
  description            = each.value.description
  image_id               = var.image_id
  instance_type          = each.value.instance_type
  ebs_optimized          = true
  update_default_version = true
  vpc_security_group_ids = [var.security_group_id]

  # Launched without the fleet manager's user-data, a host has no cluster: it says so and stops.
  user_data = base64encode(<<-EOT
    #!/bin/bash
    echo "kafka-fleet: ${each.key} hosts are launched by the fleet manager, which supplies their user-data" >&2
    shutdown -h now
  EOT
  )

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_type           = "gp3"
      volume_size           = 20
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      delete_on_termination = true
    }
  }

  block_device_mappings {
    device_name = "/dev/sdf"
    ebs {
      volume_type           = "gp3"
      volume_size           = each.value.data_volume_size
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { "fleet:managed-by" = "kafka-fleet", "fleet:role" = each.key })
  }

  tags = merge(var.tags, { "fleet:role" = each.key })
}
