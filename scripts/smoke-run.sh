#!/usr/bin/env bash
#! Smoke test of `make run`: starts it with a broker, checks out once, and waits for the trace in its view.
# Usage: scripts/smoke-run.sh [apache|tansu]. `make test` runs it with apache,
# `make smoke KAFKA=tansu` with Tansu. It passes when the terminal view prints
# the checkout's trace whole (six services, the CONSUMER span under the
# PRODUCER) and everything stops on Ctrl-C (SIGINT), as a user would see it.
set -euo pipefail
cd "$(dirname "$0")/.."
kafka="${1:-apache}"
out="target/smoke-run-$kafka.log"
mkdir -p target

for port in 8080 8081 8082 8083 8084 8085 9092 9093 4318; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "smoke-run: port $port is taken; make run needs 8080-8085, 9092, 9093 and 4318" >&2
    exit 1
  fi
done

# Job control: without it a background job ignores SIGINT, and run-local.sh
# could not trap it (bash cannot trap a signal ignored at its start).
set -m
KAFKA="$kafka" scripts/run-local.sh >"$out" 2>&1 </dev/null &
run=$!
finish() {
  kill -INT "$run" 2>/dev/null || true
  wait "$run" 2>/dev/null || true
}
trap finish EXIT

# Waits up to $2 seconds for the log to contain $1.
wait_for() {
  for _ in $(seq 1 $(($2 * 10))); do
    grep -qF -- "$1" "$out" && return 0
    kill -0 "$run" 2>/dev/null || { echo "smoke-run: make run exited; its output:" >&2; cat "$out" >&2; exit 1; }
    sleep 0.1
  done
  echo "smoke-run: no \"$1\" within $2 s; make run printed:" >&2
  cat "$out" >&2
  exit 1
}

wait_for "The eshop suite is running on $kafka Kafka" 600
trace=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
curl -fsS -o /dev/null -H "traceparent: 00-$trace-00f067aa0ba902b7-01" http://127.0.0.1:8080/checkout
wait_for "trace $trace " 60
# The tree is printed whole once the trace is complete; read it from its header on.
tree=$(sed -n "/^trace $trace /,/^\$/p" "$out")
for expected in "6 services" "eshop send eshop-topic [PRODUCER]" \
  "kafka-consumer process eshop-topic [CONSUMER]" "notification POST /sendEmail [SERVER]"; do
  grep -qF -- "$expected" <<<"$tree" || { echo "smoke-run: the trace lacks \"$expected\":" >&2; echo "$tree" >&2; exit 1; }
done

kill -INT "$run"
for _ in $(seq 1 300); do
  kill -0 "$run" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$run" 2>/dev/null; then
  echo "smoke-run: make run did not stop within 30 s of Ctrl-C" >&2
  exit 1
fi
trap - EXIT
echo "smoke-run: make run with $kafka Kafka: checkout traced through six services, stopped on Ctrl-C"
