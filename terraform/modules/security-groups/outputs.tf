output "ids" {
  description = "Security group ID per role."
  value       = { for role, g in aws_security_group.this : role => g.id }
}
