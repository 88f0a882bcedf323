#!/usr/bin/env bash
# Offline checks of terraform/: fmt, tflint, checkov, `terraform test` of the provider-free
# modules, and self-tests showing that each check catches what it is for. Installs pinned tools
# into dev/.cache/terraform on first use. Exits non-zero on the first failure.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
repo=$(cd "$here/.." && pwd)
cache="$repo/dev/.cache/terraform"
export TF_CLI_CONFIG_FILE="$here/.terraformrc"
export TF_IN_AUTOMATION=1
export CHECKPOINT_DISABLE=1
mkdir -p "$cache/bin"
export PATH="$cache/bin:$PATH"

TERRAFORM_VERSION=1.11.4
TFLINT_VERSION=v0.64.0
CHECKOV_VERSION=3.3.30
TEST_MODULES=(modules/topology modules/iam-policies modules/port-matrix)

step() { printf '\n== %s\n' "$*"; }

# Terraform: the machine's if it is recent enough, else built from its Go module.
if ! terraform version -json 2>/dev/null | python3 -c 'import json,sys; v=json.load(sys.stdin)["terraform_version"].split("."); sys.exit(0 if (int(v[0]),int(v[1]))>=(1,11) else 1)'; then
  # Terraform's go.mod has replace directives, which `go install pkg@version` refuses: build
  # inside the downloaded module instead.
  step "building terraform $TERRAFORM_VERSION from its Go module"
  src=$(go mod download -json "github.com/hashicorp/terraform@v$TERRAFORM_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  (cd "$src" && go build -o "$cache/bin/terraform" .)
fi
# (Output captured first: `grep -q` closing the pipe early fails it under pipefail.)
tflint_version=$(tflint --version 2>/dev/null || true)
if [[ "$tflint_version" != *"version ${TFLINT_VERSION#v}"* ]]; then
  step "building tflint $TFLINT_VERSION (go install)"
  GOBIN="$cache/bin" go install "github.com/terraform-linters/tflint@$TFLINT_VERSION"
fi
checkov_version=$("$cache/checkov/bin/checkov" --version 2>/dev/null || true)
if [[ "$checkov_version" != "$CHECKOV_VERSION" ]]; then
  step "installing checkov $CHECKOV_VERSION (virtualenv)"
  python3 -m venv "$cache/checkov"
  "$cache/checkov/bin/pip" install -q "checkov==$CHECKOV_VERSION"
fi
checkov="$cache/checkov/bin/checkov"

fmt_check() { terraform -chdir="$1" fmt -check -recursive -diff; }
tflint_check() { tflint --chdir="$1" --config="$here/.tflint.hcl" --recursive --format=compact; }
checkov_check() { BC_SKIP_MAPPING=TRUE "$checkov" -d "$1" --config-file "$here/.checkov.yaml"; }
# Explicit status: errexit does not apply inside a function called as an `if` condition.
module_tests() {
  local root=$1 m status=0
  for m in "${TEST_MODULES[@]}"; do
    terraform -chdir="$root/$m" init -backend=false -input=false >/dev/null || status=1
    terraform -chdir="$root/$m" test -no-color || status=1
  done
  return $status
}

step "terraform fmt -check"
fmt_check "$here"
step "tflint $TFLINT_VERSION"
tflint_check "$here"
step "checkov $CHECKOV_VERSION"
checkov_check "$here"
step "terraform test (provider-free modules)"
module_tests "$here"

# Self-tests: a copy of terraform/ with one deliberate fault each; the matching check must fail.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mutant() { rm -rf "$scratch/tf"; cp -r "$here" "$scratch/tf"; find "$scratch/tf" -name .terraform -prune -exec rm -rf {} +; }
expect_failure() {
  local what=$1; shift
  if "$@" >"$scratch/out" 2>&1; then
    echo "self-test FAILED: $what was not caught"; cat "$scratch/out"; exit 1
  fi
  echo "self-test: $what is caught"
}
step "self-tests"
mutant
printf 'locals {\n      misaligned=1\n}\n' >> "$scratch/tf/modules/topology/main.tf"
expect_failure "an unformatted file" fmt_check "$scratch/tf"
mutant
sed -i 's/"route53:ChangeResourceRecordSetsActions" = \["UPSERT"\]/"route53:ChangeResourceRecordSetsActions" = ["UPSERT", "DELETE"]/' "$scratch/tf/modules/iam-policies/main.tf"
grep -q '"UPSERT", "DELETE"' "$scratch/tf/modules/iam-policies/main.tf"
expect_failure "a broker policy that allows DELETE" module_tests "$scratch/tf"
mutant
sed -i 's/StringEquals = { "aws:ResourceTag\/${local.tag_key}" = local.tag_value }/StringLike = { "aws:ResourceTag\/${local.tag_key}" = "*" }/' "$scratch/tf/modules/iam-policies/main.tf"
grep -q 'StringLike = { "aws:ResourceTag' "$scratch/tf/modules/iam-policies/main.tf"
expect_failure "a fleet manager policy that terminates any tagged instance" module_tests "$scratch/tf"
mutant
sed -i 's/encrypted   = true/encrypted   = false/' "$scratch/tf/modules/zookeeper/main.tf"
grep -q 'encrypted   = false' "$scratch/tf/modules/zookeeper/main.tf"
expect_failure "an unencrypted volume" checkov_check "$scratch/tf"
mutant
printf 'variable "unused" {\n  type = string\n}\n' >> "$scratch/tf/modules/topology/variables.tf"
expect_failure "an undocumented, unused variable" tflint_check "$scratch/tf"
mutant
sed -i 's/{ to = "database", port = 5432, from = "fleet_manager"/{ to = "database", port = 5432, from = "broker"/' "$scratch/tf/modules/port-matrix/main.tf"
expect_failure "a database reachable from brokers" module_tests "$scratch/tf"

step "terraform checks passed"
