output "fleet_manager_env" {
  description = "The fleet manager's settings as an environment file (FLEET_DATABASE_URL comes from database_secret_arn, not from here)."
  value       = join("", [for k, v in local.fleet_manager_settings : "${k}=${v}\n"])
}

output "kafka_bootstrap_cluster_file" {
  description = "The infrastructure part of kafka-bootstrap's cluster file (the fleet manager writes the rest per cluster)."
  value = yamlencode({
    zookeeper = module.topology.zookeeper_connect
    provider  = { kind = "ec2", region = data.aws_region.current.region }
    dns       = { kind = "route53", zone = var.domain }
  })
}

output "database_secret_arn" {
  description = "The secret holding the store URL (fleet-manager hosts read it with their role)."
  value       = module.database.secret_arn
}

output "zookeeper_connect" {
  description = "The ensemble's connect string."
  value       = module.topology.zookeeper_connect
}

output "zookeeper_private_ips" {
  description = "Fixed address per ZooKeeper node."
  value       = module.zookeeper.private_ips
}

output "launch_template_id" {
  description = "The broker launch template."
  value       = module.brokers.launch_template_id
}

output "controller_launch_template_id" {
  description = "The KRaft controller launch template."
  value       = module.brokers.controller_launch_template_id
}

output "subnet_ids" {
  description = "Private subnet per zone."
  value       = module.network.subnet_ids
}

output "zone_id" {
  description = "The private Route53 zone."
  value       = module.dns.zone_id
}

output "broker_instance_profiles" {
  description = "Broker instance profile per cluster family."
  value       = module.iam.broker_instance_profiles
}

output "fleet_manager_instance_ids" {
  description = "Fleet manager hosts."
  value       = module.fleet_manager.instance_ids
}
