#!/usr/bin/env python3
"""Print the criterion results written since a given time as a table.

    criterion_report.py CRITERION_DIR SINCE_EPOCH_SECONDS [TARGET_ID=MS...]

For each benchmark: criterion's median estimate and its 95% confidence interval, the median
absolute deviation, and the fastest and slowest sample (time per iteration of each sample).
TARGET_ID=MS pairs (e.g. plan/100000=50) add a target column.
"""

import json
import os
import sys


def fmt(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def main():
    root, since = sys.argv[1], float(sys.argv[2])
    targets = dict(a.split("=", 1) for a in sys.argv[3:])
    found = []
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
            continue
        if os.path.getmtime(os.path.join(dirpath, "estimates.json")) < since:
            continue
        bench = json.load(open(os.path.join(dirpath, "benchmark.json")))
        est = json.load(open(os.path.join(dirpath, "estimates.json")))
        sample = json.load(open(os.path.join(dirpath, "sample.json")))
        per_iter = [t / n for t, n in zip(sample["times"], sample["iters"])]
        found.append((bench["full_id"], est, per_iter))
    if not found:
        sys.exit("no criterion results newer than the start of this run")

    def key(item):
        name = item[0]
        group, _, value = name.partition("/")
        return (group != "plan", group, int(value) if value.isdigit() else 0, name)

    found.sort(key=key)
    head = (f"{'benchmark':<38} {'median':>10} {'95% CI of median':>22} {'MAD':>10}"
            f" {'fastest':>10} {'slowest':>10} {'samples':>7} {'target':>16}")
    print(head)
    print("-" * len(head))
    for name, est, per_iter in found:
        med = est["median"]
        ci = med["confidence_interval"]
        target = ""
        if name in targets:
            limit = float(targets[name]) * 1e6
            target = f"< {targets[name]} ms: " + ("met" if med["point_estimate"] < limit else "MISSED")
        print(f"{name:<38} {fmt(med['point_estimate']):>10}"
              f" {fmt(ci['lower_bound']) + ' - ' + fmt(ci['upper_bound']):>22}"
              f" {fmt(est['median_abs_dev']['point_estimate']):>10}"
              f" {fmt(min(per_iter)):>10} {fmt(max(per_iter)):>10} {len(per_iter):>7} {target:>16}")


if __name__ == "__main__":
    main()
