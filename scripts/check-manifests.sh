#!/usr/bin/env bash
#! Runs the offline checks of k8s/ and docker/ in a Python virtualenv made once and reused.
# The virtualenv lives in the per-user cache, keyed by the requirements file, so
# repeated runs (and CI on the same machine) install nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=scripts/requirements-manifests.txt
key=$(sha256sum "$requirements" | cut -c1-12)
venv="${XDG_CACHE_HOME:-$HOME/.cache}/eshop-tracing/venv-manifests-$key"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv (once)" >&2
  python3 -m venv "$venv.tmp"
  "$venv.tmp/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  mv "$venv.tmp" "$venv"
fi
exec "$venv/bin/python" scripts/check_manifests.py "$@"
