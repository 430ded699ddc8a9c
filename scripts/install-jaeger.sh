#!/usr/bin/env bash
#! Builds the Jaeger v2 binary once with the Go toolchain and prints its path; reused afterwards.
# `make test` runs the project's own Jaeger config (docker/observability/jaeger.yaml)
# in a real Jaeger, the same release as the Compose and Kubernetes images.
#
# Jaeger's Go module has no /v2 suffix, so its v2.x.y tags cannot be asked for;
# each release until the end of the v1 line also carries a v1.x.y tag on the
# same commit (CHANGELOG.md: "v1.76.0 / v2.13.0"), and v1.76.0 is the newest
# version the module proxy serves: that is Jaeger v2.13.0. `go install
# module/cmd/jaeger@v1.76.0` refuses it, because its go.mod has a `replace`
# directive (sarama), so this script downloads the module and runs `go build`
# inside a writable copy of it, where the replace applies.
#
# The module carries no UI assets: the binary serves the query APIs (all that
# the tests use) and, at /, a placeholder page saying the UI was not compiled in.
#
# The default GOPATH/GOMODCACHE and GOCACHE are used on purpose: a second build
# (another version, or a cleared cache dir) reuses the downloaded modules and
# compiled packages. JAEGER_BIN points at another binary instead.
set -euo pipefail

JAEGER_VERSION="${JAEGER_VERSION:-2.13.0}"
JAEGER_MODULE_VERSION="${JAEGER_MODULE_VERSION:-v1.76.0}"
JAEGER_ROOT="${JAEGER_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/eshop-tracing/jaeger-${JAEGER_VERSION}}"
bin="$JAEGER_ROOT/bin/jaeger"

# shellcheck source=scripts/lib/go-install.sh
. "$(dirname "$0")/lib/go-install.sh"
reuse_installed "$bin" "${JAEGER_BIN:-}"
require_go "Jaeger $JAEGER_VERSION (or set JAEGER_BIN)"

echo "building jaeger $JAEGER_VERSION (module $JAEGER_MODULE_VERSION) into $JAEGER_ROOT (a few minutes, once)" >&2
module_dir="$("$go" mod download -json "github.com/jaegertracing/jaeger@$JAEGER_MODULE_VERSION" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [ -z "$module_dir" ] || [ ! -f "$module_dir/go.mod" ]; then
  echo "install-jaeger: go mod download gave no module directory" >&2
  exit 1
fi

# The module cache is read-only and `go build` may want to write go.sum entries.
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
cp -R "$module_dir/." "$work/src"
chmod -R u+w "$work/src"
mkdir -p "$JAEGER_ROOT/bin"
# Build into a temporary name so an interrupted build never leaves a binary the
# early exit above would take for a finished one.
# The version goes in as Jaeger's own release build sets it, so `jaeger version`
# and the query service's build info say which release this is.
ldflags="-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v$JAEGER_VERSION"
(cd "$work/src" && "$go" build -trimpath -ldflags "$ldflags" -o "$work/jaeger" ./cmd/jaeger) >&2
mv "$work/jaeger" "$bin"
echo "$bin"
