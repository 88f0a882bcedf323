variable "name" {
  description = "Prefix for names."
  type        = string
}

variable "host_count" {
  description = "Fleet manager hosts: at least 2, so that a standby takes over when the leader dies."
  type        = number
  default     = 2

  validation {
    condition     = var.host_count >= 2 && var.host_count <= 5
    error_message = "host_count: 2 to 5 (one leader, the rest standbys)."
  }
}

variable "zones" {
  description = "Zones to spread hosts over (round-robin)."
  type        = list(string)
}

variable "subnet_ids" {
  description = "Private subnet per zone."
  type        = map(string)
}

variable "security_group_id" {
  description = "The fleet manager security group."
  type        = string
}

variable "instance_profile" {
  description = "The fleet manager's instance profile."
  type        = string
}

variable "image_id" {
  description = "An image with fleet-manager, kafka-healthcheck and kafka-auditor at /opt/kafka-fleet/bin."
  type        = string
}

variable "instance_type" {
  description = "Instance type for fleet manager hosts."
  type        = string
  default     = "m6i.large"
}

variable "settings" {
  description = "Environment of the fleet-manager service (FLEET_* variables, from the root module)."
  type        = map(string)
}

variable "database_secret_arn" {
  description = "The secret whose value is the store URL (read at boot into a 0600 file, never in user-data)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the root volumes."
  type        = string
}

variable "tags" {
  description = "Tags on the hosts."
  type        = map(string)
  default     = {}
}

variable "detailed_monitoring" {
  description = "One-minute CloudWatch metrics for the hosts (off only where the API lacks it, e.g. moto)."
  type        = bool
  default     = true
}
