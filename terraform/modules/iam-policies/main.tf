# The fleet's IAM policy documents, built with jsonencode in a provider-free module so that
# `terraform test` can hold them to least privilege without AWS. Reads that IAM cannot scope
# (Describe*, ListHostedZonesByName) are the only statements on "*".

locals {
  arn_prefix = "arn:${var.partition}:ec2:${var.region}:${var.account_id}"
  zone_arn   = "arn:${var.partition}:route53:::hostedzone/${var.zone_id}"
  secret_arn = "arn:${var.partition}:secretsmanager:${var.region}:${var.account_id}:secret:${var.host_secret_prefix}/hosts"
  tag_key    = var.managed_by_tag.key
  tag_value  = var.managed_by_tag.value
  assume_by_ec2 = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "Ec2AssumesRole"
      Effect    = "Allow"
      Principal = { Service = "ec2.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  # A broker host: register its own cluster's names (UPSERT only), read its own family's host
  # token (the cluster and its builds <family>-<n>; the random suffix Secrets Manager adds to
  # every ARN is what the trailing * covers), and read instances.
  broker = {
    for family, patterns in var.broker_record_patterns : family => jsonencode({
      Version = "2012-10-17"
      Statement = [
        {
          Sid      = "UpsertOwnClusterRecords"
          Effect   = "Allow"
          Action   = ["route53:ChangeResourceRecordSets"]
          Resource = [local.zone_arn]
          Condition = {
            "ForAllValues:StringEquals" = { "route53:ChangeResourceRecordSetsActions" = ["UPSERT"] }
            "ForAllValues:StringLike"   = { "route53:ChangeResourceRecordSetsNormalizedRecordNames" = patterns }
          }
        },
        {
          Sid      = "FollowChanges"
          Effect   = "Allow"
          Action   = ["route53:GetChange"]
          Resource = ["arn:${var.partition}:route53:::change/*"]
        },
        {
          Sid      = "ReadOwnFamilyHostToken"
          Effect   = "Allow"
          Action   = ["secretsmanager:GetSecretValue"]
          Resource = ["${local.secret_arn}/${family}/fleet-api-token-*", "${local.secret_arn}/${family}-*/fleet-api-token-*"]
        },
        {
          Sid      = "ReadOnlyUnscoped"
          Effect   = "Allow"
          Action   = ["route53:ListHostedZonesByName", "ec2:DescribeInstances"]
          Resource = ["*"]
        },
      ]
    })
  }

  # The fleet manager: launch and terminate only instances carrying its tag, pass only broker
  # roles, manage records in the fleet's zone, read its database secret.
  fleet_manager = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "LaunchOnlyTaggedInstances"
        Effect   = "Allow"
        Action   = ["ec2:RunInstances"]
        Resource = ["${local.arn_prefix}:instance/*"]
        Condition = {
          StringEquals              = { "aws:RequestTag/${local.tag_key}" = local.tag_value }
          "ForAllValues:StringLike" = { "aws:TagKeys" = ["fleet:*", "Name"] }
        }
      },
      {
        Sid    = "LaunchFromFleetResources"
        Effect = "Allow"
        Action = ["ec2:RunInstances"]
        Resource = concat(
          [for t in var.launch_template_ids : "${local.arn_prefix}:launch-template/${t}"],
          [for s in var.subnet_ids : "${local.arn_prefix}:subnet/${s}"],
          [for g in var.broker_security_group_ids : "${local.arn_prefix}:security-group/${g}"],
          [
            "${local.arn_prefix}:network-interface/*",
            "${local.arn_prefix}:volume/*",
            "arn:${var.partition}:ec2:${var.region}::image/*",
          ],
        )
      },
      {
        Sid      = "TagOnlyAtLaunch"
        Effect   = "Allow"
        Action   = ["ec2:CreateTags"]
        Resource = ["${local.arn_prefix}:instance/*", "${local.arn_prefix}:volume/*", "${local.arn_prefix}:network-interface/*"]
        Condition = {
          StringEquals = { "ec2:CreateAction" = "RunInstances" }
        }
      },
      {
        Sid      = "TerminateOnlyTaggedInstances"
        Effect   = "Allow"
        Action   = ["ec2:TerminateInstances", "ec2:RebootInstances"]
        Resource = ["${local.arn_prefix}:instance/*"]
        Condition = {
          StringEquals = { "aws:ResourceTag/${local.tag_key}" = local.tag_value }
        }
      },
      {
        Sid      = "PassOnlyBrokerRoles"
        Effect   = "Allow"
        Action   = ["iam:PassRole"]
        Resource = var.broker_role_arns
        Condition = {
          StringEquals = { "iam:PassedToService" = "ec2.amazonaws.com" }
        }
      },
      {
        Sid      = "ManageFleetZoneRecords"
        Effect   = "Allow"
        Action   = ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets"]
        Resource = [local.zone_arn]
      },
      {
        Sid      = "FollowChanges"
        Effect   = "Allow"
        Action   = ["route53:GetChange"]
        Resource = ["arn:${var.partition}:route53:::change/*"]
      },
      {
        Sid      = "CreateHostTokenSecrets"
        Effect   = "Allow"
        Action   = ["secretsmanager:CreateSecret", "secretsmanager:TagResource"]
        Resource = ["${local.secret_arn}/*"]
        Condition = {
          StringEquals = { "aws:RequestTag/${local.tag_key}" = local.tag_value }
        }
      },
      {
        Sid      = "RotateHostTokens"
        Effect   = "Allow"
        Action   = ["secretsmanager:PutSecretValue"]
        Resource = ["${local.secret_arn}/*"]
        Condition = {
          StringEquals = { "aws:ResourceTag/${local.tag_key}" = local.tag_value }
        }
      },
      {
        Sid      = "ReadDatabaseSecret"
        Effect   = "Allow"
        Action   = ["secretsmanager:GetSecretValue"]
        Resource = [var.database_secret_arn]
      },
      {
        Sid      = "DecryptDatabaseSecret"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [var.kms_key_arn]
        Condition = {
          StringEquals = { "kms:ViaService" = "secretsmanager.${var.region}.amazonaws.com" }
        }
      },
      {
        Sid      = "ReadOnlyUnscoped"
        Effect   = "Allow"
        Action   = ["ec2:DescribeInstances", "ec2:DescribeImages", "ec2:DescribeLaunchTemplates", "route53:ListHostedZonesByName"]
        Resource = ["*"]
      },
    ]
  })
}
