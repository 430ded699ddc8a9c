#!/usr/bin/env bash
#! Flame graphs of a traced and an untraced eshop under the same load at the same time (`make flamegraphs`).
# `bench paired RATE SECONDS` runs a traced and an untraced stack side by side
# at RATE checkouts/s each; perf samples both eshops for the middle of that
# run, with DWARF call graphs (the release binaries keep their symbols; no
# frame pointers needed), and inferno draws one SVG per eshop into
# docs/flamegraphs/ (the folded stacks, for scripts/flame-shares.py, into
# target/flamegraphs/). inferno is installed once with cargo (~/.cargo/bin).
# Needs perf (linux-perf) and a release build (`make flamegraphs` does both).
set -euo pipefail
cd "$(dirname "$0")/.."

rate="${1:-150}"
seconds="${2:-40}"
sample_seconds="${3:-15}"
out="${FLAMEGRAPH_DIR:-docs/flamegraphs}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

command -v perf >/dev/null || { echo "flamegraphs: perf is missing (apt-get install linux-perf)" >&2; exit 1; }
if ! command -v inferno-flamegraph >/dev/null; then
  cargo install --locked --quiet inferno --version 0.12.8 >&2
fi
export PATH="$HOME/.cargo/bin:$PATH"

target/release/bench paired "$rate" "$seconds" >"$work/paired.txt" 2>"$work/paired.err" &
bench=$!
# Ready when both stacks' eshops run: each stack's processes are children of
# the bench process.
eshops=()
for _ in $(seq 1 300); do
  mapfile -t eshops < <(pgrep -P "$bench" -x eshop || true)
  [ "${#eshops[@]}" -ge 2 ] && break
  sleep 0.2
done
[ "${#eshops[@]}" -ge 2 ] || { echo "flamegraphs: the two eshops did not start" >&2; cat "$work/paired.err" >&2; exit 1; }
# The load runs once the eshops burn CPU: more than 5 ticks in a second.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
while kill -0 "$bench" 2>/dev/null; do
  before="$(ticks "${eshops[1]}")"; sleep 1
  [ $(( $(ticks "${eshops[1]}") - before )) -gt 5 ] && break
done
sleep $(( (seconds - sample_seconds) / 2 ))

mkdir -p "$out" target/flamegraphs
perfs=()
for pid in "${eshops[@]}"; do
  if tr '\0' '\n' <"/proc/$pid/environ" | grep -qx 'OTEL_SDK_DISABLED=true'; then kind=untraced; else kind=traced; fi
  perf record -q -F 499 --call-graph dwarf,16384 -p "$pid" -o "$work/$kind.data" -- sleep "$sample_seconds" 2>/dev/null &
  perfs+=($!)
done
wait "${perfs[@]}"
wait "$bench"
for kind in traced untraced; do
  label="tracing on"; [ "$kind" = untraced ] && label="tracing off (OTEL_SDK_DISABLED)"
  perf script -i "$work/$kind.data" 2>/dev/null | inferno-collapse-perf >"target/flamegraphs/eshop-$kind.folded"
  inferno-flamegraph --minwidth 0.5 --title "eshop, $label, $rate checkouts/s, $sample_seconds s" \
    <"target/flamegraphs/eshop-$kind.folded" >"$out/eshop-$kind.svg"
  echo "$out/eshop-$kind.svg (stacks: target/flamegraphs/eshop-$kind.folded)"
done
cat "$work/paired.txt"
