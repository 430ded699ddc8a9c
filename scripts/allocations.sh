#!/usr/bin/env bash
#! Allocations per checkout of a traced and an untraced eshop under the same load (`make allocations`).
# `bench paired RATE SECONDS` runs a traced and an untraced stack side by side
# at RATE checkouts/s each. Here the bench runs from a directory in which
# `eshop` starts the real eshop under heaptrack's preload library, so every
# call to malloc and friends is counted from the first instruction, with no
# attach stall (attaching stops the process while the open loop's requests
# queue, and the window then holds more checkouts than RATE times its length).
# Two runs, of SHORT and LONG seconds: the difference of their counts over the
# difference of their checkouts is the cost of one checkout, start-up and
# shutdown cancelled out. The long run's stacks, weighted by calls, go to
# target/allocations/ and through scripts/flame-shares.py, which splits them by
# part as it does CPU samples. 100 checkouts/s by default: at 150/s heaptrack
# slowed the traced eshop enough to refuse checkouts (undo backlog, 503) in
# some runs.
# Needs heaptrack (installed from Debian once) and a release build (`make
# allocations` builds it).
set -euo pipefail
cd "$(dirname "$0")/.."

rate="${1:-100}"
short="${2:-20}"
long="${3:-40}"
release="${RELEASE_DIR:-$PWD/target/release}"
out=target/allocations
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if ! command -v heaptrack >/dev/null; then
  command -v apt-get >/dev/null || { echo "allocations: no heaptrack and no apt-get; install heaptrack" >&2; exit 1; }
  sudo=""; [ "$(id -u)" != 0 ] && sudo="sudo"
  echo "installing Debian's heaptrack package (once)" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y --no-install-recommends heaptrack >&2 || { $sudo apt-get update >&2 && $sudo apt-get install -y --no-install-recommends heaptrack >&2; }
fi
heaptrack_lib="$(cd "$(dirname "$(command -v heaptrack)")/../lib/heaptrack" && pwd -P)"
[ -f "$heaptrack_lib/libheaptrack_preload.so" ] || { echo "allocations: no $heaptrack_lib/libheaptrack_preload.so" >&2; exit 1; }

# The bench finds the services beside its own executable: a copy of it, the
# other services linked, and eshop wrapped. The wrapper ends in `exec`, so the
# stack's SIGKILL at the end reaches eshop itself and heaptrack's interpreter
# sees the end of its pipe.
bin="$work/bin"
mkdir -p "$bin"
cp "$release/bench" "$bin/bench"
for service in inventory billing delivery notification kafka-consumer otlp-sink; do
  ln -s "$release/$service" "$bin/$service"
done
cat >"$bin/eshop" <<EOF
#!/bin/sh
kind=traced; [ "\${OTEL_SDK_DISABLED:-}" = true ] && kind=untraced
pipe="$work/run/\$kind.pipe"
mkfifo "\$pipe"
"$heaptrack_lib/libexec/heaptrack_interpret" <"\$pipe" | zstd -q -c >"$work/run/\$kind.zst" &
LD_PRELOAD="$heaptrack_lib/libheaptrack_preload.so" DUMP_HEAPTRACK_OUTPUT="\$pipe" exec "$release/eshop" "\$@"
EOF
chmod +x "$bin/eshop"

# calls KIND: the calls to allocation functions of the last run's eshop of that kind.
calls() {
  heaptrack_print -f "$work/run/$1.zst" -n 0 -s 0 2>/dev/null |
    sed -n 's/^calls to allocation functions: \([0-9]*\) .*/\1/p'
}

declare -A counts
mkdir -p "$out"
for seconds in "$short" "$long"; do
  rm -rf "$work/run" && mkdir -p "$work/run"
  "$bin/bench" paired "$rate" "$seconds" >"$work/paired-$seconds.txt"
  # The interpreters finish once their pipes close, just after the stack is dropped.
  for kind in traced untraced; do
    for _ in $(seq 1 100); do
      pgrep -f "heaptrack_interpret" >/dev/null || break
      sleep 0.2
    done
    counts[$kind-$seconds]="$(calls "$kind")"
  done
done
for kind in traced untraced; do
  heaptrack_print -f "$work/run/$kind.zst" --flamegraph-cost-type allocations -F "$out/eshop-$kind.folded" -n 0 -s 0 >/dev/null 2>&1
  extra=$(( counts[$kind-$long] - counts[$kind-$short] ))
  checkouts=$(( ${rate%.*} * (long - short) ))
  echo "eshop, $kind: ${counts[$kind-$short]} allocation calls in the ${short}-s run, ${counts[$kind-$long]} in the ${long}-s run: $(( extra / checkouts )) per checkout"
done
echo "By part, the ${long}-s run (start-up included; stacks in $out/):"
scripts/flame-shares.py "$out/eshop-traced.folded" "$out/eshop-untraced.folded"
cat "$work/paired-$long.txt"
