output "instance_ids" {
  description = "Instance per node name."
  value       = { for name, i in aws_instance.node : name => i.id }
}

output "private_ips" {
  description = "Fixed address per node name."
  value       = { for name, eni in aws_network_interface.node : name => one(eni.private_ips) }
}
