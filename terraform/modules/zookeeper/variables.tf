variable "name" {
  description = "Prefix for names."
  type        = string
}

variable "nodes" {
  description = "The ensemble (modules/topology): id, name, fqdn, zone and fixed private IP per node."
  type        = list(object({ id = number, name = string, fqdn = string, zone = string, private_ip = string }))
}

variable "user_data" {
  description = "User-data per node name (modules/topology)."
  type        = map(string)
}

variable "subnet_ids" {
  description = "Private subnet per zone."
  type        = map(string)
}

variable "security_group_id" {
  description = "The ZooKeeper security group."
  type        = string
}

variable "image_id" {
  description = "An image with ZooKeeper installed at /opt/zookeeper and a zookeeper systemd unit."
  type        = string
}

variable "instance_type" {
  description = "Instance type for ZooKeeper nodes."
  type        = string
  default     = "m6i.large"
}

variable "txlog_volume_size_gib" {
  description = "Size of each node's transaction-log volume (gp3 SSD)."
  type        = number
  default     = 50

  validation {
    condition     = var.txlog_volume_size_gib >= 8 && var.txlog_volume_size_gib <= 16384
    error_message = "txlog_volume_size_gib: 8 to 16384."
  }
}

variable "txlog_iops" {
  description = "Provisioned IOPS of each transaction-log volume (gp3: 3000 to 16000)."
  type        = number
  default     = 3000
}

variable "kms_key_arn" {
  description = "KMS key for the volumes."
  type        = string
}

variable "tags" {
  description = "Tags on everything this module creates."
  type        = map(string)
  default     = {}
}

variable "detailed_monitoring" {
  description = "One-minute CloudWatch metrics for the hosts (off only where the API lacks it, e.g. moto)."
  type        = bool
  default     = true
}
