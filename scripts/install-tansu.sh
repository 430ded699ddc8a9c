#!/usr/bin/env bash
#! Installs the Tansu Kafka-protocol broker once and reuses it afterwards.
# Tansu is `make run KAFKA=tansu`'s broker: a Kafka-protocol broker in Rust, for
# a machine without Java (Apache Kafka is the default everywhere). Building it takes
# 8 to 12 minutes on 2 cores, so it goes into a per-user cache shared by every
# clone, and this script prints the binary's path when it is already there.
set -euo pipefail

TANSU_VERSION="${TANSU_VERSION:-0.6.0}"
# dynostore brings the in-memory storage engine (memory://), libsql the
# SQLite-compatible one (sqlite://) that keeps topics, records and committed
# offsets across a restart without a database server (`make soak` restarts it).
TANSU_FEATURES="dynostore,libsql"
TANSU_ROOT="${TANSU_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/eshop-tracing/tansu-${TANSU_VERSION}-libsql}"
bin="$TANSU_ROOT/bin/tansu"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

echo "installing tansu $TANSU_VERSION into $TANSU_ROOT (takes about 12 minutes, once)" >&2
cargo install tansu --locked --version "$TANSU_VERSION" --features "$TANSU_FEATURES" \
  --root "$TANSU_ROOT" >&2
echo "$bin"
