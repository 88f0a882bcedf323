data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  broker_role_names = { for family in keys(var.broker_record_patterns) : family => "${var.name}-broker-${family}" }
}

# The documents themselves are built, and tested, in a provider-free module.
module "policies" {
  source = "../iam-policies"

  partition                 = data.aws_partition.current.partition
  region                    = data.aws_region.current.region
  account_id                = data.aws_caller_identity.current.account_id
  zone_id                   = var.zone_id
  broker_record_patterns    = var.broker_record_patterns
  broker_role_arns          = [for family, role in local.broker_role_names : "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:role/${role}"]
  subnet_ids                = var.subnet_ids
  broker_security_group_ids = var.broker_security_group_ids
  launch_template_ids       = var.launch_template_ids
  database_secret_arn       = var.database_secret_arn
  kms_key_arn               = var.kms_key_arn
  host_secret_prefix        = var.name
}

# One broker role per cluster family: IAM cannot tell which cluster an instance belongs to, so
# the role is what limits a host to its own cluster's DNS names. The fleet manager launches a
# family's hosts (the cluster and its builds <family>-<n>) with the family's profile.
resource "aws_iam_role" "broker" {
  for_each = local.broker_role_names

  name               = each.value
  assume_role_policy = module.policies.assume_role_by_ec2
  tags               = merge(var.tags, { "fleet:family" = each.key })
}

resource "aws_iam_role_policy" "broker" {
  for_each = local.broker_role_names

  name   = "register-own-cluster"
  role   = aws_iam_role.broker[each.key].id
  policy = module.policies.broker[each.key]
}

resource "aws_iam_instance_profile" "broker" {
  for_each = local.broker_role_names

  name = each.value
  role = aws_iam_role.broker[each.key].name
  tags = var.tags
}

resource "aws_iam_role" "fleet_manager" {
  name               = "${var.name}-fleet-manager"
  assume_role_policy = module.policies.assume_role_by_ec2
  tags               = var.tags
}

resource "aws_iam_role_policy" "fleet_manager" {
  name   = "run-the-fleet"
  role   = aws_iam_role.fleet_manager.id
  policy = module.policies.fleet_manager
}

resource "aws_iam_instance_profile" "fleet_manager" {
  name = "${var.name}-fleet-manager"
  role = aws_iam_role.fleet_manager.name
  tags = var.tags
}
