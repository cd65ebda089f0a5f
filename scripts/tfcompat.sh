#!/usr/bin/env bash
# The Terraform compatibility test (docs/dev/terraform.md): OpenTofu and
# terraform-provider-openstack, both built from the Go module proxy, drive
# Neutrino (behind a real Keystone) through every scenario of
# test/tfcompat/testdata: apply, plan without changes, in-place update,
# plan without changes, destroy.
#
#   sudo bash scripts/tfcompat.sh            both stores
#   sudo bash scripts/tfcompat.sh sqlite     one store
#
# The binaries are cached in $NEUTRINO_TFCOMPAT_CACHE (default
# /var/cache/neutrino/tfcompat/<tofu>-<provider>); the first run builds
# them (several minutes on two cores), later runs reuse them. Not part of
# scripts/test.sh: the build alone exceeds the three minutes CI may spend.
set -euo pipefail
cd "$(dirname "$0")/.."

TOFU_VERSION=${TOFU_VERSION:-v1.12.6}
PROVIDER_VERSION=${PROVIDER_VERSION:-v3.4.0}
log() { echo "[tfcompat] $*" >&2; }

cache=${NEUTRINO_TFCOMPAT_CACHE:-/var/cache/neutrino/tfcompat}/tofu-$TOFU_VERSION-openstack-$PROVIDER_VERSION
mkdir -p "$cache/providers"

if [ ! -x "$cache/tofu" ]; then
    # OpenTofu's go.mod has a replace directive, which `go install
    # module@version` refuses: build inside the downloaded module instead.
    log "building OpenTofu $TOFU_VERSION"
    dir=$(go mod download -json "github.com/opentofu/opentofu@$TOFU_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -d "$dir" ] || { log "could not download OpenTofu $TOFU_VERSION"; exit 1; }
    (cd "$dir" && GOFLAGS=-mod=mod go build -trimpath -o "$cache/tofu.new" ./cmd/tofu)
    mv "$cache/tofu.new" "$cache/tofu"
fi
if [ ! -x "$cache/providers/terraform-provider-openstack" ]; then
    log "building terraform-provider-openstack $PROVIDER_VERSION"
    GOBIN="$cache/providers" go install -trimpath \
        "github.com/terraform-provider-openstack/terraform-provider-openstack/v3@$PROVIDER_VERSION"
fi

# Keystone (and PostgreSQL), as the main test command sets them up.
env_lines=$(bash scripts/ci/keystone.sh)
eval "export $(printf '%s\n' "$env_lines" | grep '^NEUTRINO_TEST_KEYSTONE=')"
eval "export $(printf '%s\n' "$env_lines" | grep '^NEUTRINO_TEST_POSTGRES=')"

export NEUTRINO_TOFU="$cache/tofu" NEUTRINO_TOFU_PROVIDER_DIR="$cache/providers"
stores=${1:-sqlite postgres}
for store in $stores; do
    log "scenarios on $store"
    NEUTRINO_TFCOMPAT_STORE=$store go test -tags tfcompat -count=1 -v -timeout 20m ./test/tfcompat
done
