output "launch_template_id" {
  description = "The broker launch template (--ec2-launch-template)."
  value       = aws_launch_template.broker.id
}

output "launch_template_name" {
  description = "The broker launch template's name."
  value       = aws_launch_template.broker.name
}
