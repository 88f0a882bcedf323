variable "region" {
  description = "The region to run in."
  type        = string
  default     = "us-east-1"
}

variable "aws_endpoint" {
  description = "Send every AWS API call here (e.g. moto's http://127.0.0.1:5000); null for AWS."
  type        = string
  default     = null
}

variable "image_id" {
  description = "The image for every host in this example (real deployments build one per role)."
  type        = string
}
