output "roles" {
  description = "The roles that get a security group each."
  value       = local.roles
}

output "role_rules" {
  description = "Ingress from one role to another: to, from, port (TCP), description."
  value       = local.role_rules
}

output "cidr_rules" {
  description = "Ingress from a network: to, cidr, port (TCP), description."
  value       = local.cidr_rules
}

output "https_out" {
  description = "Roles that may open HTTPS connections out (AWS APIs)."
  value       = local.https_out
}

output "reachable" {
  description = "Per role and port, the sources allowed: roles and CIDR blocks."
  value = {
    for key in distinct(concat([for r in local.role_rules : "${r.to}:${r.port}"], [for r in local.cidr_rules : "${r.to}:${r.port}"])) : key => sort(distinct(concat(
      [for r in local.role_rules : r.from if "${r.to}:${r.port}" == key],
      [for r in local.cidr_rules : r.cidr if "${r.to}:${r.port}" == key],
    )))
  }
}
