#!/usr/bin/env bash
#! Installs the pinned kustomize once and prints its path; `make check-manifests` renders k8s/ with it.
# The real kustomize is what `kubectl apply -k` embeds, so the offline checks see
# the objects a cluster would get. It is built from source with `go install`
# (the Go module proxy is reachable, release downloads are not) into a per-user
# cache shared by every clone; GOMODCACHE and GOCACHE stay Go's defaults so a
# rebuild after a version bump reuses the downloaded modules and compiled packages.
# v5.8.3 is newer but needs Go 1.27 and a kube-openapi version the registry here
# does not serve, so v5.8.2 (Go 1.26) is the newest that builds on these machines.
set -euo pipefail

KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.2}"
KUSTOMIZE_ROOT="${KUSTOMIZE_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/eshop-tracing/kustomize-${KUSTOMIZE_VERSION}}"
bin="$KUSTOMIZE_ROOT/bin/kustomize"

# shellcheck source=scripts/lib/go-install.sh
. "$(dirname "$0")/lib/go-install.sh"
reuse_installed "$bin"
require_go "kustomize $KUSTOMIZE_VERSION"
echo "installing kustomize $KUSTOMIZE_VERSION into $KUSTOMIZE_ROOT (about a minute, once)" >&2
# Built into a scratch folder and moved in place, so an interrupted build never
# leaves a binary that this script would then trust.
tmp="$KUSTOMIZE_ROOT.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp/bin" "$go" install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
mkdir -p "$KUSTOMIZE_ROOT"
rm -rf "${KUSTOMIZE_ROOT:?}/bin"
mv "$tmp/bin" "$KUSTOMIZE_ROOT/bin"
echo "$bin"
