#!/usr/bin/env bash
# `make cluster`: from zero to a checked trace on a laptop with Docker. Creates a
# kind cluster (k8s/kind/cluster.yaml: NodePorts 31380 and 30088 on localhost),
# installs the Gateway API CRDs and Istio (sidecar or ambient, MODE=), builds and
# loads the six images, deploys, waits for readiness, runs one checkout, checks
# its trace in Jaeger with verify-trace and prints the Jaeger URL.
# `make cluster-down` (this script's `down`) deletes the cluster.
# Needs: docker, kind, kubectl, istioctl, and cargo for verify-trace.
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER_NAME=eshop-tracing
MODE=${MODE:-sidecar}
TAG=${TAG:?TAG is set by make cluster}
# The Gateway API release whose CRDs Istio's gateway controller reads
# (standard channel: Gateway, HTTPRoute, GatewayClass).
GATEWAY_API_VERSION=${GATEWAY_API_VERSION:-v1.3.0}
INGRESS=http://localhost:31380
JAEGER=http://localhost:30088
WAIT_TIMEOUT=600s

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

require() {
  local tool
  for tool in docker kind kubectl cargo; do
    command -v "$tool" >/dev/null || die "$tool is not installed (see README, 'Run it in Kubernetes with Istio')"
  done
  if ! command -v istioctl >/dev/null; then
    cat >&2 <<'HOW'
error: istioctl is not installed. Get the release matching your cluster, e.g.
  curl -L https://istio.io/downloadIstio | sh -
  export PATH="$PWD/istio-*/bin:$PATH"
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
  log "installing Istio ($MODE mode) from $operator"
  istioctl install -y -f "$operator"
}

load_images() {
  log "building the images (tag $TAG)"
  make docker-build TAG="$TAG"
  local image
  for image in $(make -s images TAG="$TAG"); do
    kind load docker-image --name "$CLUSTER_NAME" "$image"
  done
}

deploy() {
  log "deploying ($MODE mode)"
  make deploy MODE="$MODE" TAG="$TAG"
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
