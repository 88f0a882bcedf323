# The port matrix: each service reachable only by those that need it.

variables {
  operator_cidrs = ["10.99.0.0/24"]
  client_cidrs   = ["10.50.0.0/16"]
}

run "matrix" {
  command = plan

  assert {
    condition = jsonencode(output.reachable) == jsonencode({
      "zookeeper:2181"     = ["broker", "fleet_manager"]
      "zookeeper:2888"     = ["zookeeper"]
      "zookeeper:3888"     = ["zookeeper"]
      "broker:9092"        = ["10.50.0.0/16", "broker", "fleet_manager"]
      "broker:9093"        = ["broker", "fleet_manager"]
      "fleet_manager:8080" = ["10.50.0.0/16", "10.99.0.0/24", "broker"]
      "database:5432"      = ["fleet_manager"]
    })
    error_message = "unexpected matrix: ${jsonencode(output.reachable)}"
  }
  # Operators reach the API and nothing else.
  assert {
    condition     = alltrue([for r in output.cidr_rules : r.to == "fleet_manager" if r.cidr == "10.99.0.0/24"])
    error_message = "operator networks reach more than the API"
  }
  # Every rule says why it exists.
  assert {
    condition     = alltrue([for r in concat(output.role_rules, output.cidr_rules) : length(r.description) > 10])
    error_message = "a rule has no description"
  }
}

run "no_networks_no_cidr_rules" {
  command = plan
  variables {
    operator_cidrs = []
    client_cidrs   = []
  }
  assert {
    condition     = length(output.cidr_rules) == 0
    error_message = "rules from networks nobody named"
  }
}

run "rejects_the_internet_as_operators" {
  command = plan
  variables {
    operator_cidrs = ["0.0.0.0/0"]
  }
  expect_failures = [var.operator_cidrs]
}

run "rejects_a_malformed_client_network" {
  command = plan
  variables {
    client_cidrs = ["10.50.0.0"]
  }
  expect_failures = [var.client_cidrs]
}
