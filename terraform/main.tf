# kafka-fleet's AWS infrastructure: network, a 5-node ZooKeeper ensemble on fixed addresses, what
# the fleet manager launches brokers with, its own hosts, the PostgreSQL source of truth, a
# private zone, least-privilege roles and the port matrix. The logic (placement, names, policies,
# ports) lives in provider-free modules, tested by `terraform test` without AWS.

data "aws_region" "current" {}

locals {
  tags = merge(var.tags, { "fleet:stack" = var.name })
}

module "topology" {
  source = "./modules/topology"

  vpc_cidr        = var.vpc_cidr
  zones           = var.zones
  zookeeper_count = var.zookeeper_count
  domain          = var.domain
  clusters        = var.clusters
}

module "ports" {
  source = "./modules/port-matrix"

  operator_cidrs = var.operator_cidrs
  client_cidrs   = var.client_cidrs
}

module "network" {
  source = "./modules/network"

  name                = var.name
  vpc_id              = var.vpc_id
  existing_subnet_ids = var.existing_subnet_ids
  vpc_cidr            = var.vpc_cidr
  private_subnets     = module.topology.private_subnets
  tags                = local.tags
}

module "dns" {
  source = "./modules/dns"

  domain          = var.domain
  vpc_id          = module.network.vpc_id
  zookeeper_nodes = module.topology.zookeeper_nodes
  tags            = local.tags
}

module "security_groups" {
  source = "./modules/security-groups"

  name       = var.name
  vpc_id     = module.network.vpc_id
  roles      = module.ports.roles
  role_rules = module.ports.role_rules
  cidr_rules = module.ports.cidr_rules
  https_out  = module.ports.https_out
  tags       = local.tags
}

# One key for the fleet's volumes, database and secret.
resource "aws_kms_key" "fleet" {
  description             = "${var.name}: volumes, database, secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 7
  policy                  = data.aws_iam_policy_document.fleet_key.json
  tags                    = local.tags
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "fleet_key" {
  # A key policy's "*" is the key itself; the account administers its own key.
  #checkov:skip=CKV_AWS_111:key policy, Resource "*" is this key
  #checkov:skip=CKV_AWS_356:key policy, Resource "*" is this key
  #checkov:skip=CKV_AWS_109:key policy, Resource "*" is this key
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_alias" "fleet" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.fleet.key_id
}

module "zookeeper" {
  source = "./modules/zookeeper"

  name                = var.name
  nodes               = module.topology.zookeeper_nodes
  user_data           = module.topology.zookeeper_user_data
  subnet_ids          = module.network.subnet_ids
  security_group_id   = module.security_groups.ids["zookeeper"]
  image_id            = var.zookeeper_image_id
  kms_key_arn         = aws_kms_key.fleet.arn
  detailed_monitoring = var.detailed_monitoring
  tags                = local.tags
}

module "brokers" {
  source = "./modules/brokers"

  name              = var.name
  image_id          = var.broker_image_id
  security_group_id = module.security_groups.ids["broker"]
  kms_key_arn       = aws_kms_key.fleet.arn
  tags              = local.tags
}

module "database" {
  source = "./modules/database"

  name                = var.name
  subnet_ids          = values(module.network.subnet_ids)
  security_group_id   = module.security_groups.ids["database"]
  kms_key_arn         = aws_kms_key.fleet.arn
  deletion_protection = var.database_deletion_protection
  tags                = local.tags
}

module "iam" {
  source = "./modules/iam"

  name                      = var.name
  zone_id                   = module.dns.zone_id
  broker_record_patterns    = module.topology.broker_record_patterns
  subnet_ids                = values(module.network.subnet_ids)
  broker_security_group_ids = [module.security_groups.ids["broker"]]
  launch_template_ids       = [module.brokers.launch_template_id, module.brokers.controller_launch_template_id]
  database_secret_arn       = module.database.secret_arn
  kms_key_arn               = aws_kms_key.fleet.arn
  tags                      = local.tags
}

locals {
  # The fleet manager's settings (its FLEET_* environment); the store URL is not among them.
  fleet_manager_settings = merge({
    AWS_REGION                           = data.aws_region.current.region
    FLEET_ZOOKEEPER                      = module.topology.zookeeper_connect
    FLEET_EC2_LAUNCH_TEMPLATE            = module.brokers.launch_template_id
    FLEET_EC2_CONTROLLER_LAUNCH_TEMPLATE = module.brokers.controller_launch_template_id
    FLEET_EC2_SUBNETS                    = join(",", [for zone, id in module.network.subnet_ids : "${zone}=${id}"])
    FLEET_EC2_INSTANCE_PROFILE_PREFIX    = module.iam.broker_instance_profile_prefix
    FLEET_EC2_SECRET_PREFIX              = var.name
    FLEET_DNS                            = "route53"
    FLEET_DNS_ZONE                       = var.domain
    },
    # KRaft (Kafka 4.x) clusters launch only on an image that has 4.x's jars.
    { for k, v in { FLEET_EC2_KAFKA4_LIBS = var.broker_image_kafka4_libs } : k => v if v != null },
  )
}

module "fleet_manager" {
  source = "./modules/fleet-manager"

  name                = var.name
  host_count          = var.fleet_manager_count
  zones               = var.zones
  subnet_ids          = module.network.subnet_ids
  security_group_id   = module.security_groups.ids["fleet_manager"]
  instance_profile    = module.iam.fleet_manager_instance_profile
  image_id            = var.fleet_manager_image_id
  settings            = local.fleet_manager_settings
  database_secret_arn = module.database.secret_arn
  kms_key_arn         = aws_kms_key.fleet.arn
  detailed_monitoring = var.detailed_monitoring
  tags                = local.tags
}
