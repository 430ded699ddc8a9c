#!/usr/bin/env bash
#! Loads the project's Collector and Jaeger configs (Compose and Kubernetes) into the real programs' `validate`.
# check_manifests.py checks these files' shape and cross-references offline;
# only the programs themselves know whether every key, component and value is
# one they accept. `validate` builds the pipelines without starting them, so
# endpoints that only resolve inside Compose or a cluster do not matter here.
# Run by `make test` after scripts/install-jaeger.sh and install-otelcol.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

otelcol="$(scripts/install-otelcol.sh)"
jaeger="$(scripts/install-jaeger.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Prints the block scalar under key $2 of the ConfigMap named $1 in file $3
# (the `config.yaml: |` of a ConfigMap), with its indentation removed. The
# manifests venv has PyYAML, but this runs before and without it.
config_map_value() {
  awk -v name="$1" -v key="$2" '
    /^---/ { kind = ""; cm = ""; inside = 0; next }
    /^kind: ConfigMap/ { kind = "ConfigMap" }
    /^  name: / { cm = $2 }
    inside {
      if ($0 ~ /^[[:space:]]*$/) { print ""; next }
      match($0, /^ */)
      if (RLENGTH <= keyindent) { inside = 0; next }
      if (indent == 0) { indent = RLENGTH }
      print substr($0, indent + 1)
      next
    }
    kind == "ConfigMap" && cm == name && $0 ~ ("^ +" key ": \\|") {
      match($0, /^ */); keyindent = RLENGTH; indent = 0; inside = 1; found = 1
    }
    END { if (!found) exit 1 }
  ' "$3"
}

failed=0
check() {
  local what="$1"
  shift
  if output="$("$@" 2>&1)"; then
    echo "ok: $what"
  else
    echo "FAILED: $what" >&2
    echo "$output" >&2
    failed=1
  fi
}

config_map_value otel-collector config.yaml k8s/base/observability/otel-collector.yaml >"$work/k8s-otel-collector.yaml"
config_map_value jaeger-config config.yaml k8s/base/jaeger/jaeger.yaml >"$work/k8s-jaeger.yaml"

check "collector loads docker/observability/otel-collector.yaml" \
  "$otelcol" validate --config=docker/observability/otel-collector.yaml
check "collector loads the otel-collector ConfigMap of k8s/base/observability/otel-collector.yaml" \
  "$otelcol" validate --config="$work/k8s-otel-collector.yaml"
check "jaeger loads docker/observability/jaeger.yaml" \
  "$jaeger" validate --config=docker/observability/jaeger.yaml
check "jaeger loads the jaeger-config ConfigMap of k8s/base/jaeger/jaeger.yaml" \
  "$jaeger" validate --config="$work/k8s-jaeger.yaml"
exit "$failed"
