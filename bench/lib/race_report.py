#!/usr/bin/env python3
"""Summarise race.py results (one JSON object a line, with "tool" and "run") per tool.

    race_report.py RESULTS.jsonl LOW IDLE_SECS
    race_report.py --line < ONE_RESULT.json      one line about one run
"""

import json
import statistics
import sys


def fmt_ms(xs):
    if not xs:
        return "-"
    return f"{statistics.median(xs) * 1e3:.0f} ms ({min(xs) * 1e3:.0f}-{max(xs) * 1e3:.0f})"


def fmt_mib(xs):
    if not xs:
        return "-"
    return f"{statistics.median(xs) / 1024:.1f} MiB ({min(xs) / 1024:.1f}-{max(xs) / 1024:.1f})"


def line(r):
    t = r["time_to_target_s"]
    took = f"{t * 1e3:.0f} ms" if t is not None else "NEVER"
    return (f"{r['tool']:>6} run {r['run']}: {r['usage_before']}% -> {r['usage_at_target']}% in {took},"
            f" VmHWM {r['hwm_kib']} KiB, in-use image kept: {r['in_use_survived']}")


def main():
    if sys.argv[1:] == ["--line"]:
        print(line(json.loads(sys.stdin.read())))
        return
    path, low, idle = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rows = [json.loads(line) for line in open(path) if line.strip()]
    tools = []
    for r in rows:
        if r["tool"] not in tools:
            tools.append(r["tool"])
    print(f"\nmedian (min-max) over runs; target usage <= {low}%")
    head = (f"{'tool':<7} {'runs':>4} {'reached':>7} {'time to target':>20} {'usage':>11}"
            f" {'VmHWM (own process)':>24} {'session RSS peak':>24} {'in-use kept':>11}")
    print(head)
    print("-" * len(head))
    for tool in tools:
        rs = [r for r in rows if r["tool"] == tool]
        times = [r["time_to_target_s"] for r in rs if r["time_to_target_s"] is not None]
        before = statistics.median(r["usage_before"] for r in rs)
        after = [r["usage_after"] for r in rs]
        usage = f"{before:.0f}% -> {statistics.median(after):.0f}%"
        kept = sum(r["in_use_survived"] for r in rs)
        print(f"{tool:<7} {len(rs):>4} {len(times):>4}/{len(rs):<2} {fmt_ms(times):>20} {usage:>11}"
              f" {fmt_mib([r['hwm_kib'] for r in rs]):>24}"
              f" {fmt_mib([r['tree_rss_kib_max'] for r in rs]):>24} {kept:>6}/{len(rs):<4}")
    print(f"\nsteady state (the run that stayed {idle} s after reaching the target):")
    for tool in tools:
        for r in rows:
            if r["tool"] != tool or not r.get("rss_kib_after_idle") or r["idle_s"] < 10:
                continue
            parts = [f"VmRSS {r['rss_kib_after_idle'] / 1024:.1f} MiB"]
            split = r.get("rss_split_after_idle") or {}
            if split:
                parts[0] += (f" ({split.get('RssAnon', 0) / 1024:.1f} anon"
                             f" + {split.get('RssFile', 0) / 1024:.1f} file)")
            parts.append(f"VmHWM {r['hwm_kib'] / 1024:.1f} MiB (at target {r['hwm_kib_at_target'] / 1024:.1f})")
            if r.get("probe") is not None:
                parts.append(f"/metrics answered {r['probe']}")
            if r.get("gc_runs_at_end"):
                runs = ", ".join(f"{k} {v}" for k, v in sorted(r["gc_runs_at_end"].items()))
                parts.append(f"GC passes by then: {runs}")
            parts.append(f"images {r['images_before']} -> {r['images_after']}")
            print(f"  {tool:<7} " + ", ".join(parts))
    bad = [r for r in rows if r["exited_early"]]
    for r in bad:
        print(f"  note: {r['tool']} run {r['run']} exited before the end (code {r['exit_code']})")


if __name__ == "__main__":
    main()
