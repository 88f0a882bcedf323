# Zone and subnet arithmetic, the ensemble's placement and names, and the validations.

variables {
  vpc_cidr        = "10.40.0.0/16"
  zones           = ["us-east-1a", "us-east-1b", "us-east-1c"]
  zookeeper_count = 5
  domain          = "kafka.internal"
  clusters        = ["blue", "green"]
}

run "subnets_one_per_zone_without_overlap" {
  command = plan

  assert {
    condition     = [for z in var.zones : output.private_subnets[z].cidr] == ["10.40.0.0/20", "10.40.16.0/20", "10.40.32.0/20"]
    error_message = "expected one /20 per zone from the bottom of the VPC block, got ${jsonencode(output.private_subnets)}"
  }
}

run "five_nodes_over_three_zones_no_zone_holds_a_quorum" {
  command = plan

  assert {
    condition     = length(output.zookeeper_nodes) == 5 && output.quorum == 3
    error_message = "expected 5 nodes and a quorum of 3"
  }
  assert {
    condition     = output.zookeeper_per_zone == { "us-east-1a" = 2, "us-east-1b" = 2, "us-east-1c" = 1 }
    error_message = "expected 2/2/1 over the zones, got ${jsonencode(output.zookeeper_per_zone)}"
  }
  # Losing any one zone leaves a quorum.
  assert {
    condition     = alltrue([for z, n in output.zookeeper_per_zone : 5 - n >= output.quorum])
    error_message = "losing one zone must leave a quorum: ${jsonencode(output.zookeeper_per_zone)}"
  }
}

run "zookeeper_names_ids_and_fixed_addresses" {
  command = plan

  assert {
    condition     = [for n in output.zookeeper_nodes : n.fqdn] == ["zk1.kafka.internal", "zk2.kafka.internal", "zk3.kafka.internal", "zk4.kafka.internal", "zk5.kafka.internal"]
    error_message = "expected zk1..zk5 in the domain"
  }
  assert {
    condition     = [for n in output.zookeeper_nodes : n.private_ip] == ["10.40.0.10", "10.40.16.10", "10.40.32.10", "10.40.0.11", "10.40.16.11"]
    error_message = "expected fixed addresses .10/.11 inside each node's zone subnet, got ${jsonencode([for n in output.zookeeper_nodes : n.private_ip])}"
  }
  assert {
    condition     = alltrue([for n in output.zookeeper_nodes : cidrsubnet("${n.private_ip}/20", 0, 0) == output.private_subnets[n.zone].cidr])
    error_message = "every node's address must lie in its own zone's subnet"
  }
  assert {
    condition     = length(distinct([for n in output.zookeeper_nodes : n.private_ip])) == 5
    error_message = "addresses must be distinct"
  }
  assert {
    condition     = output.zookeeper_connect == "zk1.kafka.internal:2181,zk2.kafka.internal:2181,zk3.kafka.internal:2181,zk4.kafka.internal:2181,zk5.kafka.internal:2181"
    error_message = "unexpected connect string ${output.zookeeper_connect}"
  }
}

run "ensemble_config_and_myid_in_user_data" {
  command = plan

  assert {
    condition     = length(regexall("(?m)^server\\.[1-5]=zk[1-5]\\.kafka\\.internal:2888:3888$", output.zookeeper_config)) == 5
    error_message = "zoo.cfg must list the 5 servers with quorum and election ports"
  }
  assert {
    condition     = strcontains(output.zookeeper_user_data["zk4"], "echo 4 > /var/lib/zookeeper/data/myid") && strcontains(output.zookeeper_user_data["zk4"], "server.5=zk5.kafka.internal:2888:3888")
    error_message = "zk4's user-data must write myid 4 and carry the whole ensemble"
  }
}

run "four_zones_three_nodes" {
  command = plan
  variables {
    zones           = ["eu-west-1a", "eu-west-1b", "eu-west-1c", "eu-west-1d"]
    zookeeper_count = 3
    vpc_cidr        = "172.20.0.0/22"
  }

  assert {
    condition     = output.zookeeper_per_zone == { "eu-west-1a" = 1, "eu-west-1b" = 1, "eu-west-1c" = 1, "eu-west-1d" = 0 }
    error_message = "3 nodes over 4 zones: one per zone in the first three"
  }
  assert {
    condition     = output.private_subnets["eu-west-1d"].cidr == "172.20.0.192/26"
    error_message = "a /22 splits into /26 subnets"
  }
}

run "broker_record_patterns_per_family" {
  command = plan

  assert {
    condition     = output.broker_record_patterns["blue"] == ["blue.kafka.internal", "broker-*.blue.kafka.internal", "controller-*.blue.kafka.internal", "blue-*.kafka.internal", "broker-*.blue-*.kafka.internal", "controller-*.blue-*.kafka.internal"]
    error_message = "unexpected patterns ${jsonencode(output.broker_record_patterns["blue"])}"
  }
}

run "rejects_fewer_than_three_zones" {
  command = plan
  variables {
    zones = ["us-east-1a", "us-east-1b"]
  }
  expect_failures = [var.zones]
}

run "rejects_an_even_ensemble" {
  command = plan
  variables {
    zookeeper_count = 4
  }
  expect_failures = [var.zookeeper_count]
}

run "rejects_an_invalid_cidr" {
  command = plan
  variables {
    vpc_cidr = "10.40.0.0/33"
  }
  expect_failures = [var.vpc_cidr]
}

run "rejects_a_family_that_prefixes_another" {
  command = plan
  variables {
    clusters = ["blue", "blue-east"]
  }
  expect_failures = [var.clusters]
}

run "rejects_a_family_named_like_a_build" {
  command = plan
  variables {
    clusters = ["blue-2"]
  }
  expect_failures = [var.clusters]
}
