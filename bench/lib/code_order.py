#!/usr/bin/env python3
"""The functions the agent ran, as a symbol ordering file for the linker.

    code_order.py --binary BIN --pages PAGES [--binary BIN2 --pages PAGES2 ...] > ORDER

PAGES lists the file offsets of the code pages an agent of BIN had resident (one per line,
`agent_burst.py --code-pages`, taken with the code registered with a userfaultfd so that a
page is resident only if the agent ran it). BIN must have its symbol table (the static
release binary before `strip`). Every function that overlaps such a page is printed, once,
by its mangled name, sorted (the list's order does not matter, its functions all lie
together; sorted, a regenerated list's diff shows what changed): a page of code holds several
small functions, so this lists the agent's functions and their page neighbours.

With several runs (of the same binary or of builds linked with earlier lists), a function is
listed if any run had it on a resident page: one run does not take every path (which images a
pass reads, which engine answers are errors), and a function the list misses costs 64 KiB of
mapped code around it where fault-around works. Prints a summary to stderr.
"""

import argparse
import subprocess
import sys


def exec_segments(binary):
    """(vaddr, offset, filesz) of each executable PT_LOAD segment."""
    out = []
    text = subprocess.run(["readelf", "-lW", binary], check=True, capture_output=True,
                          text=True).stdout
    for line in text.splitlines():
        f = line.split()
        if f and f[0] == "LOAD" and "E" in f[6:-1]:
            out.append((int(f[2], 16), int(f[1], 16), int(f[4], 16)))
    return out


def functions(binary):
    """(file offset, size, mangled name) of every sized function symbol in code."""
    segments = exec_segments(binary)
    text = subprocess.run(["nm", "-S", "-n", "--defined-only", binary], check=True,
                          capture_output=True, text=True).stdout
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) != 4 or f[2] not in "tTwW":
            continue
        addr, size = int(f[0], 16), int(f[1], 16)
        if size == 0:
            continue
        for vaddr, offset, filesz in segments:
            if vaddr <= addr < vaddr + filesz:
                out.append((addr - vaddr + offset, size, f[3]))
                break
    return out


def hot(binary, pages_file, page=4096):
    pages = {int(x) for x in open(pages_file) if x.strip()}
    names, hot_bytes = set(), 0
    for off, size, name in functions(binary):
        first, last = off // page, (off + size - 1) // page
        if name not in names and any(p * page in pages for p in range(first, last + 1)):
            names.add(name)
            hot_bytes += size
    return names, hot_bytes, len(pages)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", action="append", required=True)
    p.add_argument("--pages", action="append", required=True)
    a = p.parse_args()
    if len(a.binary) != len(a.pages):
        sys.exit("give one --pages per --binary")
    runs = [hot(b, pg) for b, pg in zip(a.binary, a.pages)]
    keep = set()
    for names, _, _ in runs:
        keep |= names
    for (names, size, npages), b in zip(runs, a.binary):
        print(f"code_order: {b}: {npages} resident code pages ({npages * 4} KiB), "
              f"{len(names)} functions on them ({size / 1024:.0f} KiB)", file=sys.stderr)
    kept = sorted(keep)
    print(f"code_order: {len(kept)} functions in all", file=sys.stderr)
    sys.stdout.writelines(n + "\n" for n in kept)


if __name__ == "__main__":
    main()
