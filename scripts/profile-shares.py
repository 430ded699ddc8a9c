#!/usr/bin/env python3
"""Where each process's CPU goes, from a system-wide `perf record`: shares by process and by library.

Usage (while `target/release/bench half-load RATE SECONDS` runs):
    perf record -F 299 -a -o perf.data -- sleep 20
    perf script -i perf.data -F pid,ip,sym,dso > perf.txt
    scripts/profile-shares.py perf.txt [PROCESS ...]

Samples are flat (no call graphs: the release build has no frame pointers),
so a function is counted where the CPU was, not where it was called from:
malloc called by the OpenTelemetry SDK counts as "allocator". The buckets
are matched on symbol names in order; the first match wins.
"""

import collections
import re
import sys

# (bucket, pattern on the symbol) for user-space code, first match wins.
BUCKETS = [
    ("allocator (glibc malloc/free)", r"^(_int_malloc|_int_free|malloc|cfree|free|realloc|_int_realloc|calloc|malloc_consolidate|unlink_chunk|tcache_|__libc_malloc|__libc_free)"),
    ("memcpy/memcmp/memchr", r"^(__mem|memcpy|memmove|memcmp|memset|__strlen|core::slice::memchr)"),
    ("tracing layers (tracing, tracing-subscriber, tracing-opentelemetry)", r"tracing_subscriber|tracing_core|tracing_opentelemetry|\btracing::"),
    ("OpenTelemetry SDK, OTLP export, protobuf", r"opentelemetry|prost|otlp"),
    ("this suite's telemetry crate", r"\btelemetry::"),
    ("JSON (serde_json)", r"serde_json|serde::"),
    ("HTTP (hyper, axum, tower, reqwest, http)", r"hyper|axum|tower|reqwest|\bhttp::|httparse|h2::"),
    ("tokio runtime", r"tokio|mio::|parking_lot"),
    ("Kafka client (librdkafka, rdkafka)", r"^rd_|rdkafka|^cnd_|^mtx_|^thrd_"),
    ("Tansu storage (dynostore fetch, object store)", r"tansu_storage|object_store|cached::"),
    ("hashing, maps, collections", r"hashbrown|btree|BTree|HashMap|core::hash|sip::"),
]
NOT_USER = {"[kernel.kallsyms]": "kernel (syscalls, TCP loopback, scheduler)", "[vdso]": "vdso (clock_gettime)"}
LIBS = {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "[unknown]"}
LINE = re.compile(r"\s*(\d+)\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")


def bucket(symbol: str, dso: str) -> str:
    if dso in NOT_USER:
        return NOT_USER[dso]
    for name, pattern in BUCKETS:
        if re.search(pattern, symbol):
            return name
    return "libc, other" if dso in LIBS else "other (the program's own code, std)"


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    per_pid = collections.Counter()
    dsos = collections.defaultdict(collections.Counter)
    shares = collections.defaultdict(collections.Counter)
    with open(sys.argv[1], encoding="utf-8", errors="replace") as lines:
        for line in lines:
            match = LINE.match(line)
            if not match:
                continue
            pid, symbol, dso = match.groups()
            dso = dso.rsplit("/", 1)[-1]
            per_pid[pid] += 1
            dsos[pid][dso] += 1
            shares[pid][bucket(symbol, dso)] += 1
    total = sum(per_pid.values()) or 1

    def name(pid: str) -> str:
        own = [d for d in dsos[pid] if d not in LIBS and d not in NOT_USER]
        return max(own, key=lambda d: dsos[pid][d]) if own else ("idle" if pid == "0" else f"pid {pid}")

    wanted = set(sys.argv[2:])
    print(f"{total} samples\n\n| process | share of all samples |\n| --- | --- |")
    for pid, count in per_pid.most_common():
        if count * 200 >= total:
            print(f"| {name(pid)} | {100 * count / total:.1f}% |")
    for pid, count in per_pid.most_common():
        if (wanted and name(pid) not in wanted) or (not wanted and (pid == "0" or count * 50 < total)):
            continue
        print(f"\n{name(pid)}: {count} samples\n\n| where | share |\n| --- | --- |")
        for where, n in shares[pid].most_common():
            if n * 200 >= count:
                print(f"| {where} | {100 * n / count:.1f}% |")


if __name__ == "__main__":
    main()
