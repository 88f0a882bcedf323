variable "name" {
  description = "Prefix for names."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (at least two zones) for the database."
  type        = list(string)
}

variable "security_group_id" {
  description = "The database security group (reachable by the fleet manager only)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for storage, Performance Insights and the secret."
  type        = string
}

variable "instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m6g.large"
}

variable "allocated_storage_gib" {
  description = "Initial storage (grows automatically up to 5x)."
  type        = number
  default     = 50
}

variable "engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"
}

variable "deletion_protection" {
  description = "Refuse to delete the source of truth (turn off only for throwaway environments)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags on everything this module creates."
  type        = map(string)
  default     = {}
}
