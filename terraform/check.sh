#!/usr/bin/env bash
# Checks the Terraform offline: fmt, init + validate of the module (and through it modules/function) and of
# examples/basic, `terraform test` (every tests/*.tftest.hcl, plan mode with mock providers), tflint, tfsec.
#
# The Terraform registry cannot be reached from CI, so the providers are built from the Go module proxy
# once and kept in a filesystem mirror in the user's cache; later runs reuse it (a cold run builds the
# google provider: ~1.4 GB of modules, several minutes, ~2 GB of memory). Needs only go and terraform.
# The drift test between this Terraform and the Go code is a Go test (terraform/terraform_test.go) and
# runs with the other Go tests.
#
# Environment: XDG_CACHE_HOME (cache root, default ~/.cache).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/portability-pipeline"
mirror="$cache/terraform-mirror"
tools="$cache/tools"
platform="$(go env GOOS)_$(go env GOARCH)"

# Provider builds: Terraform version (what the constraints see) and the Go module version it is built from.
google_version=8.0.0
google_module=github.com/hashicorp/terraform-provider-google
google_module_version=v1.20.1-0.20260828184646-f3721fb45fa3 # a 2026-08-28 commit of the 8.0.0 line
# The module proxy serves only v1.3.0 of the archive provider (its later tags are not Go-module
# versions); it speaks plugin protocol 5, which Terraform 1.x still loads, and its excludes are exact paths.
archive_version=1.3.0
archive_module=github.com/hashicorp/terraform-provider-archive
archive_module_version=v1.3.0
tflint_version=v0.64.0
tfsec_version=v1.26.0

step() { printf '\n== %s\n' "$*"; }
fail() {
  echo "check.sh: $*" >&2
  exit 1
}

command -v go >/dev/null || fail "go is not installed"
command -v terraform >/dev/null || fail "terraform is not installed"
mkdir -p "$mirror" "$tools"

# One builder at a time per cache (parallel CI jobs on one machine share it).
if command -v flock >/dev/null; then
  exec 9>"$cache/.lock"
  flock 9
fi

# Go builds outside the repository's module, with our own flags only.
export GOWORK=off GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
gobuild_env=(env GOFLAGS=-buildvcs=false)

# install_provider NAME VERSION BINARY: put BINARY into the mirror layout Terraform expects.
install_provider() {
  local dir="$mirror/registry.terraform.io/hashicorp/$1/$2/$platform"
  mkdir -p "$dir"
  mv -f "$3" "$dir/terraform-provider-$1_v$2"
}

# build_provider NAME VERSION BUILDER: unless the mirror has it, run BUILDER DIR in a fresh temporary DIR
# (it leaves DIR/terraform-provider-NAME) and install the result; once per cache.
build_provider() {
  local name=$1 version=$2 builder=$3 tmp start
  [[ -x "$mirror/registry.terraform.io/hashicorp/$name/$version/$platform/terraform-provider-${name}_v$version" ]] && return
  step "building the $name provider $version; once per cache"
  tmp=$(mktemp -d)
  start=$SECONDS
  "$builder" "$tmp"
  install_provider "$name" "$version" "$tmp/terraform-provider-$name"
  rm -rf "$tmp"
  echo "built in $((SECONDS - start)) s"
}

build_google() {
  (cd "$1" && GOBIN="$1" "${gobuild_env[@]}" go install "$google_module@$google_module_version") ||
    fail "could not build the google provider ($google_module@$google_module_version) from the Go module proxy"
}

# `go install module@version` wants the module's version list, which the proxy refuses for this module;
# so download the one version, and build it in a writable copy (its go.mod predates module paths and
# its vendor/ is empty in the module zip).
build_archive() {
  local src
  src=$(cd "$1" && "${gobuild_env[@]}" go mod download -json "$archive_module@$archive_module_version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -n "$src" && -d "$src" ]] || fail "could not download $archive_module@$archive_module_version"
  cp -R "$src" "$1/src"
  chmod -R u+w "$1/src"
  rm -rf "$1/src/vendor"
  (cd "$1/src" && env GOFLAGS="-mod=mod -buildvcs=false" go build -o "$1/terraform-provider-archive" .) ||
    fail "could not build the archive provider"
}

build_provider google "$google_version" build_google
build_provider archive "$archive_version" build_archive

tflint="$tools/tflint-$tflint_version/tflint"
if [[ ! -x "$tflint" ]]; then
  step "installing tflint $tflint_version"
  (cd "$tools" && GOBIN="$(dirname "$tflint")" "${gobuild_env[@]}" go install "github.com/terraform-linters/tflint@$tflint_version")
fi
tfsec="$tools/tfsec-$tfsec_version/tfsec"
if [[ ! -x "$tfsec" ]]; then
  step "installing tfsec $tfsec_version"
  (cd "$tools" && GOBIN="$(dirname "$tfsec")" "${gobuild_env[@]}" go install "github.com/aquasecurity/tfsec/cmd/tfsec@$tfsec_version")
fi

# Terraform takes providers from the mirror only: nothing is fetched from the network.
cli_config="$cache/terraformrc"
cat >"$cli_config" <<EOF
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["registry.terraform.io/hashicorp/*"]
  }
}
EOF
export TF_CLI_CONFIG_FILE="$cli_config" TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1

cd "$here"

step "terraform fmt -check -recursive"
terraform fmt -check -recursive -diff .

for dir in . examples/basic; do
  step "terraform init + validate: $dir"
  # The lock file is local (gitignored): its hashes are those of whatever this cache built.
  rm -f "$dir/.terraform.lock.hcl"
  terraform -chdir="$dir" init -backend=false -input=false -no-color >/dev/null
  terraform -chdir="$dir" validate -no-color
done

step "terraform test: tests/*.tftest.hcl"
# Every file in tests/ (mock providers, plan mode): nothing is created, nothing is fetched; the providers'
# schemas come from the mirror through the init above.
tests=(tests/*.tftest.hcl)
[[ -e "${tests[0]}" ]] || fail "no tests in $here/tests"
echo "${#tests[@]} test files: ${tests[*]}"
terraform test -no-color -test-directory=tests

step "tflint"
# The child module is linted on its own too: the root's lint only evaluates the values passed to it.
for dir in . modules/function examples/basic; do
  "$tflint" --chdir="$dir" --config="$here/.tflint.hcl" --format=compact
done

step "tfsec"
"$tfsec" . --no-colour --concise-output --exclude-downloaded-modules --no-module-downloads

step "terraform checks passed"
