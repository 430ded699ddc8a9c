#!/usr/bin/env bash
#! Installs Prometheus (Debian's `prometheus` package) once and prints its path; reused afterwards.
# The metrics test scrapes the running suite with a real Prometheus and asks
# its exemplar API for the trace ids the test's OTLP receiver holds. Debian's
# package installs the binary and starts nothing the test depends on (the
# test runs its own instance on a free port with a temporary storage dir).
# PROMETHEUS_BIN points at another binary instead.
set -euo pipefail

if [ -n "${PROMETHEUS_BIN:-}" ] && [ -x "$PROMETHEUS_BIN" ]; then
  echo "$PROMETHEUS_BIN"
  exit 0
fi
for candidate in "$(command -v prometheus || true)" /usr/bin/prometheus; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    echo "$candidate"
    exit 0
  fi
done

if ! command -v apt-get >/dev/null; then
  echo "install-prometheus: no prometheus and no apt-get; install Prometheus >= 2.26 and set PROMETHEUS_BIN" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
  sudo="sudo"
fi
echo "installing Debian's prometheus package (once)" >&2
# The package's post-install may try to start its service; without an init
# system that attempt fails harmlessly, and the test never uses that instance.
export DEBIAN_FRONTEND=noninteractive
if ! $sudo apt-get install -y --no-install-recommends prometheus >&2; then
  $sudo apt-get update >&2
  $sudo apt-get install -y --no-install-recommends prometheus >&2
fi
command -v prometheus
