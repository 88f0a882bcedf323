variable "name" {
  description = "Prefix for every name (lowercase letters, digits, dashes; 3-30 characters)."
  type        = string
  default     = "kafka-fleet"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name))
    error_message = "name: 3-30 characters, lowercase letters, digits and dashes, starting with a letter (e.g. \"kafka-fleet\")."
  }
}

variable "zones" {
  description = "At least 3 availability zones: ZooKeeper and the fleet manager spread over them."
  type        = list(string)

  validation {
    condition     = length(var.zones) >= 3 && length(distinct(var.zones)) == length(var.zones)
    error_message = "zones: at least 3 distinct availability zones (e.g. [\"us-east-1a\", \"us-east-1b\", \"us-east-1c\"]); with fewer, losing one zone can lose the ZooKeeper quorum."
  }
}

variable "vpc_cidr" {
  description = "The VPC's IPv4 block (/16 to /22); one private subnet per zone is carved from it."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && can(regex("^[0-9.]+/(1[6-9]|2[0-2])$", var.vpc_cidr))
    error_message = "vpc_cidr: an IPv4 CIDR block from /16 to /22, e.g. \"10.40.0.0/16\"."
  }
}

variable "vpc_id" {
  description = "Use this existing VPC instead of creating one (then set existing_subnet_ids too)."
  type        = string
  default     = null
}

variable "existing_subnet_ids" {
  description = "With vpc_id: a private subnet per zone (zone => subnet ID)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for id in values(var.existing_subnet_ids) : can(regex("^subnet-[0-9a-f]+$", id))])
    error_message = "existing_subnet_ids: values are subnet IDs (subnet-...)."
  }
}

variable "zookeeper_count" {
  description = "ZooKeeper ensemble size: odd, 3 to 7 (the source design: 5)."
  type        = number
  default     = 5

  validation {
    condition     = var.zookeeper_count >= 3 && var.zookeeper_count <= 7 && var.zookeeper_count % 2 == 1
    error_message = "zookeeper_count: an odd number from 3 to 7 (an even ensemble tolerates no more failures than the odd one below it)."
  }
}

variable "domain" {
  description = "The private DNS zone for zk1..zkN, brokers and clusters."
  type        = string
  default     = "kafka.internal"
}

variable "clusters" {
  description = "Cluster families the fleet runs; each gets a broker role limited to its own DNS names (the cluster and its builds <family>-<n>)."
  type        = list(string)

  validation {
    condition     = length(var.clusters) > 0
    error_message = "clusters: name at least one cluster family (e.g. [\"blue\"])."
  }
}

variable "operator_cidrs" {
  description = "Networks operators reach the fleet manager's API from."
  type        = list(string)
  default     = []
}

variable "client_cidrs" {
  description = "Networks producers and consumers run in."
  type        = list(string)
  default     = []
}

variable "broker_image_id" {
  description = "Image for broker hosts (Kafka at /opt/kafka, kafka-bootstrap at /opt/kafka-fleet/bin)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.broker_image_id))
    error_message = "broker_image_id: an AMI ID (ami-...)."
  }
}

variable "broker_image_kafka4_libs" {
  description = "Where the broker image holds Kafka 4.x's jars (e.g. /opt/kafka4/libs); null while it has none, and KRaft clusters are not launched."
  type        = string
  default     = null

  validation {
    condition     = var.broker_image_kafka4_libs == null || startswith(coalesce(var.broker_image_kafka4_libs, "/"), "/")
    error_message = "broker_image_kafka4_libs: an absolute path on the image, e.g. /opt/kafka4/libs."
  }
}

variable "zookeeper_image_id" {
  description = "Image for ZooKeeper nodes (ZooKeeper at /opt/zookeeper, a zookeeper systemd unit)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.zookeeper_image_id))
    error_message = "zookeeper_image_id: an AMI ID (ami-...)."
  }
}

variable "fleet_manager_image_id" {
  description = "Image for fleet manager hosts (fleet-manager, kafka-healthcheck, kafka-auditor, the AWS CLI)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.fleet_manager_image_id))
    error_message = "fleet_manager_image_id: an AMI ID (ami-...)."
  }
}

variable "fleet_manager_count" {
  description = "Fleet manager hosts (at least 2: a leader and a standby)."
  type        = number
  default     = 2
}

variable "database_deletion_protection" {
  description = "Protect the source of truth from deletion (false only for throwaway environments)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on everything."
  type        = map(string)
  default     = {}
}

variable "detailed_monitoring" {
  description = "One-minute CloudWatch metrics for the hosts (off only where the API lacks it, e.g. moto)."
  type        = bool
  default     = true
}
