#!/usr/bin/env python3
"""Prints the gRPC benchmark's table from a results folder written by run.sh: per workload and
server, req/s (median over the rounds, each round listed), p50/p99 latency over every request of
every round (from h2load's --log-file), and Prism's req/s over each peer's. Usage: report.py DIR
"""
import pathlib
import re
import shlex
import statistics
import sys

NAMES = {
    "prism": "Prism",
    "base": "Prism, base build",
    "go": "grpc-go 1.33 (Debian)",
    "cpp": "gRPC C++ 1.51 (Debian)",
    "swift": "grpc-swift-2 2.4.3",
    "python": "Python grpcio",
}
WORKLOADS = {
    "unary": "unary grpc.health.v1.Health/Check",
    "streaming": "server streaming grpc.testing.TestService/StreamingOutputCall",
}


def read_meta(folder):
    meta = {}
    for line in (folder / "meta.env").read_text().splitlines():
        key, _, value = line.partition("=")
        meta[key] = " ".join(shlex.split(value))
    return meta


def read_run(out_file):
    """(req/s, failed requests, latencies in µs) of one h2load run."""
    text = out_file.read_text()
    rate = float(re.search(r"^finished in .*?, ([\d.]+) req/s", text, re.M).group(1))
    counts = re.search(r"^requests: .*?(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout",
                       text, re.M)
    failed = sum(int(n) for n in counts.groups()[1:])
    log = out_file.with_suffix(".log")
    latencies = [int(line.split("\t")[2]) for line in log.read_text().splitlines() if line]
    return rate, failed, latencies


def percentile(sorted_values, fraction):
    """Nearest-rank percentile."""
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def main():
    folder = pathlib.Path(sys.argv[1])
    meta = read_meta(folder)
    servers = meta["servers"].split()
    busy, total, ours = (int(meta[k]) for k in ("busy_ticks", "total_ticks", "ours_ticks"))
    cores = int(meta["cores"])
    other = max(0, busy - ours) / total * cores if total else 0.0
    print("gRPC benchmark, %s rounds alternated across servers; results in %s" % (meta["rounds"], folder))
    print("machine: %d cores; load average %s at start, %s at end; while measuring, this benchmark"
          " (servers + h2load) used %.2f cores and other processes %.2f cores"
          % (cores, meta["load_start"], meta["load_end"], ours / total * cores if total else 0, other))
    if meta.get("base"):
        print("Prism: %s; base build: %s" % (meta["prism"], meta["base"]))
    for workload, title in WORKLOADS.items():
        command = meta[workload]
        if not list(folder.glob("%s.*.out" % workload)):
            continue
        print()
        print("%s  (%s)" % (title, command))
        rows = {}
        for server in servers:
            runs = [read_run(f) for f in sorted(folder.glob("%s.%s.*.out" % (workload, server)))]
            if not runs:
                continue
            latencies = sorted(l for run in runs for l in run[2])
            rows[server] = {
                "rate": statistics.median(run[0] for run in runs),
                "rounds": [run[0] for run in runs],
                "failed": sum(run[1] for run in runs),
                "p50": percentile(latencies, 0.50) / 1000,
                "p99": percentile(latencies, 0.99) / 1000,
            }
        prism = rows.get("prism", {}).get("rate")
        unit = "calls/s" if workload == "streaming" else "req/s"
        header = "%-24s %10s %8s %9s %10s   %s" % ("server", unit, "p50 ms", "p99 ms", "Prism/this", "each round (" + unit + ")")
        if workload == "streaming":
            header = header.replace("   each", " %10s   each" % "msgs/s")
        print(header)
        print("-" * len(header))
        for server, row in rows.items():
            ratio = "%.2fx" % (prism / row["rate"]) if prism and server != "prism" else ""
            name = "Prism, new build" if server == "prism" and meta.get("base") else NAMES.get(server, server)
            line = "%-24s %10.0f %8.2f %9.2f %10s" % (name, row["rate"],
                                                       row["p50"], row["p99"], ratio)
            if workload == "streaming":
                line += " %10.0f" % (row["rate"] * int(meta["stream_messages"]))
            line += "   " + " ".join("%.0f" % r for r in row["rounds"])
            if row["failed"]:
                line += "   (%d requests FAILED)" % row["failed"]
            print(line)
        peers = {s: r["rate"] for s, r in rows.items() if s not in ("prism", "base")}
        if prism and peers:
            fastest = max(peers, key=peers.get)
            print("Prism vs the fastest peer (%s): %.2fx" % (NAMES.get(fastest, fastest),
                                                          prism / peers[fastest]))
        if prism and "base" in rows and "go" in rows:
            print("new build / grpc-go: %.2fx; base build / grpc-go: %.2fx" % (
                prism / rows["go"]["rate"], rows["base"]["rate"] / rows["go"]["rate"]))


if __name__ == "__main__":
    main()
