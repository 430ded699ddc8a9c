# The suite's entry points. `make run` and `make test` are the two a new user needs.
.PHONY: help build run test lint fmt broker clean

CARGO ?= cargo

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

build: ## Build every binary of the workspace
	$(CARGO) build --workspace --bins --locked

broker: ## Install the Tansu broker once (reused afterwards)
	@scripts/install-tansu.sh >/dev/null

run: broker ## Run broker, six services and the trace view; Ctrl-C stops all
	@scripts/run-local.sh

test: broker build ## Unit, fault and end-to-end trace tests (starts its own broker and services)
	$(CARGO) test --workspace --locked

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

clean: ## Remove build output
	$(CARGO) clean
