# The source of truth: PostgreSQL on RDS, encrypted, Multi-AZ, in the private subnets. Its
# password is generated ephemerally and handed to RDS and to the secret as write-only values: it
# is in neither the plan nor the state. The fleet manager reads the connection string from the
# secret with its role; no output carries it.
resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-store"
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

# DDL and slow statements: the reconciler polls every 200 ms, so logging every statement is noise.
resource "aws_db_parameter_group" "store" {
  name   = "${var.name}-store"
  family = "postgres${var.engine_version}"

  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }
  parameter {
    name         = "rds.force_ssl"
    value        = "1"
    apply_method = "pending-reboot"
  }
  tags = var.tags
}

# Enhanced monitoring: OS metrics every minute.
resource "aws_iam_role" "monitoring" {
  name = "${var.name}-rds-monitoring"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Principal = { Service = "monitoring.rds.amazonaws.com" }, Action = "sts:AssumeRole" }]
  })
  tags = var.tags
}

data "aws_partition" "current" {}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

ephemeral "aws_secretsmanager_random_password" "store" {
  password_length     = 40
  exclude_punctuation = true
}

resource "aws_db_instance" "store" {
  #checkov:skip=CKV_AWS_293:deletion_protection is a variable, true by default; only throwaway environments (the moto example) turn it off

  identifier     = "${var.name}-store"
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class
  db_name        = "fleet"
  username       = "fleet"
  port           = 5432

  password_wo         = ephemeral.aws_secretsmanager_random_password.store.random_password
  password_wo_version = 1

  allocated_storage     = var.allocated_storage_gib
  max_allocated_storage = var.allocated_storage_gib * 5
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  multi_az               = true
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [var.security_group_id]
  publicly_accessible    = false

  iam_database_authentication_enabled   = true
  backup_retention_period               = 14
  copy_tags_to_snapshot                 = true
  auto_minor_version_upgrade            = true
  deletion_protection                   = var.deletion_protection
  skip_final_snapshot                   = !var.deletion_protection
  final_snapshot_identifier             = var.deletion_protection ? "${var.name}-store-final" : null
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = var.kms_key_arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  parameter_group_name                  = aws_db_parameter_group.store.name

  tags = var.tags
}

resource "aws_secretsmanager_secret" "store_url" {
  #checkov:skip=CKV2_AWS_57:rotation needs a rotation function that also changes the RDS password; the fleet manager reads the secret at boot, so rotation is a rolling restart (terraform/README.md)
  name        = "${var.name}/store-url"
  description = "kafka-fleet: the fleet manager's source of truth (postgres:// URL, read by its role)"
  kms_key_id  = var.kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "store_url" {
  secret_id                = aws_secretsmanager_secret.store_url.id
  secret_string_wo         = "postgres://fleet:${ephemeral.aws_secretsmanager_random_password.store.random_password}@${aws_db_instance.store.address}:5432/fleet?sslmode=require"
  secret_string_wo_version = 1
}
