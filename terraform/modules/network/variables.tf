variable "name" {
  description = "Prefix for the names of what this module creates."
  type        = string
}

variable "vpc_id" {
  description = "An existing VPC to use; null creates one with vpc_cidr."
  type        = string
  default     = null
}

variable "existing_subnet_ids" {
  description = "With vpc_id: the private subnet to use in each zone (zone => subnet ID); the module creates none."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr" {
  description = "The VPC's block (created VPC) or the block subnets are carved from (existing VPC)."
  type        = string
}

variable "private_subnets" {
  description = "Zone => { index, cidr } (modules/topology)."
  type        = map(object({ index = number, cidr = string }))
}

variable "tags" {
  description = "Tags on everything this module creates."
  type        = map(string)
  default     = {}
}
