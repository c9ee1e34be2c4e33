#!/usr/bin/env python3
"""Prints the scale-out benchmark's tables from a results folder written by run.sh: per workload and
target (one replica direct, nginx in front of 1, 2 and 3), req/s (median of the rounds, each round
listed) and its ratio to direct, latency percentiles over every request of every round, and CPU per
request of the replicas and of nginx. Usage: report.py DIR"""
import csv
import importlib.util
import json
import pathlib
import re
import statistics
import sys

# read_meta and the nearest-rank percentile are the overhead bench's (one implementation).
_spec = importlib.util.spec_from_file_location(
    "overhead_report", pathlib.Path(__file__).resolve().parent.parent / "overhead" / "report.py")
_overhead = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_overhead)
read_meta = _overhead.read_meta


def percentile(values, p):
    """The p-th percentile (nearest rank) of unsorted values; nan for none."""
    value = _overhead.percentile(sorted(values), p / 100)
    return float("nan") if value is None else value


def health_run(folder, target, round_):
    """(req/s, failed, latencies in ms) of one h2load run; a non-2xx answer counts as failed."""
    text = (folder / f"health.{target}.{round_}.out").read_text()
    rate = float(re.search(r"^finished in .*?, ([\d.]+) req/s", text, re.M).group(1))
    counts = re.search(r"^requests: .*?(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", text, re.M)
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    failed = sum(int(n) for n in counts.groups()[1:]) + sum(int(n) for n in codes.groups()[1:])
    latencies = [int(line.split("\t")[2]) / 1000 for line in (folder / f"health.{target}.{round_}.log").read_text().splitlines() if line]
    return rate, failed, latencies


def generate_run(folder, target, round_):
    """(req/s, errors, ttft ms list, ttlt ms list, requests ended in the run, warm-up included)."""
    summary = json.loads((folder / f"generate.{target}.{round_}.json").read_text())
    ttft, ttlt = [], []
    for line in (folder / f"generate.{target}.{round_}.samples").read_text().splitlines():
        first, last = line.split()
        ttft.append(int(first) / 1000)
        ttlt.append(int(last) / 1000)
    return summary["req_per_s"], summary["errors"], ttft, ttlt, summary["completed"]


def main(folder):
    meta = read_meta(folder)
    targets = meta["targets"].split()
    rounds = int(meta["rounds"])
    hz = 100  # clock ticks per second of /proc/PID/stat on Linux
    runs = list(csv.DictReader((folder / "runs.tsv").open(), delimiter="\t"))

    def cpu_per_request(workload, target, requests):
        rows = [r for r in runs if r["workload"] == workload and r["target"] == target]
        prism = sum(int(r["prism_ticks"]) for r in rows) / hz
        nginx = sum(int(r["nginx_ticks"]) for r in rows) / hz
        busy = sum(int(r["busy_ticks"]) for r in rows) / max(1, sum(int(r["total_ticks"]) for r in rows)) * int(meta["cores"])
        return prism / requests * 1e6, nginx / requests * 1e6, busy

    print(f"Scale-out: prism-server direct vs nginx {meta['nginx']} in front of 1, 2 and 3 replicas; "
          f"{meta['cores']} cores, load {meta['load_start']} -> {meta['load_end']}")
    print(f"prism-server: {meta['prism']}; {rounds} rounds, targets alternated")

    print(f"\nHealth/Check: {meta['health']}")
    print(f"{'target':<9} {'req/s (median)':>14} {'x direct':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'prism µs/req':>12} {'nginx µs/req':>12} {'busy cores':>10}  rounds req/s")
    base = None
    for target in targets:
        rates, failed, latencies, requests = [], 0, [], 0
        for round_ in range(1, rounds + 1):
            rate, bad, lat = health_run(folder, target, round_)
            rates.append(rate)
            failed += bad
            latencies += lat
            requests += len(lat)
        median = statistics.median(rates)
        base = base or median
        prism, nginx, busy = cpu_per_request("health", target, requests)
        print(f"{target:<9} {median:>14.0f} {median / base:>8.2f} {percentile(latencies, 50):>7.2f} "
              f"{percentile(latencies, 99):>7.2f} {prism:>12.1f} {nginx:>12.1f} {busy:>10.2f}  "
              + " ".join(f"{r:.0f}" for r in rates) + (f"  ({failed} FAILED)" if failed else ""))

    print(f"\nGenerate (streamed, fake OpenAI vendor): {meta['generate']}")
    print(f"{'target':<9} {'req/s (median)':>14} {'x direct':>8} {'TTFT p50':>8} {'TTFT p99':>8} "
          f"{'TTLT p50':>8} {'TTLT p99':>8} {'prism ms/req':>12} {'nginx ms/req':>12} {'busy cores':>10}  rounds req/s")
    base = None
    for target in targets:
        rates, errors, ttft, ttlt, requests = [], 0, [], [], 0
        for round_ in range(1, rounds + 1):
            rate, bad, first, last, completed = generate_run(folder, target, round_)
            rates.append(rate)
            errors += bad
            ttft += first
            ttlt += last
            requests += completed
        median = statistics.median(rates)
        base = base or median
        prism, nginx, busy = cpu_per_request("generate", target, max(1, requests))
        print(f"{target:<9} {median:>14.1f} {median / base:>8.2f} {percentile(ttft, 50):>8.1f} {percentile(ttft, 99):>8.1f} "
              f"{percentile(ttlt, 50):>8.1f} {percentile(ttlt, 99):>8.1f} {prism / 1000:>12.2f} {nginx / 1000:>12.2f} {busy:>10.2f}  "
              + " ".join(f"{r:.1f}" for r in rates) + (f"  ({errors} FAILED)" if errors else ""))
    print("\nCPU per request: the processes' user+system ticks over a run divided by the requests that ended "
          "in it (Generate: warm-up included); busy cores: the whole machine meanwhile (load clients and "
          "other work included).")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
