#!/usr/bin/env python3
"""Write a `docker save`-format archive (docker-archive) of many images to stdout, for
`docker load`: much faster than one `docker build` per image.

Every image is FROM-scratch-like: a busybox layer (/bin/busybox, shared by all images, stored
once in the archive) plus, unless --no-unique-layer, a layer of its own holding one file of
--bytes bytes (random, so nothing can deduplicate or compress it). Each image gets a distinct
config (its index is in a label), hence a distinct image ID, even without a layer of its own.
With --bases B --base-layers K, image N also stands on base N % B: K small layers that every
image on that base shares (between busybox and its own layers); --own-layers M gives each image
M layers of its own (the first of --bytes bytes, the others of 512 bytes).

    mkimages.py --count 300 --prefix bench/img --bytes 1024 | docker load -q
    mkimages.py --count 6 --prefix app/old --bytes 17000000 --start 1 | docker load -q
    mkimages.py --count 1000 --bases 10 --base-layers 4 --own-layers 5 | docker load -q

Tags are PREFIX:N for N in [start, start+count).
"""

import argparse
import hashlib
import io
import json
import os
import sys
import tarfile

BUSYBOX = os.environ.get("BUSYBOX", "/bin/busybox")
CREATED = "2026-01-01T00:00:00Z"


def tar_bytes(files):
    """An uncompressed tar of (path, bytes, mode) entries, deterministic."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = set()
        for path, data, mode in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d and d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Archive:
    """Streams a docker-archive (tar) to a binary file object."""

    def __init__(self, out):
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)

    def add(self, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o644
        self.tar.addfile(info, io.BytesIO(data))

    def close(self):
        self.tar.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--prefix", default="bench/img", help="repository of the tags (PREFIX:N)")
    p.add_argument("--start", type=int, default=0, help="first N")
    p.add_argument("--bytes", type=int, default=1024, help="size of each image's own file")
    p.add_argument("--no-unique-layer", action="store_true",
                   help="only the shared busybox layer; images differ by config only")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE on every image")
    p.add_argument("--bases", type=int, default=0, help="bases the images stand on")
    p.add_argument("--base-layers", type=int, default=0, help="layers of each base")
    p.add_argument("--own-layers", type=int, default=1, help="layers of each image's own")
    args = p.parse_args()

    with open(BUSYBOX, "rb") as f:
        busybox = tar_bytes([("bin/busybox", f.read(), 0o755)])
    bb_diff = "sha256:" + hashlib.sha256(busybox).hexdigest()
    bb_path = bb_diff[7:] + "/layer.tar"

    out = Archive(sys.stdout.buffer)
    out.add(bb_path, busybox)

    def layer(name, data):
        """Adds a layer of one file to the archive; returns its path and diff ID."""
        tar = tar_bytes([(name, data, 0o644)])
        diff = "sha256:" + hashlib.sha256(tar).hexdigest()
        path = diff[7:] + "/layer.tar"
        out.add(path, tar)
        return path, diff

    bases = [
        [layer(f"base/{b}/{k}", f"base {b} layer {k}\n".encode() + os.urandom(512))
         for k in range(args.base_layers)]
        for b in range(args.bases)
    ]
    manifest = []
    for n in range(args.start, args.start + args.count):
        tag = f"{args.prefix}:{n}"
        layers = [bb_path]
        diff_ids = [bb_diff]
        history = [{"created": CREATED, "created_by": "COPY busybox /bin/busybox"}]
        for path, diff in bases[n % len(bases)] if bases else []:
            layers.append(path)
            diff_ids.append(diff)
            history.append({"created": CREATED, "created_by": "COPY base /base"})
        own = 0 if args.no_unique_layer else args.own_layers
        for k in range(own):
            # A unique header line, then random bytes.
            size = args.bytes if k == 0 else 512
            data = (f"{tag} {k}\n".encode() + os.urandom(max(size, 0)))[: max(size, 1)]
            path, diff = layer(f"data/{args.prefix.replace('/', '-')}-{n}-{k}", data)
            layers.append(path)
            diff_ids.append(diff)
            history.append({"created": CREATED, "created_by": f"COPY data /data ({n}, {k})"})
        labels = {"swarmkeeper.bench.image": tag}
        for kv in args.label:
            k, _, v = kv.partition("=")
            labels[k] = v
        config = {
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": {"Cmd": ["/bin/busybox", "sh"], "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        }
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
        out.add(config_name, config_bytes)
        manifest.append({"Config": config_name, "RepoTags": [tag], "Layers": layers})
    out.add("manifest.json", json.dumps(manifest).encode())
    out.close()


if __name__ == "__main__":
    main()
