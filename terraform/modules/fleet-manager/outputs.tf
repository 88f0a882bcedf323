output "instance_ids" {
  description = "Fleet manager hosts."
  value       = aws_instance.host[*].id
}

output "private_ips" {
  description = "Fleet manager hosts' addresses."
  value       = aws_instance.host[*].private_ip
}
