# The suite's entry points. `make run` and `make test` are the two a new user needs.
.PHONY: help build run smoke test lint fmt broker kafka prometheus clean flamegraphs allocations check-manifests check-docs images print-image-prefix docker-build up down \
	deploy undeploy checkout jaeger verify-trace install-jaeger install-otelcol observability-tools check-observability bench bench-micro soak cluster cluster-down

CARGO ?= cargo
SERVICES := eshop inventory billing delivery notification kafka-consumer
# Images: `make docker-build REGISTRY=ghcr.io/you TAG=1.0` tags them, `make deploy`
# with the same values runs them; without, they are local (kind load) and
# tagged with the workspace's version, as k8s/base/kustomization.yaml says.
REGISTRY ?=
IMAGE_PREFIX ?= $(if $(REGISTRY),$(REGISTRY)/)eshop-tracing
TAG ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
# Istio data plane mode of `make deploy` and `make cluster`: sidecar or ambient.
MODE ?= sidecar
K8S_DIR := $(if $(filter ambient,$(MODE)),k8s/overlays/ambient,k8s)
DEPLOY_DIR := target/k8s-deploy/$(MODE)
# The cluster's node address, asked only by the targets that need it. On a kind
# cluster (context kind-*, as `make cluster` makes) the node's InternalIP is an
# address inside Docker's network that a macOS or Windows host cannot reach;
# the NodePorts are mapped to localhost there (k8s/kind/cluster.yaml).
NODE_IP ?= $(shell if kubectl config current-context 2>/dev/null | grep -q '^kind-'; then echo localhost; \
	else kubectl get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}'; fi)
JAEGER ?= http://$(NODE_IP):30088

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## Build every binary of the workspace
	$(CARGO) build --workspace --bins --locked

# The broker of `make run`: apache (Apache Kafka, the default) or tansu.
KAFKA ?= apache

broker: ## Install make run's broker once, reused afterwards [KAFKA=tansu]
	@if [ "$(KAFKA)" = tansu ]; then scripts/install-tansu.sh; else scripts/install-kafka.sh; fi >/dev/null

kafka: ## Install Apache Kafka (Maven Central) once, for the tests, bench and soak (reused afterwards)
	@scripts/install-kafka.sh >/dev/null

prometheus: ## Install Prometheus (Debian package) once, for the exemplar test (reused afterwards)
	@scripts/install-prometheus.sh >/dev/null

run: broker ## Run the broker, six services and the trace view; Ctrl-C stops all [KAFKA=tansu]
	@KAFKA=$(KAFKA) scripts/run-local.sh

smoke: broker build ## make run's smoke test: start it, check out once, see the whole trace, Ctrl-C [KAFKA=tansu]
	@scripts/smoke-run.sh $(KAFKA)

install-jaeger: ## Build Jaeger v2 once with Go, for the tests (reused afterwards)
	@scripts/install-jaeger.sh >/dev/null

install-otelcol: ## Build the project's OpenTelemetry Collector once with the Collector Builder (again when its manifest changes)
	@scripts/install-otelcol.sh >/dev/null

observability-tools: install-jaeger install-otelcol

check-observability: observability-tools ## Load the Compose and Kubernetes Collector and Jaeger configs into the real programs (validate)
	@scripts/check-observability.sh

test: kafka prometheus observability-tools build check-manifests check-observability check-docs smoke ## Unit, fault and end-to-end tests on Apache Kafka, Jaeger, the Collector and Prometheus; smoke; manifest checks
	$(CARGO) test --workspace --locked

check-docs: ## Every relative link in README.md and docs/ resolves (file and heading)
	@python3 scripts/check-doc-links.py

check-manifests: ## Validate k8s/ and docker/ offline: kustomize, istioctl analyze, schemas and cross-references
	@scripts/check-manifests.sh --self-test

images: ## The image names docker-build produces
	@for s in $(SERVICES); do echo $(IMAGE_PREFIX)/$$s:$(TAG); done

print-image-prefix:
	@echo $(IMAGE_PREFIX)

docker-build: ## Build the six service images
	@for s in $(SERVICES); do \
	  docker build -f docker/Dockerfile --target $$s -t $(IMAGE_PREFIX)/$$s:$(TAG) . || exit 1; \
	done

up: ## Docker Compose: Kafka, Jaeger (http://localhost:16686) and the suite (http://localhost:8080)
	docker compose -f docker/compose.yaml up -d --build

down: ## Stop the Compose stack and remove its volumes
	docker compose -f docker/compose.yaml down -v

deploy: ## kubectl apply the suite, Kafka, Jaeger and the Istio resources [MODE=ambient] [REGISTRY=... TAG=...]
	@scripts/deploy-kustomization.sh $(DEPLOY_DIR) $(K8S_DIR) $(IMAGE_PREFIX) $(TAG)
	kubectl apply -k $(DEPLOY_DIR)

undeploy: ## Remove what deploy created
	@scripts/deploy-kustomization.sh $(DEPLOY_DIR) $(K8S_DIR) $(IMAGE_PREFIX) $(TAG)
	kubectl delete -k $(DEPLOY_DIR) --ignore-not-found

cluster: ## From zero to a checked trace on a local kind cluster with Istio [MODE=ambient]
	@MODE=$(MODE) TAG=$(TAG) scripts/cluster.sh up

cluster-down: ## Delete make cluster's kind cluster
	@scripts/cluster.sh down

checkout: ## curl /checkout through the Istio ingress gateway (NodePort 31380)
	@curl -sS -i http://$(NODE_IP):31380/checkout

jaeger: ## Print the Jaeger UI's address (NodePort 30088)
	@echo $(JAEGER)

verify-trace: ## Check a trace in Jaeger: make verify-trace TRACE=<id> [JAEGER=http://host:16686]
	@test -n "$(TRACE)" || { echo "usage: make verify-trace TRACE=<trace id> [JAEGER=<url>]"; exit 2; }
	@$(CARGO) run --quiet --locked -p verify-trace -- $(TRACE) $(JAEGER)

bench: kafka ## Benchmark on the local stack (release build): tracing cost, span loss, memory, CPU
	$(CARGO) build --release --locked --workspace --bins
	target/release/bench bench

bench-micro: ## Criterion benchmarks of the telemetry and messaging crates, each piece as a ratio to its bare baseline
	$(CARGO) bench --locked -p telemetry --bench per_request
	$(CARGO) bench --locked -p messaging --bench per_record
	$(CARGO) build --release --locked -p bench
	target/release/bench micro-report

flamegraphs: kafka ## perf flame graphs of a traced and an untraced eshop at the same load, into docs/flamegraphs/
	$(CARGO) build --release --locked --workspace --bins
	scripts/flamegraphs.sh

allocations: kafka ## heaptrack: allocations per checkout of a traced and an untraced eshop at the same load, by part
	$(CARGO) build --release --locked --workspace --bins
	scripts/allocations.sh

soak: kafka ## Faults under load, every order reconciled, then 10 min of memory; non-zero on loss, leftovers or growth
	$(CARGO) build --release --locked --workspace --bins
	target/release/bench soak
	target/release/bench soak-memory

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

clean: ## Remove build output
	$(CARGO) clean
