# A small IAM evaluator for the tests: is `action` on `resource` allowed by `policy`, given the
# request's condition keys? Follows IAM's rules for what the fleet's policies use: an explicit
# Deny wins; an Allow needs the action, the resource and every condition to match; a condition
# on a key the request lacks fails, except ForAllValues, which holds on an absent key (as in IAM,
# which is why the policies pair it with a request that always carries the key). An operator it
# does not know never matches.
terraform {
  required_version = ">= 1.11.0, < 2.0.0"
}


locals {
  statements = [for s in jsondecode(var.policy).Statement : s]
  glob       = "^%s$"

  matched = [
    for s in local.statements : {
      effect   = s.Effect
      action   = anytrue([for a in flatten([s.Action]) : can(regex(format(local.glob, replace(replace(replace(a, ".", "\\."), "*", ".*"), "?", ".")), var.action))])
      resource = anytrue([for r in flatten([s.Resource]) : can(regex(format(local.glob, replace(replace(replace(r, ".", "\\."), "*", ".*"), "?", ".")), var.resource))])
      conditions = alltrue(flatten([
        for operator, keys in try(s.Condition, {}) : [
          for key, expected in keys : (
            operator == "StringEquals" ? (
              lookup(var.context, key, null) != null && length(lookup(var.context, key, [])) == 1 && contains(flatten([expected]), lookup(var.context, key, [""])[0])
              ) : operator == "StringLike" ? (
              lookup(var.context, key, null) != null && length(lookup(var.context, key, [])) == 1 && anytrue([for e in flatten([expected]) : can(regex(format(local.glob, replace(replace(replace(e, ".", "\\."), "*", ".*"), "?", ".")), lookup(var.context, key, [""])[0]))])
              ) : operator == "ForAllValues:StringEquals" ? (
              alltrue([for v in lookup(var.context, key, []) : contains(flatten([expected]), v)])
              ) : operator == "ForAllValues:StringLike" ? (
              alltrue([for v in lookup(var.context, key, []) : anytrue([for e in flatten([expected]) : can(regex(format(local.glob, replace(replace(replace(e, ".", "\\."), "*", ".*"), "?", ".")), v))])])
            ) : false
          )
        ]
      ]))
    }
  ]
  applies = [for m in local.matched : m.effect if m.action && m.resource && m.conditions]
}
