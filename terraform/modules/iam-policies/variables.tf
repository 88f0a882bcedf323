variable "partition" {
  description = "The AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "region" {
  description = "The region the fleet runs in."
  type        = string
}

variable "account_id" {
  description = "The AWS account the fleet runs in (12 digits)."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id: the 12-digit AWS account ID."
  }
}

variable "zone_id" {
  description = "The private Route53 zone's ID (Z...)."
  type        = string
}

variable "broker_record_patterns" {
  description = "Per cluster family, the record names (StringLike) its broker hosts may UPSERT (modules/topology)."
  type        = map(list(string))
}

variable "broker_role_arns" {
  description = "The broker roles (one per cluster family) the fleet manager may pass to EC2."
  type        = list(string)
}

variable "subnet_ids" {
  description = "Subnets the fleet manager may launch broker hosts into."
  type        = list(string)
}

variable "broker_security_group_ids" {
  description = "Security groups the fleet manager may attach to broker hosts."
  type        = list(string)
}

variable "launch_template_ids" {
  description = "The launch templates the fleet manager launches hosts from (brokers, KRaft controllers)."
  type        = list(string)
}

variable "database_secret_arn" {
  description = "The secret holding the source of truth's connection string, read by the fleet manager."
  type        = string
}

variable "kms_key_arn" {
  description = "The KMS key the database secret is encrypted with (the fleet manager decrypts through Secrets Manager)."
  type        = string
}

variable "managed_by_tag" {
  description = "The tag key and value on every instance the fleet manager launches (its providers' TAG_MANAGED_BY)."
  type        = object({ key = string, value = string })
  default     = { key = "fleet:managed-by", value = "kafka-fleet" }
}

variable "host_secret_prefix" {
  description = "The fleet manager keeps each cluster's host token in Secrets Manager as <prefix>/hosts/<cluster>/fleet-api-token (its --ec2-secret-prefix)."
  type        = string
  default     = "kafka-fleet"

  validation {
    condition     = can(regex("^[A-Za-z0-9/_+=.@-]+$", var.host_secret_prefix)) && !endswith(var.host_secret_prefix, "/")
    error_message = "host_secret_prefix: letters, digits and /_+=.@- (Secrets Manager's name characters), without a trailing /."
  }
}
