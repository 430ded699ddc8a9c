#!/usr/bin/env bash
#! Installs istioctl of the one Istio version the suite pins, once, and prints its path.
# `make check-manifests` runs `istioctl manifest generate` and `istioctl analyze`
# with it, and `make cluster` installs Istio with it, so the checks and the
# cluster agree on one Istio. Release downloads cannot be reached, so it is
# built from source with `go install` into a per-user cache shared by every
# clone; GOMODCACHE and GOCACHE stay Go's defaults, so a rebuild reuses them.
#
# Which source: the Go module istio.io/istio has no semver tags (Istio tags
# read 1.31.0), so a release is fetched by the pseudo-version of its tag's
# commit. The Go module proxy reachable here refuses that of 1.30.3
# (56df41f63e51, the newest release tag in the copy of istio/istio that could be
# read, which ends on 2026-08-22) and those of the 1.30 branch after it (an
# istio.io/api version it needs is refused). It serves eed52ebb66ad, the
# release-1.31 commit of 2026-08-27 after 1.31.0-rc.0, and everything it
# needs: the pin is that commit, stamped as Istio 1.31.0, the release of that
# branch whose images `istioctl install` deploys. Its go.mod has no replace
# directives, so `go install module@version` builds it; no copy of the module
# into a temporary folder is needed.
# The version is stamped in as Istio's release builds do: hub and tag decide
# which images `istioctl install` deploys, and without them istioctl would ask
# for images tagged "unknown".
set -euo pipefail

ISTIO_VERSION="${ISTIO_VERSION:-1.31.0}"
ISTIO_MODULE_VERSION="${ISTIO_MODULE_VERSION:-v0.0.0-20260827124520-eed52ebb66ad}"
ISTIO_HUB="${ISTIO_HUB:-docker.io/istio}"
ISTIOCTL_ROOT="${ISTIOCTL_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/eshop-tracing/istioctl-${ISTIO_VERSION}-${ISTIO_MODULE_VERSION##*-}}"
bin="$ISTIOCTL_ROOT/bin/istioctl"

# shellcheck source=scripts/lib/go-install.sh
. "$(dirname "$0")/lib/go-install.sh"
reuse_installed "$bin"
require_go "istioctl $ISTIO_VERSION"
echo "installing istioctl $ISTIO_VERSION ($ISTIO_MODULE_VERSION) into $ISTIOCTL_ROOT (10 to 20 minutes on 2 busy cores, once)" >&2
pkg=istio.io/istio/pkg/version
ldflags="-s -w -X $pkg.buildVersion=$ISTIO_VERSION -X $pkg.buildTag=$ISTIO_VERSION -X $pkg.buildHub=$ISTIO_HUB"
ldflags="$ldflags -X $pkg.buildGitRevision=${ISTIO_MODULE_VERSION##*-} -X $pkg.buildStatus=Clean"
# Built into a scratch folder and moved in place, so an interrupted build never
# leaves a binary that this script would then trust.
tmp="$ISTIOCTL_ROOT.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp/bin" "$go" install -ldflags "$ldflags" "istio.io/istio/istioctl/cmd/istioctl@$ISTIO_MODULE_VERSION" >&2
mkdir -p "$ISTIOCTL_ROOT"
rm -rf "${ISTIOCTL_ROOT:?}/bin"
mv "$tmp/bin" "$ISTIOCTL_ROOT/bin"
echo "$bin"
