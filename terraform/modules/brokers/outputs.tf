output "launch_template_id" {
  description = "The broker launch template (--ec2-launch-template)."
  value       = aws_launch_template.host["broker"].id
}

output "controller_launch_template_id" {
  description = "The KRaft controller launch template (--ec2-controller-launch-template)."
  value       = aws_launch_template.host["controller"].id
}

output "launch_template_name" {
  description = "The broker launch template's name."
  value       = aws_launch_template.host["broker"].name
}
