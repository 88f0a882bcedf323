variable "domain" {
  description = "The private zone's name (e.g. kafka.internal)."
  type        = string
}

variable "vpc_id" {
  description = "The VPC the zone answers in."
  type        = string
}

variable "zookeeper_nodes" {
  description = "The ensemble's nodes (modules/topology): their names and fixed addresses become A records."
  type        = list(object({ id = number, name = string, fqdn = string, zone = string, private_ip = string }))
}

variable "tags" {
  description = "Tags on the zone."
  type        = map(string)
  default     = {}
}
