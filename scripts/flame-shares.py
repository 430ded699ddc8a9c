#!/usr/bin/env python3
"""Where a traced eshop's CPU (or its allocations) goes against an untraced one, from folded stacks.

Usage (after `make flamegraphs`, or with `make allocations`' heaptrack stacks):
    scripts/flame-shares.py target/flamegraphs/eshop-traced.folded target/flamegraphs/eshop-untraced.folded
    scripts/flame-shares.py target/allocations/eshop-traced.folded target/allocations/eshop-untraced.folded

Each line of a folded file is `frame;frame;...;frame weight` (inferno's
format, root first). A stack on one of the SDK's export threads counts for
the export, whatever it calls; any other stack counts for the part of its
innermost frame that names one (malloc called by the OpenTelemetry SDK
counts for the SDK, not for the allocator; a future polled inside an
instrumented span counts for what it does, not for the span). Both files
were sampled for the same seconds at the same load, so their totals
compare as CPU (heaptrack's stacks, weighted by calls, as allocations).
heaptrack leaves Rust's legacy escapes in its frames (`..` for `::`,
`$LT$` for `<`); they are undone before matching.
"""

import re
import sys

# The SDK's own threads: a stack with any of these frames is export work.
EXPORT = ("OTLP export (the batch processors' threads: encoding, HTTP)", r"BatchSpanProcessor|BatchLogProcessor|PeriodicReader|opentelemetry_otlp|prost::")
# (part, pattern on one frame), for the innermost frame that matches any.
PARTS = [
    ("tracing-opentelemetry (span building, attributes, ending)", r"tracing_opentelemetry::"),
    ("OpenTelemetry SDK on the request path (spans, histograms, logs)", r"opentelemetry_sdk::|opentelemetry::"),
    ("log lines (fmt layer, stdout writer, OTLP log bridge)", r"tracing_subscriber::fmt|telemetry::logs"),
    ("tracing-subscriber registry and filters, span enter and exit", r"tracing_subscriber::|tracing_core::|tracing::span::|Instrumented.*::poll|sharded_slab::"),
    ("the suite's telemetry and exposition (/metrics store, propagation)", r"\btelemetry::"),
    ("Kafka client (librdkafka threads, rdkafka)", r"rdkafka|^rd_|librdkafka"),
    ("JSON (serde_json)", r"serde_json"),
    ("HTTP (hyper, axum, reqwest, h2)", r"hyper::|axum::|reqwest|h2::|httparse|tower::"),
    ("tokio runtime (scheduling, timers, I/O driver)", r"tokio::|mio::"),
    ("kernel (syscalls, network stack)", r"\[unknown\]|^entry_SYSCALL|^__x64_sys|^do_syscall|_\[k\]$"),
]

COMPILED = [(name, re.compile(pattern)) for name, pattern in PARTS]
EXPORT_REGEX = re.compile(EXPORT[1])


LEGACY_ESCAPES = (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$RF$", "&"), ("$C$", ","), ("..", "::"))


def readable(frame):
    """A frame as perf prints it: heaptrack leaves the legacy mangling's escapes in."""
    for escaped, plain in LEGACY_ESCAPES:
        frame = frame.replace(escaped, plain)
    return frame


def innermost(frames):
    """The part of the innermost frame that names one."""
    for frame in reversed(frames):
        for name, regex in COMPILED:
            if regex.search(frame):
                return name
    return "other"


def shares(path):
    """Weight per part, and the total, of one folded file."""
    parts = {EXPORT[0]: 0}
    parts.update({name: 0 for name, _ in PARTS})
    parts["other"] = 0
    total = 0
    with open(path, encoding="utf-8", errors="replace") as folded:
        for line in folded:
            stack, _, weight = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            weight = int(float(weight))
            total += weight
            frames = [readable(frame) for frame in stack.split(";")]
            if any(EXPORT_REGEX.search(frame) for frame in frames):
                parts[EXPORT[0]] += weight
                continue
            parts[innermost(frames)] += weight
    return parts, total


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    traced, traced_total = shares(sys.argv[1])
    untraced, untraced_total = shares(sys.argv[2])
    print("| part | traced | untraced | traced - untraced, as a share of the untraced total |")
    print("| --- | --- | --- | --- |")
    for name in traced:
        on, off = traced[name] / traced_total, untraced[name] / untraced_total
        extra = (traced[name] - untraced[name]) / untraced_total
        print(f"| {name} | {on:.1%} | {off:.1%} | {extra:+.1%} |")
    print(f"| all | 100% | 100% | {(traced_total - untraced_total) / untraced_total:+.1%} |")


if __name__ == "__main__":
    main()
