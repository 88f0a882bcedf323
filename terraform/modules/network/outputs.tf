output "vpc_id" {
  description = "The VPC the fleet runs in."
  value       = local.vpc_id
}

output "subnet_ids" {
  description = "Private subnet per zone (zone => subnet ID)."
  value       = local.create_subnets ? { for zone, s in aws_subnet.private : zone => s.id } : var.existing_subnet_ids
}
