variable "name" {
  description = "Prefix for the groups' names."
  type        = string
}

variable "vpc_id" {
  description = "The VPC the groups belong to."
  type        = string
}

variable "roles" {
  description = "Roles that get a group each (modules/port-matrix)."
  type        = list(string)
}

variable "role_rules" {
  description = "Ingress between roles (modules/port-matrix)."
  type        = list(object({ to = string, from = string, port = number, description = string }))
}

variable "cidr_rules" {
  description = "Ingress from networks (modules/port-matrix)."
  type        = list(object({ to = string, cidr = string, port = number, description = string }))
}

variable "https_out" {
  description = "Roles that may open HTTPS connections out, to AWS APIs (modules/port-matrix)."
  type        = list(string)
}

variable "tags" {
  description = "Tags on the groups."
  type        = map(string)
  default     = {}
}
