output "assume_role_by_ec2" {
  description = "Trust policy: EC2 instances assume the role."
  value       = local.assume_by_ec2
}

output "broker" {
  description = "Per cluster family, the broker host role's policy (JSON)."
  value       = local.broker
}

output "fleet_manager" {
  description = "The fleet manager host role's policy (JSON)."
  value       = local.fleet_manager
}
