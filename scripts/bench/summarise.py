#!/usr/bin/env python3
"""Summarises loaddriver JSON lines: median and range over runs, as markdown table rows.

Usage: summarise.py RESULTS.jsonl [...]. Groups lines by scenario, backend, tenant count,
phase and (when run.sh was given SERVER_BINS) build; for each figure prints `median (min–max)` over the runs, the number of runs, errors
summed over all runs, and the load average seen. Create throughput on PostgreSQL is also given
as a fraction of the pgbench single-row INSERT rate measured in the same session.
"""
import json
import statistics
import sys
from collections import defaultdict

FIGURES = [
    ("rps", "req/s", 0),
    ("p50_ms", "p50 ms", 2),
    ("p99_ms", "p99 ms", 2),
    ("server_cpu_us_per_req", "server CPU µs/req", 1),
    ("server_peak_rss_mb", "peak RSS MB", 1),
]


def fmt(values, digits):
    if not values:
        return "—"
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    f = f"{{:.{digits}f}}"
    if len(values) == 1:
        return f.format(med)
    return f"{f.format(med)} ({f.format(lo)}–{f.format(hi)})"


def main(paths):
    groups = defaultdict(list)
    for path in paths:
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                key = (rec.get("scenario", "-"), rec.get("backend", "-"),
                       int(rec.get("tenants", 0) or 0), rec["phase"], rec.get("build", ""))
                groups[key].append(rec)

    builds = any(k[4] for k in groups)
    head = ["scenario", "backend", "tenants", "phase"] + (["build"] if builds else []) + ["runs"]
    head += [h for _, h, _ in FIGURES]
    head += ["errors", "load avg"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for key in sorted(groups):
        recs = groups[key]
        row = [key[0], key[1], f"{key[2]:,}" if key[2] else "—", key[3]]
        row += [key[4] or "—"] if builds else []
        row.append(str(len(recs)))
        for field, _, digits in FIGURES:
            row.append(fmt([r[field] for r in recs if field in r], digits))
        row.append(str(sum(int(r.get("errors", 0)) for r in recs)))
        row.append(fmt([r["load_avg_1m"] for r in recs if "load_avg_1m" in r], 1))
        print("| " + " | ".join(row) + " |")

    ref = [r["rps"] for (s, b, _, p, _), rs in groups.items() if p == "pgbench_insert" for r in rs]
    creates = [r["rps"] for (s, b, _, p, _), rs in groups.items()
               if s == "phases" and b == "postgres" and p == "create" for r in rs]
    if ref and creates:
        ratio = statistics.median(creates) / statistics.median(ref)
        print()
        print(f"PostgreSQL creates/s {fmt(creates, 0)} vs pgbench single-row INSERT "
              f"{fmt(ref, 0)} tps: {ratio:.0%} (median over median)")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
