#!/usr/bin/env python3
"""Prints the gateway-overhead benchmark's table from a results folder written by run.sh: per
concurrency, p50/p99 time to first token (TTFT) and to last token (TTLT) over every measured
request of every round, direct and via Prism, what Prism adds (the difference of the two
percentiles), Prism's CPU per request, the fake vendor's accepted connections per request, and
the CPU other processes took meanwhile. Usage: report.py DIR
"""
import collections
import csv
import json
import math
import pathlib
import shlex
import sys


def read_meta(folder):
    meta = {}
    for line in (folder / "meta.env").read_text().splitlines():
        key, _, value = line.partition("=")
        meta[key] = " ".join(shlex.split(value))
    return meta


def percentile(sorted_values, fraction):
    """Nearest-rank percentile; None for no values."""
    if not sorted_values:
        return None
    index = max(0, min(len(sorted_values) - 1, math.ceil(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def ms(value):
    return "%9.2f" % (value / 1000) if value is not None else "%9s" % "-"


def added(prism, direct):
    return "%+9.2f" % ((prism - direct) / 1000) if prism is not None and direct is not None else "%9s" % "-"


def main():
    folder = pathlib.Path(sys.argv[1])
    meta = read_meta(folder)
    cores, hz = int(meta["cores"]), int(meta["clock_ticks"])
    runs = collections.defaultdict(list)  # (concurrency, target) -> runs
    busy = total = ours = 0
    with open(folder / "runs.tsv") as table:
        for row in csv.DictReader(table, delimiter="\t"):
            name = "c%s.r%s.%s" % (row["concurrency"], row["round"], row["target"])
            summary = json.loads((folder / (name + ".json")).read_text())
            samples = [tuple(int(v) for v in line.split())
                       for line in (folder / (name + ".samples")).read_text().splitlines() if line]
            client_ticks = summary["client_cpu_s"] * hz
            runs[(int(row["concurrency"]), row["target"])].append(dict(row=row, summary=summary, samples=samples))
            busy += int(row["busy_ticks"])
            total += int(row["total_ticks"])
            ours += int(row["prism_ticks"]) + int(row["fake_ticks"]) + client_ticks

    print("Gateway overhead: the same client streaming %s, directly from the fake vendor and via Prism;"
          % meta["answer"])
    print("%s rounds alternated per concurrency, each run %s. Results in %s"
          % (meta["rounds"], meta["duration"], folder))
    print("prism-server: %s" % meta["prism"])
    print("machine: %d cores; load average %s at start, %s at end; while measuring, this benchmark"
          " (Prism, fake, client) used %.2f cores and other processes %.2f cores"
          % (cores, meta["load_start"], meta["load_end"], ours / total * cores if total else 0,
             max(0, busy - ours) / total * cores if total else 0))
    for concurrency in sorted({c for c, _ in runs}):
        rows = {}
        for target in ("direct", "prism"):
            target_runs = runs.get((concurrency, target), [])
            ttft = sorted(s[0] for run in target_runs for s in run["samples"])
            ttlt = sorted(s[1] for run in target_runs for s in run["samples"])
            rows[target] = dict(
                ttft50=percentile(ttft, 0.5), ttft99=percentile(ttft, 0.99),
                ttlt50=percentile(ttlt, 0.5), ttlt99=percentile(ttlt, 0.99),
                ok=len(ttft),
                errors=sum(run["summary"]["errors"] for run in target_runs),
                error_kinds=sorted({k for run in target_runs for k in run["summary"]["error_kinds"] or []}),
                rate=sum(run["summary"]["req_per_s"] for run in target_runs) / max(1, len(target_runs)),
                completed=sum(run["summary"]["completed_ok"] for run in target_runs),
                prism_ticks=sum(int(run["row"]["prism_ticks"]) for run in target_runs),
                connections=sum(int(run["row"]["connections"]) for run in target_runs),
                vendor_requests=sum(int(run["row"]["fake_requests"]) for run in target_runs),
                rounds=[run["samples"] for run in target_runs],
            )
        direct, prism = rows["direct"], rows["prism"]
        print()
        print("%d concurrent stream%s" % (concurrency, "" if concurrency == 1 else "s"))
        header = "%-10s %9s %9s %9s %9s %8s %8s %7s" % ("", "TTFT p50", "TTFT p99", "TTLT p50", "TTLT p99",
                                                        "req/s", "requests", "errors")
        print(header + "   (ms)")
        print("-" * len(header))
        for label, row in (("direct", direct), ("via Prism", prism)):
            print("%-10s %s %s %s %s %8.1f %8d %7d" % (label, ms(row["ttft50"]), ms(row["ttft99"]), ms(row["ttlt50"]),
                                                     ms(row["ttlt99"]), row["rate"], row["ok"], row["errors"]))
        print("%-10s %s %s %s %s" % ("added", added(prism["ttft50"], direct["ttft50"]), added(prism["ttft99"], direct["ttft99"]),
                                      added(prism["ttlt50"], direct["ttlt50"]), added(prism["ttlt99"], direct["ttlt99"])))
        per_round = []
        for d, p in zip(direct["rounds"], prism["rounds"]):
            d99, p99 = percentile(sorted(s[0] for s in d), 0.99), percentile(sorted(s[0] for s in p), 0.99)
            per_round.append(added(p99, d99).strip())
        print("added TTFT p99 in each round (ms): %s" % " ".join(per_round))
        if prism["completed"]:
            cpu_ms = prism["prism_ticks"] / hz * 1000 / prism["completed"]
            deltas = int(meta["answer"].split()[0])
            print("Prism CPU per request: %.2f ms (%.1f µs per text delta), over the %d requests answered in full"
                  " (warm-up included; failed requests' CPU counts too)" % (cpu_ms, cpu_ms * 1000 / deltas, prism["completed"]))
        for label, row in (("direct", direct), ("via Prism", prism)):
            if row["vendor_requests"]:
                print("fake vendor, %s: %d connections accepted for %d requests (%.3f per request)"
                      % (label, row["connections"], row["vendor_requests"], row["connections"] / row["vendor_requests"]))
        for label, row in (("direct", direct), ("via Prism", prism)):
            for kind in row["error_kinds"]:
                print("errors %s: %s" % (label, kind))


if __name__ == "__main__":
    main()
