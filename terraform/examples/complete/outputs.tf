output "fleet_manager_env" {
  description = "Paste into the fleet manager's environment file."
  value       = module.fleet.fleet_manager_env
}

output "kafka_bootstrap_cluster_file" {
  description = "The infrastructure part of kafka-bootstrap's cluster file."
  value       = module.fleet.kafka_bootstrap_cluster_file
}

output "database_secret_arn" {
  description = "Where the store URL is."
  value       = module.fleet.database_secret_arn
}

output "zookeeper_private_ips" {
  description = "Fixed ZooKeeper addresses."
  value       = module.fleet.zookeeper_private_ips
}
