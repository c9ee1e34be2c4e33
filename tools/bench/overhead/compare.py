#!/usr/bin/env python3
"""Summarizes compare.sh: for each build (old, new) and concurrency, every measured request of
every run.sh pass of that build pooled, direct and via Prism: TTFT and TTLT p50/p99 both ways,
what Prism adds (difference of the percentiles), Prism's CPU per request, and the CPU other
processes took meanwhile. Usage: compare.py old=DIR new=DIR old=DIR ...
"""
import collections
import csv
import json
import pathlib
import sys

from report import percentile, read_meta


def main():
    pooled = collections.defaultdict(lambda: collections.defaultdict(list))  # (build, c) -> target -> samples
    cpu = collections.defaultdict(lambda: [0, 0])  # (build, c) -> prism ticks, requests completed
    other = collections.defaultdict(lambda: [0, 0])  # build -> other processes' busy ticks, total ticks
    hz = cores = 0
    for argument in sys.argv[1:]:
        build, _, path = argument.partition("=")
        folder = pathlib.Path(path)
        meta = read_meta(folder)
        hz, cores = int(meta["clock_ticks"]), int(meta["cores"])
        with open(folder / "runs.tsv") as table:
            for row in csv.DictReader(table, delimiter="\t"):
                c, target = int(row["concurrency"]), row["target"]
                name = "c%s.r%s.%s" % (c, row["round"], target)
                summary = json.loads((folder / (name + ".json")).read_text())
                pooled[(build, c)][target] += [tuple(int(v) for v in line.split())
                                               for line in (folder / (name + ".samples")).read_text().splitlines() if line]
                if target == "prism":
                    cpu[(build, c)][0] += int(row["prism_ticks"])
                    cpu[(build, c)][1] += summary["completed_ok"]
                ours = int(row["prism_ticks"]) + int(row["fake_ticks"]) + summary["client_cpu_s"] * hz
                other[build][0] += max(0, int(row["busy_ticks"]) - ours)
                other[build][1] += int(row["total_ticks"])
    print("%-4s %5s %8s | %9s %9s | %9s %9s | %9s %9s | %8s" % (
        "", "conc", "requests", "TTFT p50", "TTFT p99", "TTLT p50", "TTLT p99", "+TTFT p50", "+TTFT p99", "CPU/req"))
    print("%-4s %5s %8s | %9s %9s | %9s %9s | %9s %9s | %8s" % ("", "", "via Prism", "via Prism", "", "via Prism", "", "added", "added", "ms"))
    for (build, c) in sorted(pooled, key=lambda k: (k[1], k[0] != "old")):
        direct, prism = pooled[(build, c)]["direct"], pooled[(build, c)]["prism"]
        def p(samples, index, fraction):
            return percentile(sorted(s[index] for s in samples), fraction) / 1000
        ticks, completed = cpu[(build, c)]
        print("%-4s %5d %8d | %9.2f %9.2f | %9.2f %9.2f | %+9.2f %+9.2f | %8.2f" % (
            build, c, len(prism), p(prism, 0, .5), p(prism, 0, .99), p(prism, 1, .5), p(prism, 1, .99),
            p(prism, 0, .5) - p(direct, 0, .5), p(prism, 0, .99) - p(direct, 0, .99),
            ticks / hz * 1000 / max(1, completed)))
    for build, (busy, total) in sorted(other.items()):
        print("%s: other processes used %.2f of %d cores while measuring" % (build, busy / total * cores if total else 0, cores))


if __name__ == "__main__":
    main()
