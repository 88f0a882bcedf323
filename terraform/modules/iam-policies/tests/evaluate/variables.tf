variable "policy" {
  description = "The policy document (JSON)."
  type        = string
}

variable "action" {
  description = "The request's action, e.g. ec2:TerminateInstances."
  type        = string
}

variable "resource" {
  description = "The request's resource ARN."
  type        = string
}

variable "context" {
  description = "The request's condition keys and their values."
  type        = map(list(string))
  default     = {}
}
