variable "name" {
  description = "Prefix for names."
  type        = string
}

variable "image_id" {
  description = "An image with Kafka 3.9 at /opt/kafka, Kafka 4.x at /opt/kafka4 and kafka-bootstrap at /opt/kafka-fleet/bin."
  type        = string
}

variable "instance_type" {
  description = "Default broker instance type (a cluster's spec may name another at launch)."
  type        = string
  default     = "r6i.large"
}

variable "controller_instance_type" {
  description = "Default KRaft controller instance type (a cluster's controllerInstanceType may name another at launch)."
  type        = string
  default     = "m6i.large"
}

variable "controller_data_volume_size_gib" {
  description = "Metadata log volume size per KRaft controller host (gp3): the metadata log and its snapshots."
  type        = number
  default     = 50

  validation {
    condition     = var.controller_data_volume_size_gib >= 20 && var.controller_data_volume_size_gib <= 16384
    error_message = "controller_data_volume_size_gib: 20 to 16384."
  }
}

variable "security_group_id" {
  description = "The broker security group."
  type        = string
}

variable "data_volume_size_gib" {
  description = "Kafka log volume size per broker host (gp3)."
  type        = number
  default     = 500

  validation {
    condition     = var.data_volume_size_gib >= 20 && var.data_volume_size_gib <= 16384
    error_message = "data_volume_size_gib: 20 to 16384."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the volumes."
  type        = string
}

variable "tags" {
  description = "Tags on the template and the hosts launched from it."
  type        = map(string)
  default     = {}
}
