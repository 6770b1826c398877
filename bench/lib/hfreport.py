#!/usr/bin/env python3
"""Print hyperfine --export-json results as a table. Results of the same command (by name) in
several files (rounds) are pooled: median, mean ± stddev, min and max over all their runs,
mean CPU time of the process (user + system), runs, and each median relative to the first
row's. Rows keep the order of the first file.

    hfreport.py TITLE FILE.json [FILE.json...]
"""

import json
import statistics
import sys


def main():
    title, files = sys.argv[1], sys.argv[2:]
    pooled = {}
    for f in files:
        with open(f) as fh:
            for r in json.load(fh)["results"]:
                p = pooled.setdefault(r["command"], {"times": [], "cpu": []})
                p["times"] += r["times"]
                n = len(r["times"])
                p["cpu"] += [r.get("user", 0) + r.get("system", 0)] * n
    print(f"\n{title}")
    head = (f"{'command':<44} {'median':>9} {'mean ± σ':>18} {'min':>9} {'max':>9}"
            f" {'cpu u+s':>8} {'runs':>5} {'vs 1st':>7}")
    print(head)
    print("-" * len(head))
    base = None
    for name, p in pooled.items():
        t = p["times"]
        med = statistics.median(t)
        base = base or med
        sd = statistics.stdev(t) if len(t) > 1 else 0.0
        cpu = statistics.mean(p["cpu"]) * 1e3
        short = name if len(name) <= 44 else name[:41] + "..."
        print(f"{short:<44} {med * 1e3:>7.1f}ms {statistics.mean(t) * 1e3:>8.1f} ± {sd * 1e3:>5.1f}ms"
              f" {min(t) * 1e3:>7.1f}ms {max(t) * 1e3:>7.1f}ms {cpu:>6.1f}ms {len(t):>5}"
              f" {med / base:>6.2f}x")


if __name__ == "__main__":
    main()
