output "secret_arn" {
  description = "The secret holding the store URL (read it with the fleet manager's role)."
  value       = aws_secretsmanager_secret.store_url.arn
}

output "endpoint" {
  description = "The database's address (no credentials)."
  value       = aws_db_instance.store.address
}
