variable "vpc_cidr" {
  description = "The VPC's IPv4 block; private subnets are carved from it, one per zone (a /16 to /22)."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && can(regex("^[0-9.]+/(1[6-9]|2[0-2])$", var.vpc_cidr))
    error_message = "vpc_cidr: an IPv4 CIDR block from /16 to /22, e.g. \"10.40.0.0/16\"."
  }
}

variable "zones" {
  description = "Availability zones to spread over, at least 3 (ZooKeeper keeps a quorum when one zone is lost)."
  type        = list(string)

  validation {
    condition     = length(var.zones) >= 3 && length(distinct(var.zones)) == length(var.zones)
    error_message = "zones: at least 3 distinct availability zones (e.g. [\"us-east-1a\", \"us-east-1b\", \"us-east-1c\"]); with fewer, losing one zone can lose the ZooKeeper quorum."
  }
}

variable "zookeeper_count" {
  description = "ZooKeeper ensemble size: odd, 3 to 7 (the source design runs 5)."
  type        = number
  default     = 5

  validation {
    condition     = var.zookeeper_count >= 3 && var.zookeeper_count <= 7 && var.zookeeper_count % 2 == 1
    error_message = "zookeeper_count: an odd number from 3 to 7 (an even ensemble tolerates no more failures than the odd one below it)."
  }
}

variable "domain" {
  description = "The private DNS zone for ZooKeeper, broker and cluster names (e.g. \"kafka.internal\")."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain))
    error_message = "domain: a lowercase DNS name with at least two labels and no trailing dot, e.g. \"kafka.internal\"."
  }
}

variable "clusters" {
  description = "Kafka cluster families the fleet runs (e.g. [\"blue\", \"green\"]). A family owns the cluster of that name and the fresh builds the fleet manager names <family>-<n>."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.clusters : can(regex("^[a-z][a-z0-9-]{0,40}[a-z0-9]$", c)) && !can(regex("-[0-9]+$", c))])
    error_message = "clusters: lowercase names of letters, digits and dashes, not ending in -<digits> (that suffix is reserved for fresh builds, e.g. blue-2)."
  }

  validation {
    condition     = length(var.clusters) == 0 || alltrue(flatten([for a in var.clusters : [for b in var.clusters : a == b || !startswith(b, "${a}-")]]))
    error_message = "clusters: one name is another followed by a dash (e.g. \"blue\" and \"blue-east\"); a family owns <name>-* for its builds, so rename one."
  }
}
