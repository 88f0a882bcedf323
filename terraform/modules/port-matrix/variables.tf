variable "operator_cidrs" {
  description = "Networks operators reach the fleet manager's API from."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.operator_cidrs : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "operator_cidrs: IPv4 CIDR blocks (e.g. \"10.0.0.0/8\"), not 0.0.0.0/0: the API must not face the internet."
  }
}

variable "client_cidrs" {
  description = "Networks producers and consumers run in: they reach Kafka's listener and the fleet manager's route bindings."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.client_cidrs : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "client_cidrs: IPv4 CIDR blocks (e.g. \"10.0.0.0/8\"), not 0.0.0.0/0."
  }
}

variable "kafka_port" {
  description = "Kafka's client and replication listener."
  type        = number
  default     = 9092
}

variable "controller_port" {
  description = "KRaft controllers' listener (Kafka 4.x clusters)."
  type        = number
  default     = 9093
}

variable "api_port" {
  description = "The fleet manager's HTTP API."
  type        = number
  default     = 8080
}
