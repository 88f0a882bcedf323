output "allowed" {
  description = "Whether the policy allows the request."
  value       = contains(local.applies, "Allow") && !contains(local.applies, "Deny")
}
