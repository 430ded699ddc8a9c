#!/usr/bin/env bash
#! Runs the suite's Apache Kafka on this machine with the KRaft settings Compose and Kubernetes use.
# Used by make run (scripts/run-local.sh) and by test-support's Broker (the tests,
# make bench, make soak):
#
#   scripts/kafka-broker.sh start DIR PORT CONTROLLER_PORT
#       writes DIR/server.properties from k8s/base/kafka/kraft.env, formats DIR
#       on first use (a restart keeps topics, records and committed offsets) and
#       becomes the broker (exec), listening on 127.0.0.1:PORT; its log is its
#       standard output.
#   scripts/kafka-broker.sh create-topics BOOTSTRAP
#       creates the suite's topics as the Compose and Kubernetes topics jobs do.
#
# Only the addresses and the log directory differ from kraft.env: listeners on
# loopback with the given ports, the quorum voter on CONTROLLER_PORT.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
settings="${KRAFT_ENV:-$repo/k8s/base/kafka/kraft.env}"
# The topics and their partition count, as docker/compose.yaml and k8s/base/kafka/topics.yaml create them.
TOPICS=(eshop-topic eshop-topic.dlq)
PARTITIONS=3

die() { echo "kafka-broker.sh: $*" >&2; exit 1; }

libs="$("$repo/scripts/install-kafka.sh")"
java_run() {
  # KAFKA_HEAP_OPTS as Kafka's own launch scripts read it; G1 with Kafka's pause target.
  # shellcheck disable=SC2086
  exec java ${KAFKA_HEAP_OPTS:--Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$repo/scripts/kafka/log4j2.properties" \
    -cp "$libs/*" "$@"
}

# KAFKA_FOO_BAR -> foo.bar, the apache/kafka image's rule (___ is '-', __ is '_').
property_name() {
  local name="${1#KAFKA_}"
  name="${name,,}"
  name="${name//___/\{dash\}}"
  name="${name//__/\{underscore\}}"
  name="${name//_/.}"
  name="${name//\{dash\}/-}"
  printf '%s' "${name//\{underscore\}/_}"
}

start() {
  [ $# -eq 3 ] || die "usage: start DIR PORT CONTROLLER_PORT"
  local dir=$1 port=$2 controller_port=$3 cluster_id="" controller_names="" key value
  local -a properties=()
  mkdir -p "$dir"
  [ -r "$settings" ] || die "cannot read $settings"
  while IFS='=' read -r key value; do
    case "$key" in ''|'#'*) continue ;; esac
    case "$key" in
      CLUSTER_ID) cluster_id=$value ;;
      KAFKA_CONTROLLER_LISTENER_NAMES) controller_names=$value; properties+=("$(property_name "$key")=$value") ;;
      KAFKA_LISTENERS|KAFKA_CONTROLLER_QUORUM_VOTERS|KAFKA_ADVERTISED_LISTENERS|KAFKA_LOG_DIRS) properties+=("$key=$value") ;;
      KAFKA_*) properties+=("$(property_name "$key")=$value") ;;
      *) die "$settings: $key is not a broker setting" ;;
    esac
  done <"$settings"
  # Kafka's Uuid.fromString: unpadded (or ==-padded) base64url of 16 bytes.
  [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}(==)?$ ]] ||
    die "$settings: CLUSTER_ID '$cluster_id' is not a Kafka cluster id (22 base64url characters that decode to 16 bytes; kafka-storage.sh random-uuid makes one)"
  [ -n "$controller_names" ] || die "$settings: KAFKA_CONTROLLER_LISTENER_NAMES is missing"

  local out="$dir/server.properties" entry listener name
  : >"$out"
  for entry in "${properties[@]}"; do
    key=${entry%%=*}
    value=${entry#*=}
    case "$key" in
      KAFKA_LISTENERS)
        # Each listener keeps its name; the controller's gets CONTROLLER_PORT, the other PORT.
        local -a listeners=() advertised=()
        IFS=',' read -ra entries <<<"$value"
        for listener in "${entries[@]}"; do
          name=${listener%%://*}
          if [[ ",$controller_names," == *",$name,"* ]]; then
            listeners+=("$name://127.0.0.1:$controller_port")
          else
            listeners+=("$name://127.0.0.1:$port")
            advertised+=("$name://127.0.0.1:$port")
          fi
        done
        echo "listeners=$(IFS=,; echo "${listeners[*]}")" >>"$out"
        echo "advertised.listeners=$(IFS=,; echo "${advertised[*]}")" >>"$out"
        ;;
      KAFKA_CONTROLLER_QUORUM_VOTERS)
        echo "controller.quorum.voters=${value%%@*}@127.0.0.1:$controller_port" >>"$out" ;;
      KAFKA_ADVERTISED_LISTENERS|KAFKA_LOG_DIRS) ;; # where it runs decides these
      *) echo "$entry" >>"$out" ;;
    esac
  done
  echo "log.dirs=$dir/data" >>"$out"

  if [ ! -f "$dir/data/meta.properties" ]; then
    # A subshell: java_run execs, and the broker must start after it.
    (java_run kafka.tools.StorageTool format --cluster-id "$cluster_id" --config "$out") >"$dir/format.log" 2>&1 ||
      die "formatting $dir failed: $(cat "$dir/format.log")"
  fi
  java_run kafka.Kafka "$out"
}

create_topics() {
  [ $# -eq 1 ] || die "usage: create-topics BOOTSTRAP"
  local topic
  for topic in "${TOPICS[@]}"; do
    (java_run org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" \
      --create --if-not-exists --topic "$topic" --partitions "$PARTITIONS" --replication-factor 1)
  done
}

case "${1:-}" in
  start) shift; start "$@" ;;
  create-topics) shift; create_topics "$@" ;;
  *) die "usage: $0 start DIR PORT CONTROLLER_PORT | create-topics BOOTSTRAP" ;;
esac
