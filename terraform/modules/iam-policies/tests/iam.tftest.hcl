# The fleet's IAM policies, evaluated against requests (tests/evaluate): what a broker host and
# the fleet manager may and may not do. Changing a policy so that one of these is allowed fails.

variables {
  region     = "us-east-1"
  account_id = "123456789012"
  zone_id    = "Z0FLEET"
  broker_record_patterns = {
    blue  = ["blue.kafka.internal", "broker-*.blue.kafka.internal", "controller-*.blue.kafka.internal", "blue-*.kafka.internal", "broker-*.blue-*.kafka.internal", "controller-*.blue-*.kafka.internal"]
    green = ["green.kafka.internal", "broker-*.green.kafka.internal", "controller-*.green.kafka.internal", "green-*.kafka.internal", "broker-*.green-*.kafka.internal", "controller-*.green-*.kafka.internal"]
  }
  broker_role_arns          = ["arn:aws:iam::123456789012:role/kafka-fleet-broker-blue", "arn:aws:iam::123456789012:role/kafka-fleet-broker-green"]
  subnet_ids                = ["subnet-a", "subnet-b", "subnet-c"]
  broker_security_group_ids = ["sg-broker"]
  launch_template_ids       = ["lt-broker", "lt-controller"]
  database_secret_arn       = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-fleet/store-url-AbCdEf"
  kms_key_arn               = "arn:aws:kms:us-east-1:123456789012:key/1111-2222"
}

run "policies" {
  command = plan

  # Nothing on "*" but reads.
  assert {
    condition = alltrue(flatten([
      for doc in concat(values(output.broker), [output.fleet_manager]) : [
        for s in jsondecode(doc).Statement : alltrue([for a in flatten([s.Action]) : can(regex("^[a-z0-9]+:(Describe|List|Get)[A-Za-z]*$", a))])
        if contains(flatten([s.Resource]), "*")
      ]
    ]))
    error_message = "a statement on Resource \"*\" allows a write"
  }
  # No wildcard actions anywhere.
  assert {
    condition     = !anytrue(flatten([for doc in concat(values(output.broker), [output.fleet_manager]) : [for s in jsondecode(doc).Statement : [for a in flatten([s.Action]) : strcontains(a, "*")]]]))
    error_message = "a policy allows a wildcard action"
  }
}

# --- broker hosts ----------------------------------------------------------------------------

run "broker_upserts_its_own_cluster_records" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "route53:ChangeResourceRecordSets"
    resource = "arn:aws:route53:::hostedzone/Z0FLEET"
    context = {
      "route53:ChangeResourceRecordSetsActions"               = ["UPSERT", "UPSERT"]
      "route53:ChangeResourceRecordSetsNormalizedRecordNames" = ["broker-4.blue.kafka.internal", "blue.kafka.internal"]
    }
  }
  assert {
    condition     = output.allowed
    error_message = "a blue broker must register broker-4.blue and blue"
  }
}

run "broker_upserts_its_builds_records" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "route53:ChangeResourceRecordSets"
    resource = "arn:aws:route53:::hostedzone/Z0FLEET"
    context = {
      "route53:ChangeResourceRecordSetsActions"               = ["UPSERT", "UPSERT"]
      "route53:ChangeResourceRecordSetsNormalizedRecordNames" = ["broker-1.blue-2.kafka.internal", "blue-2.kafka.internal"]
    }
  }
  assert {
    condition     = output.allowed
    error_message = "a broker of the fresh build blue-2 must register its names"
  }
}

run "broker_cannot_change_another_clusters_records" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "route53:ChangeResourceRecordSets"
    resource = "arn:aws:route53:::hostedzone/Z0FLEET"
    context = {
      "route53:ChangeResourceRecordSetsActions"               = ["UPSERT", "UPSERT"]
      "route53:ChangeResourceRecordSetsNormalizedRecordNames" = ["broker-1.blue.kafka.internal", "green.kafka.internal"]
    }
  }
  assert {
    condition     = !output.allowed
    error_message = "a blue broker changed green's record"
  }
}

run "broker_cannot_take_over_zookeeper_names" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "route53:ChangeResourceRecordSets"
    resource = "arn:aws:route53:::hostedzone/Z0FLEET"
    context = {
      "route53:ChangeResourceRecordSetsActions"               = ["UPSERT"]
      "route53:ChangeResourceRecordSetsNormalizedRecordNames" = ["zk1.kafka.internal"]
    }
  }
  assert {
    condition     = !output.allowed
    error_message = "a broker re-pointed zk1"
  }
}

run "broker_cannot_delete_records" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "route53:ChangeResourceRecordSets"
    resource = "arn:aws:route53:::hostedzone/Z0FLEET"
    context = {
      "route53:ChangeResourceRecordSetsActions"               = ["DELETE"]
      "route53:ChangeResourceRecordSetsNormalizedRecordNames" = ["broker-1.blue.kafka.internal"]
    }
  }
  assert {
    condition     = !output.allowed
    error_message = "a broker deleted a record (UPSERT only)"
  }
}

run "broker_cannot_write_another_zone" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "route53:ChangeResourceRecordSets"
    resource = "arn:aws:route53:::hostedzone/ZOTHER"
    context = {
      "route53:ChangeResourceRecordSetsActions"               = ["UPSERT"]
      "route53:ChangeResourceRecordSetsNormalizedRecordNames" = ["blue.kafka.internal"]
    }
  }
  assert {
    condition     = !output.allowed
    error_message = "a broker wrote a zone other than the fleet's"
  }
}

run "broker_cannot_terminate_instances" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "ec2:TerminateInstances"
    resource = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"
    context  = { "aws:ResourceTag/fleet:managed-by" = ["kafka-fleet"] }
  }
  assert {
    condition     = !output.allowed
    error_message = "a broker host may terminate instances"
  }
}

run "broker_cannot_launch_instances" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "ec2:RunInstances"
    resource = "arn:aws:ec2:us-east-1:123456789012:instance/*"
    context  = { "aws:RequestTag/fleet:managed-by" = ["kafka-fleet"] }
  }
  assert {
    condition     = !output.allowed
    error_message = "a broker host may launch instances"
  }
}

run "broker_reads_instances" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["green"]
    action   = "ec2:DescribeInstances"
    resource = "*"
  }
  assert {
    condition     = output.allowed
    error_message = "a broker host must describe instances"
  }
}

# --- the fleet manager -----------------------------------------------------------------------

run "fleet_manager_terminates_its_tagged_instance" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "ec2:TerminateInstances"
    resource = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"
    context  = { "aws:ResourceTag/fleet:managed-by" = ["kafka-fleet"] }
  }
  assert {
    condition     = output.allowed
    error_message = "the fleet manager must terminate the hosts it launched"
  }
}

run "fleet_manager_cannot_terminate_an_untagged_instance" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "ec2:TerminateInstances"
    resource = "arn:aws:ec2:us-east-1:123456789012:instance/i-0def"
    context  = {}
  }
  assert {
    condition     = !output.allowed
    error_message = "the fleet manager may terminate an untagged instance"
  }
}

run "fleet_manager_cannot_terminate_an_instance_tagged_otherwise" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "ec2:TerminateInstances"
    resource = "arn:aws:ec2:us-east-1:123456789012:instance/i-0def"
    context  = { "aws:ResourceTag/fleet:managed-by" = ["someone-else"] }
  }
  assert {
    condition     = !output.allowed
    error_message = "the fleet manager may terminate another owner's instance"
  }
}

run "fleet_manager_cannot_launch_an_untagged_instance" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "ec2:RunInstances"
    resource = "arn:aws:ec2:us-east-1:123456789012:instance/*"
    context  = { "aws:TagKeys" = ["Name"] }
  }
  assert {
    condition     = !output.allowed
    error_message = "the fleet manager may launch an instance without its tag"
  }
}

run "fleet_manager_launches_a_tagged_instance" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "ec2:RunInstances"
    resource = "arn:aws:ec2:us-east-1:123456789012:instance/*"
    context  = { "aws:RequestTag/fleet:managed-by" = ["kafka-fleet"], "aws:TagKeys" = ["fleet:cluster", "fleet:managed-by", "fleet:launch-token", "Name"] }
  }
  assert {
    condition     = output.allowed
    error_message = "the fleet manager must launch tagged broker hosts"
  }
}

run "fleet_manager_passes_a_broker_role" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "iam:PassRole"
    resource = "arn:aws:iam::123456789012:role/kafka-fleet-broker-blue"
    context  = { "iam:PassedToService" = ["ec2.amazonaws.com"] }
  }
  assert {
    condition     = output.allowed
    error_message = "the fleet manager must pass the broker role"
  }
}

run "fleet_manager_cannot_pass_another_role" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "iam:PassRole"
    resource = "arn:aws:iam::123456789012:role/admin"
    context  = { "iam:PassedToService" = ["ec2.amazonaws.com"] }
  }
  assert {
    condition     = !output.allowed
    error_message = "the fleet manager may pass a role other than the broker's"
  }
}

run "fleet_manager_cannot_launch_into_a_foreign_subnet" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "ec2:RunInstances"
    resource = "arn:aws:ec2:us-east-1:123456789012:subnet/subnet-elsewhere"
  }
  assert {
    condition     = !output.allowed
    error_message = "the fleet manager may launch into any subnet"
  }
}

run "fleet_manager_cannot_read_other_secrets" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "secretsmanager:GetSecretValue"
    resource = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/payments-XyZ"
  }
  assert {
    condition     = !output.allowed
    error_message = "the fleet manager may read any secret"
  }
}

# --- host tokens in Secrets Manager ----------------------------------------------------------

run "broker_reads_its_clusters_host_token" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "secretsmanager:GetSecretValue"
    resource = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-fleet/hosts/blue/fleet-api-token-AbCdEf"
  }
  assert {
    condition     = output.allowed
    error_message = "a blue broker must read blue's host token"
  }
}

run "broker_reads_its_builds_host_token" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "secretsmanager:GetSecretValue"
    resource = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-fleet/hosts/blue-2/fleet-api-token-AbCdEf"
  }
  assert {
    condition     = output.allowed
    error_message = "a blue broker must read the host token of blue's build blue-2"
  }
}

run "broker_cannot_read_another_familys_host_token" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "secretsmanager:GetSecretValue"
    resource = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-fleet/hosts/green/fleet-api-token-AbCdEf"
  }
  assert {
    condition     = !output.allowed
    error_message = "a blue broker may read green's host token"
  }
}

run "broker_cannot_read_the_store_secret" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.broker["blue"]
    action   = "secretsmanager:GetSecretValue"
    resource = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-fleet/store-url-AbCdEf"
  }
  assert {
    condition     = !output.allowed
    error_message = "a broker may read the store's secret"
  }
}

run "fleet_manager_creates_a_tagged_host_token_secret" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "secretsmanager:CreateSecret"
    resource = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-fleet/hosts/blue/fleet-api-token-AbCdEf"
    context  = { "aws:RequestTag/fleet:managed-by" = ["kafka-fleet"] }
  }
  assert {
    condition     = output.allowed
    error_message = "the fleet manager must create a cluster's host-token secret"
  }
}

run "fleet_manager_cannot_overwrite_other_secrets" {
  command = plan
  module { source = "./tests/evaluate" }
  variables {
    policy   = run.policies.fleet_manager
    action   = "secretsmanager:PutSecretValue"
    resource = "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-fleet/store-url-AbCdEf"
    context  = { "aws:ResourceTag/fleet:managed-by" = ["kafka-fleet"] }
  }
  assert {
    condition     = !output.allowed
    error_message = "the fleet manager may overwrite secrets other than host tokens"
  }
}
