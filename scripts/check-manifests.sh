#!/usr/bin/env bash
#! Runs the offline checks of k8s/ and docker/: kustomize, istioctl and the suite's own rules (a Python virtualenv made once and reused).
# kustomize renders what `kubectl apply -k` would send, istioctl checks the
# operator files and analyzes the rendered mesh configuration, and
# scripts/check_manifests.py validates schemas and the cross-references no
# tool sees. The tools are built once into the per-user cache by their install
# scripts; the virtualenv lives there too, keyed by the requirements file, so
# repeated runs (and CI on the same machine) install nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

KUSTOMIZE=$(scripts/install-kustomize.sh)
ISTIOCTL=$(scripts/install-istioctl.sh)
export KUSTOMIZE ISTIOCTL

requirements=scripts/requirements-manifests.txt
# sha256sum is GNU coreutils; macOS ships shasum instead.
if command -v sha256sum >/dev/null; then
  key=$(sha256sum "$requirements" | cut -c1-12)
else
  key=$(shasum -a 256 "$requirements" | cut -c1-12)
fi
venv="${XDG_CACHE_HOME:-$HOME/.cache}/eshop-tracing/venv-manifests-$key"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating $venv (once)" >&2
  python3 -m venv "$venv.tmp"
  "$venv.tmp/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  mv "$venv.tmp" "$venv"
fi
exec "$venv/bin/python" scripts/check_manifests.py "$@"
