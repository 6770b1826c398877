#!/usr/bin/env python3
"""Create containers on the engine at $DOCKER_HOST from images PREFIX:0..PREFIX:N-1:
EXITED containers that ran `busybox true`, CREATED ones never started, RUNNING ones that
`sleep`. Container i uses image (i * 7) mod N, so uses are spread over the images.

    containers.py --prefix bench/img --images 300 --exited 60 --created 35 --running 5
"""

import argparse
import concurrent.futures
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine import Engine  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--prefix", required=True)
    p.add_argument("--images", type=int, required=True)
    p.add_argument("--exited", type=int, default=0)
    p.add_argument("--created", type=int, default=0)
    p.add_argument("--running", type=int, default=0)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args()

    jobs = ["exited"] * args.exited + ["created"] * args.created + ["running"] * args.running

    def one(i_kind):
        i, kind = i_kind
        e = Engine()
        try:
            image = f"{args.prefix}:{(i * 7) % args.images}"
            labels = {"swarmkeeper.bench": kind}
            if kind == "running":
                cid = e.create(image, ["/bin/busybox", "sleep", "3600"], labels)
                e.start(cid)
            elif kind == "exited":
                cid = e.create(image, ["/bin/busybox", "true"], labels)
                e.start(cid)
                e.wait(cid)
            else:
                e.create(image, ["/bin/busybox", "true"], labels)
        finally:
            e.close()

    with concurrent.futures.ThreadPoolExecutor(args.workers) as pool:
        for _ in pool.map(one, enumerate(jobs)):
            pass


if __name__ == "__main__":
    main()
