# One group per role; every rule comes from the port matrix (modules/port-matrix), so the
# network policy is written, and tested, in one place. Egress mirrors ingress: a role may open
# exactly the connections its peers accept from it.
resource "aws_security_group" "this" {
  #checkov:skip=CKV2_AWS_5:attached through this module's output ids, which checkov's graph does not follow across modules
  for_each = toset(var.roles)

  name        = "${var.name}-${replace(each.key, "_", "-")}"
  description = "kafka-fleet ${replace(each.key, "_", " ")}"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-${replace(each.key, "_", "-")}" })
}

resource "aws_vpc_security_group_ingress_rule" "from_role" {
  for_each = { for r in var.role_rules : "${r.to}-${r.port}-from-${r.from}" => r }

  security_group_id            = aws_security_group.this[each.value.to].id
  referenced_security_group_id = aws_security_group.this[each.value.from].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  description                  = each.value.description
}

resource "aws_vpc_security_group_egress_rule" "to_role" {
  for_each = { for r in var.role_rules : "${r.from}-to-${r.to}-${r.port}" => r }

  security_group_id            = aws_security_group.this[each.value.from].id
  referenced_security_group_id = aws_security_group.this[each.value.to].id
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  description                  = each.value.description
}

resource "aws_vpc_security_group_ingress_rule" "from_cidr" {
  for_each = { for r in var.cidr_rules : "${r.to}-${r.port}-from-${r.cidr}" => r }

  security_group_id = aws_security_group.this[each.value.to].id
  cidr_ipv4         = each.value.cidr
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port
  description       = each.value.description
}

resource "aws_vpc_security_group_egress_rule" "https" {
  for_each = toset(var.https_out)

  security_group_id = aws_security_group.this[each.key].id
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  description       = "AWS APIs (through VPC endpoints or NAT)"
}
