#!/usr/bin/env python3
"""Prints the gateway-overhead benchmark's tables from a results folder written by run.sh: per
concurrency and target (direct, then each build), TTFT/TTLT p50/p99 over every measured request
of every round and what each build adds to direct (a difference of percentiles), answers/s and
the ratio to direct, the build's CPU per answer and per delta over the measuring windows, its
most threads, how its CPU splits among its threads (by name), and the fake vendor's connections
per request; then memory per idle stream.
Usage: report.py DIR
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


def number(value, form, width=9):
    return (form % value).rjust(width) if value is not None else "-".rjust(width)


def difference(a, b):
    return a - b if a is not None and b is not None else None


def error_kinds(target_runs):
    """The load client's "COUNTx MESSAGE" lines of every run, counts added up by message."""
    counts = collections.Counter()
    for run in target_runs:
        for kind in run["summary"]["error_kinds"] or []:
            count, _, message = kind.partition("x ")
            counts[message] += int(count)
    return ["%dx %s" % (count, message) for message, count in sorted(counts.items())]


def target_row(target_runs, hz, deltas_per_answer):
    """The figures of one target at one concurrency, every round pooled."""
    ttft = sorted(s[0] / 1000 for run in target_runs for s in run["samples"])
    ttlt = sorted(s[1] / 1000 for run in target_runs for s in run["samples"])
    watched = [run["summary"]["server"] for run in target_runs if run["summary"].get("server")]
    ticks = sum(w["cpu_ticks"] for w in watched)
    deltas = sum(w["deltas"] for w in watched)
    rates = [run["summary"]["req_per_s"] for run in target_runs]
    return dict(
        ttft50=percentile(ttft, 0.5), ttft99=percentile(ttft, 0.99),
        ttlt50=percentile(ttlt, 0.5), ttlt99=percentile(ttlt, 0.99),
        ok=len(ttft), rate=sum(rates) / len(rates) if rates else None,
        errors=sum(run["summary"]["errors"] for run in target_runs),
        error_kinds=error_kinds(target_runs),
        # Per answer is per delta times the deltas of an answer: answers that end inside the
        # window are too few to count by when answers are long next to the window (4,096 streams).
        cpu_answer_ms=ticks / hz * 1e3 / deltas * deltas_per_answer if watched and deltas else None,
        cpu_delta_us=ticks / hz * 1e6 / deltas if watched and deltas else None,
        threads=max((w["threads_max"] for w in watched), default=None),
        connections=sum(int(run["row"]["connections"]) for run in target_runs),
        vendor_requests=sum(int(run["row"]["fake_requests"]) for run in target_runs),
        rounds=[sorted(s[0] / 1000 for s in run["samples"]) for run in target_runs],
    )


def is_dispatch(thread):
    """Whether a thread is one of libdispatch's (Swift's global executor): its queue names, e.g.
    com.apple.root.default-qos.overcommit, reach the kernel as their last 15 bytes."""
    return thread.endswith("-qos") or thread.endswith("qos.overcommit")


def thread_split(folder, concurrency, build, cpu_delta_us):
    """A build's CPU per delta at one concurrency split among its threads by name, in shares of
    its threads' ticks over whole runs (warm-up included), every round pooled."""
    path = folder / "threads.tsv"
    if not path.exists() or not cpu_delta_us:
        return "-"
    ticks = collections.Counter()
    for row in csv.DictReader(open(path), delimiter="\t"):
        if int(row["concurrency"]) == concurrency and row["target"] == build:
            name = "dispatch" if is_dispatch(row["thread"]) else row["thread"]
            ticks[name] += int(row["ticks"])
    total = sum(ticks.values())
    if not total:
        return "-"
    return ", ".join("%s %.1f" % (name, cpu_delta_us * count / total) for name, count in ticks.most_common() if count > 0)


def main():
    folder = pathlib.Path(sys.argv[1])
    meta = read_meta(folder)
    cores, hz = int(meta["cores"]), int(meta["clock_ticks"])
    builds = meta["builds"].split()
    runs = collections.defaultdict(list)  # (concurrency, target) -> runs, in round order
    busy = total = ours = 0
    with open(folder / "runs.tsv") as table:
        for row in csv.DictReader(table, delimiter="\t"):
            name = "c%s.r%s.%s" % (row["concurrency"], row["round"], row["target"])
            summary = json.loads((folder / (name + ".json")).read_text())
            samples = [tuple(int(v) for v in line.split())
                       for line in (folder / (name + ".samples")).read_text().splitlines() if line]
            runs[(int(row["concurrency"]), row["target"])].append(dict(row=row, summary=summary, samples=samples))
            busy += int(row["busy_ticks"])
            total += int(row["total_ticks"])
            ours += int(row["servers_ticks"]) + int(row["fake_ticks"]) + summary["client_cpu_s"] * hz

    print("Gateway overhead: the same client streaming %s, directly from the fake vendor and via %s;"
          % (meta["answer"], " and via ".join(builds)))
    print("%s rounds per concurrency, targets alternated, each run %s. Results in %s"
          % (meta["rounds"], meta["duration"], folder))
    for build in builds:
        print("%s: %s" % (build, meta["bin_" + build]))
    print("machine: %d cores; load average %s at start, %s at end; while measuring, this benchmark"
          " (servers, fake, client) used %.2f cores and other processes %.2f cores"
          % (cores, meta["load_start"], meta["load_end"], ours / total * cores if total else 0,
             max(0, busy - ours) / total * cores if total else 0))

    header = "%-7s %9s %9s %9s %9s %9s %9s %9s %8s %9s %9s %8s %7s" % (
        "", "TTFT p50", "TTFT p99", "+p50", "+p99", "TTLT p50", "TTLT p99", "answers/s", "x direct",
        "CPU/ans", "CPU/delta", "threads", "errors")
    units = "%-7s %9s %9s %9s %9s %9s %9s %9s %8s %9s %9s %8s %7s" % (
        "", "ms", "ms", "ms", "ms", "ms", "ms", "", "", "ms", "µs", "max", "")
    for concurrency in sorted({c for c, _ in runs}):
        rows = {t: target_row(runs.get((concurrency, t), []), hz, int(meta["deltas"])) for t in ["direct"] + builds}
        direct = rows["direct"]
        print()
        print("%d concurrent stream%s" % (concurrency, "" if concurrency == 1 else "s"))
        print(header)
        print(units)
        print("-" * len(header))
        for target in ["direct"] + builds:
            row = rows[target]
            ratio = row["rate"] / direct["rate"] if target != "direct" and row["rate"] and direct["rate"] else None
            print("%-7s %s %s %s %s %s %s %s %s %s %s %s %7d" % (
                target, number(row["ttft50"], "%.2f"), number(row["ttft99"], "%.2f"),
                number(difference(row["ttft50"], direct["ttft50"]) if target != "direct" else None, "%+.2f"),
                number(difference(row["ttft99"], direct["ttft99"]) if target != "direct" else None, "%+.2f"),
                number(row["ttlt50"], "%.1f"), number(row["ttlt99"], "%.1f"), number(row["rate"], "%.1f"),
                number(ratio, "%.2fx", 8), number(row["cpu_answer_ms"], "%.2f"),
                number(row["cpu_delta_us"], "%.1f"), number(row["threads"], "%d", 8), row["errors"]))
        for build in builds:
            per_round = [difference(percentile(b, 0.99), percentile(d, 0.99))
                         for d, b in zip(direct["rounds"], rows[build]["rounds"])]
            print("%s: added TTFT p99 in each round (ms): %s" % (
                build, " ".join(number(v, "%+.2f", 0) for v in per_round)))
        if len(builds) == 2:
            old, new = rows[builds[0]], rows[builds[1]]
            print("%s against %s: TTFT p99 %s ms, answers/s %s, CPU per delta %s" % (
                builds[1], builds[0], number(difference(new["ttft99"], old["ttft99"]), "%+.2f", 0),
                number(new["rate"] / old["rate"] if new["rate"] and old["rate"] else None, "%.2fx", 0),
                number(new["cpu_delta_us"] / old["cpu_delta_us"] if new["cpu_delta_us"] and old["cpu_delta_us"] else None, "%.2fx", 0)))
        for build in builds:
            print("%s CPU per delta by thread (µs): %s" % (build, thread_split(folder, concurrency, build, rows[build]["cpu_delta_us"])))
        print("fake vendor connections per request: %s" % ", ".join(
            "%s %.3f" % (t, rows[t]["connections"] / rows[t]["vendor_requests"])
            for t in ["direct"] + builds if rows[t]["vendor_requests"]))
        for target in ["direct"] + builds:
            for kind in rows[target]["error_kinds"]:
                print("errors %s: %s" % (target, kind))

    idle = list(csv.DictReader(open(folder / "idle.tsv"), delimiter="\t")) if (folder / "idle.tsv").exists() else []
    if idle:
        print()
        print("Idle streams: open at the vendor, no text yet, on a fresh server after 3 answers")
        header = "%-7s %8s %8s %11s %11s %10s %8s %8s" % (
            "", "streams", "open", "RSS before", "RSS during", "KiB/stream", "threads", "threads")
        print(header)
        print("%-7s %8s %8s %11s %11s %10s %8s %8s" % ("", "", "", "MiB", "MiB", "", "before", "during"))
        print("-" * len(header))
        for row in idle:
            opened = int(row["open"])
            before, during = int(row["rss_before_kib"]), int(row["rss_during_kib"])
            print("%-7s %8s %8d %11.1f %11.1f %s %8s %8s" % (
                row["build"], row["streams"], opened, before / 1024, during / 1024,
                number((during - before) / opened if opened else None, "%.1f", 10),
                row["threads_before"], row["threads_during"]))
        for row in idle:
            if int(row["open"]) < int(row["streams"]):
                print("%s: only %s of %s streams reached the vendor (see its idle-load and idle-prism logs);"
                      " KiB/stream is over those" % (row["build"], row["open"], row["streams"]))


if __name__ == "__main__":
    main()
