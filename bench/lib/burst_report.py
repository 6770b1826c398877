#!/usr/bin/env python3
"""Print agent_burst.py results: the agent's memory around each burst, its catch-up time and
CPU, and the engine's CPU with and without the agent.

    burst_report.py AGENT.json [BASELINE.json]
"""

import json
import sys


def mib(kib):
    return f"{kib / 1024:.1f}"


def main():
    r = json.load(open(sys.argv[1]))
    base = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else None
    for ag in r["agents"]:
        report(r, ag)
    if base:
        bb = base["bursts"][0]
        print(f"\nthe same burst with no agent running: sent in {bb['burst_s']:.1f} s, engine (dockerd) CPU"
              f" {bb['engine_cpu_s_during_burst']:.1f} s, {bb['engine_events_total']} events")


def report(r, ag):
    b0 = ag["bursts"][0]
    print(f"\n-- agent {ag['binary']}")
    print(f"node: {r['images']} images; each burst: {b0['engine_events_total']} engine events "
          + ", ".join(f"{k} {v}" for k, v in b0["engine_events"].items()))
    print(f"agent startup pass with {r['images']} images: {ag['startup_pass_s'] * 1e3:.0f} ms (to the"
          f" first /metrics that counts it); before any burst: VmRSS {mib(ag['before']['VmRSS'])} MiB,"
          f" VmHWM {mib(ag['before']['VmHWM'])} MiB")
    head = (f"{'burst':>5} {'sent in':>8} {'VmRSS before':>12} {'right after':>11} {'after settle':>12}"
            f" {'VmHWM':>6} {'RssAnon after':>13} {'caught up':>10} {'idle after':>10}"
            f" {'agent CPU':>9} {'GC passes':>9} {'engine CPU':>10}")
    print("MiB / seconds after the burst's last event; 'caught up' = the marker's use in the state DB")
    print(head)
    print("-" * len(head))
    for i, b in enumerate(ag["bursts"], 1):
        passes = sum(b["gc_runs"].values())
        kinds = ",".join(f"{k}" for k, v in b["gc_runs"].items() if v)
        cu = b["caught_up_s"]
        idle = b["cpu_idle_after_s"]
        print(f"{i:>5} {b['burst_s']:>7.1f}s {mib(b['before']['VmRSS']):>12} {mib(b['right_after']['VmRSS']):>11}"
              f" {mib(b['after_settle']['VmRSS']):>12} {mib(b['after_settle']['VmHWM']):>6}"
              f" {mib(b['after_settle']['RssAnon']):>13}"
              f" {(f'{cu:.3f}s' if cu is not None else 'never'):>10}"
              f" {(f'{idle:.3f}s' if idle is not None else 'never'):>10}"
              f" {b['agent_cpu_s']:>8.2f}s {passes:>4} {kinds:<4} {b.get('engine_cpu_s_during_burst', 0):>9.1f}s")
    if "smaps" in ag:
        end = ag["end"]
        print(f"at the end: VmHWM {mib(end['VmHWM'])} MiB, VmRSS {mib(end['VmRSS'])} MiB"
              f" (RssAnon {mib(end['RssAnon'])}, RssFile {mib(end['RssFile'])}); by mapping (/proc/PID/smaps):")
        for kind, v in sorted(ag["smaps"].items(), key=lambda kv: -kv[1]["Rss"]):
            print(f"  {kind:<18} {mib(v['Rss']):>6} MiB resident, {mib(v['Anonymous']):>6} of it anonymous")
    if "cgroup" in ag:
        cg = ag["cgroup"]
        print(f"container memory cgroup: peak {mib(cg.get('peak', 0) / 1024)} MiB, now"
              f" {mib(cg.get('current', 0) / 1024)} MiB (page cache included; the binary's pages"
              f" are charged to whoever read them first)")
    print(f"agent exit code after SIGTERM: {ag.get('agent_exit')}")


if __name__ == "__main__":
    main()
