variable "name" {
  description = "Prefix for role and profile names: <name>-broker-<family>, <name>-fleet-manager."
  type        = string
}

variable "zone_id" {
  description = "The fleet's private Route53 zone."
  type        = string
}

variable "broker_record_patterns" {
  description = "Per cluster family, the record names its brokers may UPSERT (modules/topology)."
  type        = map(list(string))
}

variable "subnet_ids" {
  description = "Subnets the fleet manager launches broker hosts into."
  type        = list(string)
}

variable "broker_security_group_ids" {
  description = "Security groups of broker hosts."
  type        = list(string)
}

variable "launch_template_ids" {
  description = "The launch templates hosts are launched from (brokers, KRaft controllers)."
  type        = list(string)
}

variable "database_secret_arn" {
  description = "The secret with the source of truth's connection string."
  type        = string
}

variable "kms_key_arn" {
  description = "The KMS key that secret is encrypted with."
  type        = string
}

variable "tags" {
  description = "Tags on roles and profiles."
  type        = map(string)
  default     = {}
}
