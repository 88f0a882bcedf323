output "broker_instance_profiles" {
  description = "Instance profile name per cluster family."
  value       = { for family, p in aws_iam_instance_profile.broker : family => p.name }
}

output "broker_instance_profile_prefix" {
  description = "What the fleet manager prefixes a family with to name its profile (--ec2-instance-profile-prefix)."
  value       = "${var.name}-broker-"
}

output "fleet_manager_instance_profile" {
  description = "The fleet manager hosts' instance profile."
  value       = aws_iam_instance_profile.fleet_manager.name
}

output "fleet_manager_role_arn" {
  description = "The fleet manager hosts' role."
  value       = aws_iam_role.fleet_manager.arn
}
