#!/usr/bin/env bash
# A real `terraform init / validate / plan / apply / plan (clean?) / destroy` of
# examples/complete against moto on loopback, the way moto's own CI applies terraform.
#
# The registry of Terraform providers is not reachable here, so the AWS provider is built from
# its Go module (a pinned pseudo-version of its main branch: 6.48.0, unreleased then) and
# installed into a filesystem mirror. The first build takes tens of minutes; later runs reuse it.
# Not part of `make test` (make terraform-moto). Writes a report to dev/.cache/terraform/moto-report.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/.." && pwd)
cache="$repo/dev/.cache/terraform"
PROVIDER_MODULE=github.com/hashicorp/terraform-provider-aws
PROVIDER_PSEUDO=v1.60.1-0.20260602190131-5f2286d6d836
PROVIDER_VERSION=6.48.0
mirror="$cache/mirror"
plugin_dir="$mirror/registry.terraform.io/hashicorp/aws/$PROVIDER_VERSION/linux_amd64"
report="$cache/moto-report.txt"
mkdir -p "$cache/bin" "$plugin_dir"

step() { printf '\n== %s\n' "$*" | tee -a "$report"; }
: > "$report"

if [[ ! -x "$plugin_dir/terraform-provider-aws_v$PROVIDER_VERSION" ]]; then
  step "building the AWS provider $PROVIDER_VERSION ($PROVIDER_MODULE@$PROVIDER_PSEUDO): tens of minutes"
  started=$(date +%s)
  GOBIN="$cache/bin" GOFLAGS=-buildvcs=false go install "$PROVIDER_MODULE@$PROVIDER_PSEUDO"
  install -m 0755 "$cache/bin/terraform-provider-aws" "$plugin_dir/terraform-provider-aws_v$PROVIDER_VERSION"
  echo "built in $(( $(date +%s) - started )) s" | tee -a "$report"
fi

work=$(mktemp -d)
moto_pid=
cleanup() {
  [[ -n "$moto_pid" ]] && kill "$moto_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/terraformrc" <<RC
disable_checkpoint = true
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/aws"]
  }
}
RC
export TF_CLI_CONFIG_FILE="$work/terraformrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
endpoint="http://127.0.0.1:$port"
# AWS managed policies (AmazonRDSEnhancedMonitoringRole) exist in moto only when loaded.
MOTO_IAM_LOAD_MANAGED_POLICIES=true "$repo/dev/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" > "$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 1 120); do curl -sf "$endpoint/moto-api/" >/dev/null && break; sleep 0.5; done
curl -sf "$endpoint/moto-api/" >/dev/null || { echo "moto did not start"; cat "$work/moto.log"; exit 1; }
image=$("$repo/dev/.venv/bin/python" -c "
import boto3; ec2 = boto3.client('ec2', endpoint_url='$endpoint')
print(sorted(i['ImageId'] for i in ec2.describe_images(Owners=['amazon'])['Images'])[0])")
echo "moto at $endpoint, image $image" | tee -a "$report"

cp -r "$here" "$work/terraform"
find "$work/terraform" -name .terraform -prune -exec rm -rf {} +
ex="$work/terraform/examples/complete"
vars=(-var "aws_endpoint=$endpoint" -var "image_id=$image")
tf() { terraform -chdir="$ex" "$@"; }

step "terraform init (provider from the filesystem mirror)"
tf init -input=false -no-color > "$work/init.txt"
grep -E "Installed|successfully initialized" "$work/init.txt" | tee -a "$report"
step "terraform validate"
tf validate -no-color | tee -a "$report"
step "terraform plan"
tf plan -input=false -no-color "${vars[@]}" -out="$work/plan" > "$work/plan.txt"
grep -E "^Plan:" "$work/plan.txt" | tee -a "$report"
step "terraform apply"
started=$(date +%s)
if ! tf apply -input=false -no-color -auto-approve "$work/plan" > "$work/apply.txt" 2>&1; then
  grep -B2 -A12 "Error:" "$work/apply.txt" | tee -a "$report"
  echo "APPLY FAILED" | tee -a "$report"
  tf destroy -input=false -no-color -auto-approve "${vars[@]}" > "$work/destroy.txt" 2>&1 || true
  exit 1
fi
grep -E "^Apply complete" "$work/apply.txt" | tee -a "$report"
echo "apply took $(( $(date +%s) - started )) s" | tee -a "$report"
tf state list | sed 's/^/  /' > "$work/state.txt"
echo "resources in state: $(wc -l < "$work/state.txt")" | tee -a "$report"
cat "$work/state.txt" >> "$report"
step "terraform plan after apply (0 = no changes)"
set +e
tf plan -input=false -no-color -detailed-exitcode "${vars[@]}" > "$work/replan.txt" 2>&1
replan=$?
set -e
grep -E "^(Plan:|No changes)|will be|must be" "$work/replan.txt" | tee -a "$report" || true
echo "detailed exit code: $replan" | tee -a "$report"
cp "$work/replan.txt" "$cache/moto-replan.txt"
# What would change, attribute by attribute (moto not storing a value it was given shows as an
# in-place update); nothing may be created, destroyed or replaced.
echo "attributes the second plan would set again:" | tee -a "$report"
grep -E '^\s+[~+-] [a-z_]+ ' "$work/replan.txt" | sed -E 's/^\s+//; s/ +=.*//' | sort | uniq -c | sed 's/^/  /' | tee -a "$report" || true
recreated=$(sed -n -E 's/^Plan: ([0-9]+) to add, [0-9]+ to change, ([0-9]+) to destroy.*/\1 \2/p' "$work/replan.txt")
[[ -z "$recreated" || "$recreated" == "0 0" ]] || { echo "NOT CLEAN: the second plan re-creates resources ($recreated)" | tee -a "$report"; exit 1; }
step "terraform output"
tf output -no-color | tee -a "$report"
step "bad input: plans that must fail, naming the variable"
bad() {
  local what=$1 expect=$2; shift 2
  if tf plan -input=false -no-color "${vars[@]}" "$@" > "$work/bad.txt" 2>&1; then
    echo "NOT REFUSED: $what" | tee -a "$report"; return 1
  fi
  if grep -q "$expect" "$work/bad.txt"; then echo "refused: $what: $(grep -m1 -o -E "(zones|zookeeper_count|vpc_cidr): .*" "$work/bad.txt" | sed 's/│//g')" | tee -a "$report"
  else echo "refused without naming $expect: $what" | tee -a "$report"; cat "$work/bad.txt"; return 1; fi
}
cp "$ex/main.tf" "$work/main.tf.orig"
sed -i 's/zones                        = \["${var.region}a", "${var.region}b", "${var.region}c"\]/zones = ["${var.region}a", "${var.region}b"]/' "$ex/main.tf"
bad "two zones" "var.zones"
cp "$work/main.tf.orig" "$ex/main.tf"
sed -i 's/zookeeper_count              = 5/zookeeper_count = 4/' "$ex/main.tf"
bad "an ensemble of 4" "var.zookeeper_count"
cp "$work/main.tf.orig" "$ex/main.tf"
sed -i 's|vpc_cidr                     = "10.40.0.0/16"|vpc_cidr = "10.40.0.0/33"|' "$ex/main.tf"
bad "vpc_cidr 10.40.0.0/33" "var.vpc_cidr"
cp "$work/main.tf.orig" "$ex/main.tf"
step "terraform destroy"
tf destroy -input=false -no-color -auto-approve "${vars[@]}" > "$work/destroy.txt" 2>&1 || { grep -A12 "Error:" "$work/destroy.txt" | tee -a "$report"; exit 1; }
grep -E "^Destroy complete" "$work/destroy.txt" | tee -a "$report"
left=$(tf state list | wc -l)
echo "resources left in state: $left" | tee -a "$report"
[[ "$left" == 0 ]] || { echo "NOT CLEAN: $left resources left after destroy" | tee -a "$report"; exit 1; }
step "moto apply: clean (report: $report)"
