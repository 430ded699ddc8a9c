#!/usr/bin/env bash
#! Builds the project's OpenTelemetry Collector once with the Collector Builder and prints its path; reused afterwards.
# `make test` validates the project's collector configs with it and the
# end-to-end test runs docker/observability/otel-collector.yaml in it. The
# components come from docker/observability/otelcol-builder.yaml; the cache
# directory is keyed by the builder's version and a hash of that manifest, so a
# changed manifest builds a new binary instead of reusing a stale one.
#
# The default GOPATH/GOMODCACHE and GOCACHE are used on purpose: a rebuild after
# a manifest change downloads and compiles only what changed. OTELCOL_BIN points
# at another binary instead.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILDER_VERSION="${OTELCOL_BUILDER_VERSION:-v0.165.0}"
manifest="docker/observability/otelcol-builder.yaml"
key="$(sha256sum <"$manifest" | cut -c1-12)"
OTELCOL_ROOT="${OTELCOL_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/eshop-tracing/otelcol-${BUILDER_VERSION}-${key}}"
bin="$OTELCOL_ROOT/bin/otelcol-eshop"

# shellcheck source=scripts/lib/go-install.sh
. scripts/lib/go-install.sh
reuse_installed "$bin" "${OTELCOL_BIN:-}"
require_go "the Collector (or set OTELCOL_BIN)"

builder_root="${XDG_CACHE_HOME:-$HOME/.cache}/eshop-tracing/otelcol-builder-${BUILDER_VERSION}"
builder="$builder_root/bin/builder"
if [ ! -x "$builder" ]; then
  echo "installing the collector builder $BUILDER_VERSION into $builder_root" >&2
  GOBIN="$builder_root/bin" "$go" install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VERSION" >&2
fi

echo "building the collector of $manifest into $OTELCOL_ROOT (a few minutes, once per manifest)" >&2
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# output_path in the manifest is relative: the sources and binary land in $work.
(cd "$work" && "$builder" --config="$OLDPWD/$manifest") >&2
mkdir -p "$OTELCOL_ROOT/bin"
# Copied under a temporary name first so an interrupted copy never looks finished.
cp "$work/otelcol-eshop/otelcol-eshop" "$OTELCOL_ROOT/bin/.otelcol-eshop.tmp"
mv "$OTELCOL_ROOT/bin/.otelcol-eshop.tmp" "$bin"
echo "$bin"
