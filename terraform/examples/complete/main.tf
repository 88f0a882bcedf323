# The whole fleet in one region. With `aws_endpoint` set, every AWS API goes to that endpoint
# (moto on loopback: scripts/moto-apply.sh); without it, to AWS itself.

provider "aws" {
  region = var.region

  # Against a stand-in (moto) there are no real credentials to check.
  skip_credentials_validation = var.aws_endpoint != null
  skip_metadata_api_check     = var.aws_endpoint != null
  skip_region_validation      = var.aws_endpoint != null

  endpoints {
    ec2            = var.aws_endpoint
    iam            = var.aws_endpoint
    kms            = var.aws_endpoint
    logs           = var.aws_endpoint
    rds            = var.aws_endpoint
    route53        = var.aws_endpoint
    secretsmanager = var.aws_endpoint
    sts            = var.aws_endpoint
  }
}

module "fleet" {
  source = "../.."

  name                         = "kafka-fleet"
  zones                        = ["${var.region}a", "${var.region}b", "${var.region}c"]
  vpc_cidr                     = "10.40.0.0/16"
  zookeeper_count              = 5
  domain                       = "kafka.internal"
  clusters                     = ["blue", "green"]
  operator_cidrs               = ["10.99.0.0/24"]
  client_cidrs                 = ["10.50.0.0/16"]
  broker_image_id              = var.image_id
  zookeeper_image_id           = var.image_id
  fleet_manager_image_id       = var.image_id
  database_deletion_protection = false
  # moto does not implement MonitorInstances.
  detailed_monitoring = var.aws_endpoint == null
  tags                = { environment = "example" }
}
