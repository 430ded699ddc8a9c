#!/usr/bin/env bash
# `make cluster`: from zero to a checked trace on a laptop with Docker. Creates a
# kind cluster (k8s/kind/cluster.yaml: NodePorts 31380 and 30088 on localhost),
# installs the Gateway API CRDs and Istio (sidecar or ambient, MODE=), builds and
# loads the six images, deploys, waits for readiness, runs one checkout, checks
# its trace in Jaeger with verify-trace and prints the Jaeger URL.
# `make cluster-down` (this script's `down`) deletes the cluster.
# Needs: docker, kind, kubectl, cargo for verify-trace, and go to build the
# pinned istioctl once (scripts/install-istioctl.sh) unless an istioctl of that
# version is on PATH.
# Run again after a failure, it picks up where it stopped: every step is
# idempotent, and the two things `kubectl apply` cannot repair (a finished or
# failed Job, a StatefulSet pod that never became Ready) are replaced.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER_NAME=eshop-tracing
MODE=${MODE:-sidecar}
TAG=${TAG:?TAG is set by make cluster}
# The Istio release scripts/install-istioctl.sh pins; istioctl installs its images.
# shellcheck disable=SC2016 # the pattern matches a literal ${
ISTIO_VERSION=$(sed -n 's/^ISTIO_VERSION="\${ISTIO_VERSION:-\(.*\)}"$/\1/p' scripts/install-istioctl.sh)
# The Gateway API release whose CRDs Istio's gateway controller reads
# (standard channel: Gateway, HTTPRoute, GatewayClass): the version Istio
# ISTIO_VERSION is built against (sigs.k8s.io/gateway-api in its go.mod).
GATEWAY_API_VERSION=${GATEWAY_API_VERSION:-v1.6.0}
INGRESS=http://localhost:31380
JAEGER=http://localhost:30088
WAIT_TIMEOUT=600s

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require() {
  local tool
  for tool in docker kind kubectl cargo; do
    command -v "$tool" >/dev/null || die "$tool is not installed (see docs/kubernetes.md, 'On a laptop: make cluster')"
  done
  # The istioctl of the pinned release: one on PATH if it is that version,
  # otherwise the one scripts/install-istioctl.sh builds (once, with Go).
  if command -v istioctl >/dev/null &&
    [ "$(istioctl version --remote=false --short 2>/dev/null)" = "$ISTIO_VERSION" ]; then
    ISTIOCTL=istioctl
  elif command -v go >/dev/null; then
    ISTIOCTL=$(scripts/install-istioctl.sh)
  else
    cat >&2 <<HOW
error: istioctl $ISTIO_VERSION is needed. Either install Go (scripts/install-istioctl.sh
builds istioctl $ISTIO_VERSION once), or put the istioctl of Istio $ISTIO_VERSION on PATH:
  curl -L https://istio.io/downloadIstio | ISTIO_VERSION=$ISTIO_VERSION sh -
  export PATH="\$PWD/istio-$ISTIO_VERSION/bin:\$PATH"
then run make cluster again (it picks up where it stopped).
HOW
    exit 1
  fi
}

create_cluster() {
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    log "kind cluster $CLUSTER_NAME exists, reusing it"
  else
    log "creating kind cluster $CLUSTER_NAME"
    kind create cluster --name "$CLUSTER_NAME" --config k8s/kind/cluster.yaml --wait 120s
  fi
  kubectl config use-context "kind-$CLUSTER_NAME" >/dev/null
}

install_mesh() {
  if ! kubectl get crd gateways.gateway.networking.k8s.io >/dev/null 2>&1; then
    log "installing the Gateway API CRDs $GATEWAY_API_VERSION"
    kubectl apply --server-side -f \
      "https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API_VERSION/standard-install.yaml"
  fi
  local operator=k8s/istio/istio-operator.yaml
  if [ "$MODE" = ambient ]; then
    operator=k8s/overlays/ambient/istio-operator.yaml
  fi
  log "installing Istio $ISTIO_VERSION ($MODE mode) from $operator"
  "$ISTIOCTL" install -y -f "$operator"
}

# `kind load docker-image` reads the image from Docker's classic store and
# fails when Docker keeps images in the containerd image store (the default of
# recent Docker Desktop and Engine); an archive from `docker save` loads with
# either store. One archive carries all six images.
load_images() {
  log "building the images (tag $TAG)"
  make docker-build TAG="$TAG"
  local archive images
  archive=$(mktemp "${TMPDIR:-/tmp}/eshop-images.XXXXXX")
  images=$(make -s images TAG="$TAG")
  log "loading the images into kind"
  # shellcheck disable=SC2086 # one word per image name
  if ! docker save -o "$archive" $images || ! kind load image-archive --name "$CLUSTER_NAME" "$archive"; then
    rm -f "$archive"
    die "could not load the images into kind"
  fi
  rm -f "$archive"
}

# A Job's pod template is immutable and a finished or failed Job is never run
# again by `kubectl apply`: the topics Job is deleted before each apply and
# created anew (it creates the topics with --if-not-exists, so a re-run is harmless).
reset_jobs() {
  kubectl -n kafka delete job kafka-topics --ignore-not-found --wait=true
}

# A StatefulSet does not replace a pod that never became Ready, even when the
# apply fixed its template (the rollout waits for that pod forever), and a
# crash-looping pod waits up to five minutes between tries. Such a pod is
# deleted so the controller recreates it from the current template now.
replace_unready_pod() {
  local ns=$1 statefulset=$2 pod=$3 ready revision current waiting attempt
  kubectl -n "$ns" get pod "$pod" >/dev/null 2>&1 || return 0
  # The controller names the new revision once it has seen the applied template.
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    [ "$(kubectl -n "$ns" get statefulset "$statefulset" -o jsonpath='{.status.observedGeneration}/{.metadata.generation}' |
      awk -F/ '{ print ($1 == $2) }')" = 1 ] && break
    sleep 1
  done
  ready=$(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
  [ "$ready" = True ] && return 0
  revision=$(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.metadata.labels.controller-revision-hash}')
  current=$(kubectl -n "$ns" get statefulset "$statefulset" -o jsonpath='{.status.updateRevision}')
  waiting=$(kubectl -n "$ns" get pod "$pod" -o jsonpath='{.status.containerStatuses[*].state.waiting.reason}')
  case "$waiting" in
    *CrashLoopBackOff* | *Error*) ;;
    *) [ "$revision" != "$current" ] || return 0 ;;
  esac
  log "$ns/$pod is not Ready (${waiting:-revision $revision, current $current}): deleting it so $statefulset recreates it"
  kubectl -n "$ns" delete pod "$pod" --wait=true
}

deploy() {
  log "deploying ($MODE mode)"
  reset_jobs
  make deploy MODE="$MODE" TAG="$TAG"
  replace_unready_pod kafka kafka kafka-0
  log "waiting for Kafka's topics, Kafka, Jaeger, the gateways and the six services"
  kubectl -n kafka wait --for=condition=complete job/kafka-topics --timeout="$WAIT_TIMEOUT"
  kubectl -n kafka rollout status statefulset/kafka --timeout="$WAIT_TIMEOUT"
  kubectl -n observability rollout status deployment/jaeger --timeout="$WAIT_TIMEOUT"
  kubectl -n eshop wait --for=condition=programmed gateway/eshop-gateway --timeout="$WAIT_TIMEOUT"
  if [ "$MODE" = ambient ]; then
    kubectl -n eshop wait --for=condition=programmed gateway/waypoint --timeout="$WAIT_TIMEOUT"
  fi
  local service
  for service in eshop inventory billing delivery notification kafka-consumer; do
    kubectl -n eshop rollout status "deployment/$service-v1" --timeout="$WAIT_TIMEOUT"
  done
}

# Runs one checkout through the ingress gateway and prints its trace id (from
# the W3C traceresponse header). The route may take a moment to reach the
# gateway after it is programmed, so a refused or 404 answer is retried.
checkout() {
  local headers status attempt
  headers=$(mktemp)
  for attempt in $(seq 1 30); do
    status=$(curl -sS -o /dev/null -D "$headers" -w '%{http_code}' "$INGRESS/checkout" || true)
    if [ "$status" = 200 ]; then
      tr -d '\r' <"$headers" | sed -n 's/^traceresponse: 00-\([0-9a-f]\{32\}\)-.*/\1/ip'
      rm -f "$headers"
      return 0
    fi
    log "checkout answered ${status:-nothing} (attempt $attempt of 30), retrying" >&2
    sleep 2
  done
  rm -f "$headers"
  die "no successful checkout through $INGRESS"
}

# Spans reach Jaeger in batches (every 5 s by default), so the trace is checked
# until verify-trace accepts it or a minute has passed.
verify() {
  local trace=$1 attempt
  for attempt in $(seq 1 12); do
    if cargo run --quiet --locked -p verify-trace -- "$trace" "$JAEGER"; then
      return 0
    fi
    log "trace $trace not complete yet (attempt $attempt of 12)"
    sleep 5
  done
  die "trace $trace is incomplete in Jaeger; open $JAEGER/trace/$trace"
}

up() {
  require
  create_cluster
  install_mesh
  load_images
  deploy
  log "checkout through $INGRESS/checkout"
  local trace
  trace=$(checkout)
  [ -n "$trace" ] || die "the checkout answered without a traceresponse header"
  log "trace $trace"
  verify "$trace"
  log "Jaeger: $JAEGER/trace/$trace   (checkout: curl $INGRESS/checkout; remove: make cluster-down)"
}

down() {
  command -v kind >/dev/null || die "kind is not installed"
  kind delete cluster --name "$CLUSTER_NAME"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
