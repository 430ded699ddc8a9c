#!/usr/bin/env bash
#! Runs the whole suite on this machine: a Kafka broker, six services and, unless
#! an OTLP endpoint is given or already listening, the otlp-sink trace view.
# Used by `make run`. Ctrl-C stops every process it started.
#
# KAFKA=apache (the default): Apache Kafka, the broker the tests, Compose and
# Kubernetes run, from Maven Central (needs Java 17 and Maven; starts in
# seconds). KAFKA=tansu: the Tansu broker, a Kafka-protocol broker in Rust
# (nothing but cargo, but its first build takes about 12 minutes, and it needs
# the client settings below).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=target/debug
LOGS=target/run-logs
BROKER_PORT="${BROKER_PORT:-9092}"
CONTROLLER_PORT="${CONTROLLER_PORT:-9093}"
KAFKA="${KAFKA:-apache}"
SINK_ADDR=127.0.0.1:4318

case "$KAFKA" in
  apache) scripts/install-kafka.sh >/dev/null ;;
  tansu) tansu="$(scripts/install-tansu.sh)" ;;
  *) echo "KAFKA=$KAFKA: choose apache or tansu" >&2; exit 2 ;;
esac
cargo build --workspace --bins --quiet
mkdir -p "$LOGS"

pids=()   # the services
infra=()  # broker and trace view, stopped last so the services can still commit and export
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  # SIGTERM: each service finishes its requests, flushes its spans and exits.
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  for pid in "${infra[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

listening() { (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; }

wait_ready() {
  local name=$1 url=$2
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not become ready; see $LOGS/$name.log" >&2
  exit 1
}

if [ -z "${OTEL_EXPORTER_OTLP_ENDPOINT:-}" ]; then
  if listening "$SINK_ADDR"; then
    echo "an OTLP receiver already listens on $SINK_ADDR (a local Jaeger?): exporting there"
  else
    "$BIN/otlp-sink" "$SINK_ADDR" &
    infra+=($!)
  fi
  export OTEL_EXPORTER_OTLP_ENDPOINT="http://$SINK_ADDR"
fi
# Export every half second rather than every five, so traces (and their log
# records) show promptly; metrics every 10 s rather than 60 when pushed.
export OTEL_BSP_SCHEDULE_DELAY="${OTEL_BSP_SCHEDULE_DELAY:-500}"
export OTEL_BLRP_SCHEDULE_DELAY="${OTEL_BLRP_SCHEDULE_DELAY:-500}"
export OTEL_METRIC_EXPORT_INTERVAL="${OTEL_METRIC_EXPORT_INTERVAL:-10000}"
# Metrics at GET /metrics (with exemplars) and not over OTLP: the trace view
# drops metrics, and Jaeger takes none. Set `otlp,prometheus` for a collector.
export OTEL_METRICS_EXPORTER="${OTEL_METRICS_EXPORTER:-prometheus}"
# No mesh here, so callers may send either format (docs/trace.md shows a
# `traceparent` and a `b3` curl): accept and send both. The SDK's default,
# `tracecontext,baggage`, is what the Kubernetes manifests name.
export OTEL_PROPAGATORS="${OTEL_PROPAGATORS:-b3multi,tracecontext,baggage}"

if listening "127.0.0.1:$BROKER_PORT"; then
  echo "port $BROKER_PORT is taken: set BROKER_PORT to run the embedded broker elsewhere" >&2
  exit 1
fi
wait_listening() {
  local name=$1 addr=$2 log=$3
  for _ in $(seq 1 600); do
    listening "$addr" && return 0
    sleep 0.1
  done
  echo "$name did not listen on $addr within a minute; see $log" >&2
  exit 1
}

# The broker's own telemetry is left out of the suite's traces.
if [ "$KAFKA" = apache ]; then
  # A fresh log directory each run, as the tests have.
  rm -rf target/run-kafka
  env -u OTEL_EXPORTER_OTLP_ENDPOINT scripts/kafka-broker.sh start "$PWD/target/run-kafka" \
    "$BROKER_PORT" "$CONTROLLER_PORT" >"$LOGS/kafka.log" 2>&1 &
  infra+=($!)
  wait_listening kafka "127.0.0.1:$BROKER_PORT" "$LOGS/kafka.log"
  scripts/kafka-broker.sh create-topics "127.0.0.1:$BROKER_PORT" >>"$LOGS/kafka.log" 2>&1 ||
    { echo "creating the topics failed; see $LOGS/kafka.log" >&2; exit 1; }
  # librdkafka's defaults and the suite's own settings, as in production
  # (KAFKA_CONFIG, KAFKA_CONSUMER_CONFIG and KAFKA_PRODUCER_CONFIG pass through).
  eshop_producer_config="${KAFKA_PRODUCER_CONFIG:-}"
  consumer_producer_config="${KAFKA_PRODUCER_CONFIG:-}"
  consumer_consumer_config="${KAFKA_CONSUMER_CONFIG:-}"
else
  env -u OTEL_EXPORTER_OTLP_ENDPOINT "$tansu" broker \
    --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
    --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" \
    --storage-engine memory://tansu/ >"$LOGS/tansu.log" 2>&1 &
  infra+=($!)
  for topic in eshop-topic eshop-topic.dlq; do
    for _ in $(seq 1 100); do
      env -u OTEL_EXPORTER_OTLP_ENDPOINT "$tansu" topic create "$topic" \
        --broker "tcp://127.0.0.1:$BROKER_PORT" --partitions 3 >>"$LOGS/tansu.log" 2>&1 && break
      sleep 0.1
    done
  done
  # Tansu 0.6 fences an idempotent producer that asks for a new epoch after a
  # timed-out send, which leaves it unusable: eshop gets a non-idempotent one
  # (acks=all still holds). Its memory engine answers a fetch only from batches
  # that begin at or after the fetch offset, so every producer (kafka-consumer's
  # dead-letter one too) sends one record per batch.
  eshop_producer_config="${KAFKA_PRODUCER_CONFIG:-enable.idempotence=false,batch.num.messages=1}"
  consumer_producer_config="${KAFKA_PRODUCER_CONFIG:-batch.num.messages=1}"
  # Tansu answers a fetch only when fetch.wait.max.ms expires (10 ms keeps the
  # Kafka hop short) and never gives partitions back to a consumer whose
  # session expired (15 s outlasts a short pause).
  consumer_consumer_config="${KAFKA_CONSUMER_CONFIG:-fetch.wait.max.ms=10,session.timeout.ms=15000}"
fi

export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$BROKER_PORT"
export HOST=127.0.0.1

start() {
  local name=$1 port=$2
  shift 2
  env PORT="$port" "$@" "$BIN/$name" >"$LOGS/$name.log" 2>&1 &
  pids+=($!)
}
start inventory 8081
start billing 8082
start delivery 8083
start notification 8084
start eshop 8080 INVENTORY_URL=http://127.0.0.1:8081 BILLING_URL=http://127.0.0.1:8082 DELIVERY_URL=http://127.0.0.1:8083 KAFKA_PRODUCER_CONFIG="$eshop_producer_config"
start kafka-consumer 8085 NOTIFICATION_URL=http://127.0.0.1:8084 BILLING_URL=http://127.0.0.1:8082 \
  KAFKA_CONSUMER_CONFIG="$consumer_consumer_config" KAFKA_PRODUCER_CONFIG="$consumer_producer_config"

for svc in inventory:8081 billing:8082 delivery:8083 notification:8084 eshop:8080 kafka-consumer:8085; do
  wait_ready "${svc%:*}" "http://127.0.0.1:${svc#*:}/readyz"
done

cat <<MSG

The eshop suite is running on $KAFKA Kafka (logs in $LOGS/, traces, metrics and log records
exported over OTLP to $OTEL_EXPORTER_OTLP_ENDPOINT).

  curl localhost:8080/checkout
  curl -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' localhost:8080/checkout
  curl -H 'content-type: application/json' \\
       -d '{"email":"jane.doe@example.com","items":[{"sku":"TSHIRT-OTEL","quantity":2}]}' localhost:8080/checkout

Metrics, OpenMetrics text with exemplars (trace_id, span_id) on the duration
histograms, for Prometheus: GET /metrics on every service's port, e.g.

  curl localhost:8080/metrics   # eshop; inventory 8081, billing 8082, delivery 8083,
                                # notification 8084, kafka-consumer 8085

Each finished trace is printed below as a tree, each span's log records under
it. Ctrl-C stops everything.
MSG
wait
