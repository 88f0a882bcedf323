# What the fleet manager launches broker hosts with. It supplies, per launch, the subnet of the
# zone, the cluster's instance profile, its tags and the user-data that runs kafka-bootstrap; the
# template holds what is the same for every broker host.
resource "aws_launch_template" "broker" {
  name_prefix            = "${var.name}-broker-"
  description            = "kafka-fleet broker hosts (launched by the fleet manager)"
  image_id               = var.image_id
  instance_type          = var.instance_type
  ebs_optimized          = true
  update_default_version = true
  vpc_security_group_ids = [var.security_group_id]

  # Launched without the fleet manager's user-data, a host has no cluster: it says so and stops.
  user_data = base64encode(<<-EOT
    #!/bin/bash
    echo "kafka-fleet: broker hosts are launched by the fleet manager, which supplies their user-data" >&2
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
      volume_size           = var.data_volume_size_gib
      encrypted             = true
      kms_key_id            = var.kms_key_arn
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(var.tags, { "fleet:managed-by" = "kafka-fleet" })
  }

  tags = var.tags
}
