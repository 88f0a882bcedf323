output "zone_id" {
  description = "The private zone's ID."
  value       = aws_route53_zone.this.zone_id
}

output "zone_name" {
  description = "The private zone's name."
  value       = aws_route53_zone.this.name
}
