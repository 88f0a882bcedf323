# Who may open which port on whom: the one place the fleet's network policy is written. The
# security-groups module turns each entry into an ingress rule; the tests hold it to what each
# service needs. Sources are roles (security groups) or CIDR lists.
locals {
  roles = ["zookeeper", "broker", "fleet_manager", "database"]

  role_rules = [
    # ZooKeeper clients: Kafka and kafka-bootstrap on broker hosts; the fleet manager, the
    # healthcheck and the auditor on fleet-manager hosts.
    { to = "zookeeper", port = 2181, from = "broker", description = "ZooKeeper clients: Kafka and kafka-bootstrap" },
    { to = "zookeeper", port = 2181, from = "fleet_manager", description = "ZooKeeper clients: fleet manager, healthcheck, auditor" },
    # Quorum and leader election: the ensemble only.
    { to = "zookeeper", port = 2888, from = "zookeeper", description = "ZooKeeper quorum (followers to leader)" },
    { to = "zookeeper", port = 3888, from = "zookeeper", description = "ZooKeeper leader election" },
    # Kafka: replication between brokers; the fleet manager's canary, healthcheck and auditor.
    { to = "broker", port = var.kafka_port, from = "broker", description = "Kafka replication" },
    { to = "broker", port = var.kafka_port, from = "fleet_manager", description = "Kafka: canary, healthcheck, auditor" },
    # KRaft (Kafka 4.x): controllers run on hosts of the broker group, on their own listener.
    # Voters fetch from the leader, brokers and joining controllers observe it; the fleet
    # manager asks the quorum's leader for voter changes (AddRaftVoter, RemoveRaftVoter).
    { to = "broker", port = var.controller_port, from = "broker", description = "KRaft controller quorum: voters and observers" },
    { to = "broker", port = var.controller_port, from = "fleet_manager", description = "KRaft: DescribeQuorum and voter changes" },
    # The API: kafka-bootstrap reads its cluster's persisted properties.
    { to = "fleet_manager", port = var.api_port, from = "broker", description = "Fleet API: broker properties for kafka-bootstrap" },
    # The source of truth: the fleet manager only.
    { to = "database", port = 5432, from = "fleet_manager", description = "PostgreSQL: the fleet manager's source of truth" },
  ]

  cidr_rules = concat(
    [for c in var.client_cidrs : { to = "broker", port = var.kafka_port, cidr = c, description = "Kafka clients" }],
    [for c in var.client_cidrs : { to = "fleet_manager", port = var.api_port, cidr = c, description = "Route bindings for the client library" }],
    [for c in var.operator_cidrs : { to = "fleet_manager", port = var.api_port, cidr = c, description = "Operators: fleetctl and dashboards" }],
  )

  # Outbound: to the roles above on the same ports, plus HTTPS for AWS APIs (through the VPC's
  # endpoints or NAT), per role.
  https_out = ["broker", "fleet_manager", "zookeeper"]
}
