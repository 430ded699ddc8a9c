# shellcheck shell=bash
#! What the install scripts of the Go-built programs share: reuse what is there, and find Go.
# Sourced by install-jaeger.sh, install-otelcol.sh, install-kustomize.sh and
# install-istioctl.sh, each of which prints its program's path on standard
# output (progress on standard error), so `make test` and the tests agree on it.

# reuse_installed BIN [OVERRIDE]: prints and exits when OVERRIDE (the value of
# the program's *_BIN variable) or the cached BIN is an executable.
reuse_installed() {
  local candidate
  for candidate in "${2:-}" "$1"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
      echo "$candidate"
      exit 0
    fi
  done
}

# require_go WHAT: sets $go to the Go toolchain and puts it first on PATH (tools
# such as the Collector Builder run `go` by name); /usr/local/go/bin, where Go's
# own archive installs, counts even when it is not on PATH. Fails naming WHAT.
require_go() {
  go="$(command -v go || true)"
  if [ -z "$go" ] && [ -x /usr/local/go/bin/go ]; then
    go=/usr/local/go/bin/go
  fi
  if [ -z "$go" ]; then
    echo "$(basename "$0"): no Go toolchain on PATH or in /usr/local/go/bin; Go 1.26 or newer builds $1" >&2
    exit 1
  fi
  PATH="$(dirname "$go"):$PATH"
  export PATH
}
