output "private_subnets" {
  description = "Private subnet per zone: its index and CIDR block."
  value       = local.private_subnets
}

output "zookeeper_nodes" {
  description = "The ensemble: id (myid), name (zk1..), fqdn, zone and fixed private IP of each node."
  value       = local.zookeeper_nodes
}

output "zookeeper_per_zone" {
  description = "How many ZooKeeper nodes each zone holds."
  value       = local.zookeeper_per_zone
}

output "quorum" {
  description = "Nodes needed for a ZooKeeper quorum."
  value       = local.quorum
}

output "zookeeper_connect" {
  description = "The ensemble's connect string (DNS names, client port 2181)."
  value       = local.zookeeper_connect
}

output "zookeeper_config" {
  description = "zoo.cfg shared by every node."
  value       = local.zookeeper_config
}

output "zookeeper_user_data" {
  description = "User-data per node name: writes myid and zoo.cfg, mounts the transaction-log volume, starts ZooKeeper."
  value       = local.zookeeper_user_data
}

output "broker_record_patterns" {
  description = "Per cluster family, the Route53 record names (IAM StringLike patterns) its broker hosts may UPSERT."
  value       = local.broker_record_patterns
}
