locals {
  # The settings are not secret; the store URL is fetched at boot with the instance's role.
  user_data = <<-EOT
    #!/bin/bash
    set -euo pipefail
    install -d -m 0700 /etc/kafka-fleet
    cat > /etc/kafka-fleet/fleet-manager.env <<'ENV'
    %{for k, v in var.settings~}
    ${k}=${v}
    %{endfor~}
    ENV
    umask 077
    printf 'FLEET_DATABASE_URL=%s\n' "$(aws secretsmanager get-secret-value --secret-id '${var.database_secret_arn}' --query SecretString --output text)" \
      > /etc/kafka-fleet/store.env
    systemctl enable --now fleet-manager
  EOT
}

resource "aws_instance" "host" {
  count = var.host_count

  ami                    = var.image_id
  instance_type          = var.instance_type
  subnet_id              = var.subnet_ids[var.zones[count.index % length(var.zones)]]
  vpc_security_group_ids = [var.security_group_id]
  iam_instance_profile   = var.instance_profile
  user_data              = local.user_data
  ebs_optimized          = true
  monitoring             = var.detailed_monitoring

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = 30
    encrypted   = true
    kms_key_id  = var.kms_key_arn
  }

  tags = merge(var.tags, { Name = "${var.name}-fleet-manager-${count.index + 1}" })
}
