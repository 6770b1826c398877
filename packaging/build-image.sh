#!/usr/bin/env bash
# Builds the swarmkeeper container image: `FROM scratch` with the statically linked binary.
#
#   packaging/build-image.sh [--push] [--binary PATH] [TAG]
#   packaging/build-image.sh --binary-only      only build and check the static binary
#
# TAG defaults to swarmkeeper:VERSION (the workspace version). The image is built with the
# classic builder on the engine the docker CLI talks to (DOCKER_HOST, like docker itself), so
# `DOCKER_HOST=$(lab/lab.sh socket manager) packaging/build-image.sh --push REGISTRY/swarmkeeper:dev`
# builds it on the lab's manager and pushes it to the lab's registry.
#
# Steps: build the binary (unless --binary names one):
#   RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' cargo build --release \
#       --target x86_64-unknown-linux-gnu -p swarmkeeper-cli
# with CARGO_TARGET_DIR=target/static (its own folder: no lock or rebuild fights with the
# debug builds; SWARMKEEPER_STATIC_TARGET_DIR overrides it). Non-PIE: a static-PIE binary
# rewrites its 370 KiB of relocated pointers at every start (0.5 MiB of relocations read, the
# pages they touch made private), 0.9 MiB of the agent's 10 MiB budget (docs/benchmarks.md,
# "Agent memory with layers"); the binary's own code loses address randomisation, the stack,
# heap and mappings keep it. Then check that it is static (no program interpreter, no shared library); strip
# a copy; `docker build`; run `TAG --version` in the image (proof it runs in scratch); with
# --push, `docker push TAG`. The last line on stdout is TAG, or TAG@sha256:... after a push.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

say() { echo "build-image: $*" >&2; }
die() {
    echo "build-image: error: $*" >&2
    exit 1
}

push='' binary='' tag='' binary_only=''
while [[ $# -gt 0 ]]; do
    case $1 in
    --push) push=1; shift ;;
    --binary-only) binary_only=1; shift ;;
    --binary) binary=${2:?--binary needs a PATH}; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [[ -z $tag ]] || die "one TAG only"; tag=$1; shift ;;
    esac
done
version=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -1)
tag=${tag:-swarmkeeper:$version}

if [[ -z $binary ]]; then
    target_dir=${SWARMKEEPER_STATIC_TARGET_DIR:-$PWD/target/static}
    say "cargo build --release (static, target dir $target_dir)"
    # CARGO_ENCODED_RUSTFLAGS would win over RUSTFLAGS (cargo sets it for build scripts).
    env -u CARGO_ENCODED_RUSTFLAGS -u CARGO_BUILD_RUSTFLAGS \
        CARGO_TARGET_DIR="$target_dir" RUSTFLAGS='-C target-feature=+crt-static -C relocation-model=static' \
        cargo build --release --quiet --target x86_64-unknown-linux-gnu -p swarmkeeper-cli
    binary=$target_dir/x86_64-unknown-linux-gnu/release/swarmkeeper
fi
[[ -x $binary ]] || die "$binary is not an executable"

# Static: no PT_INTERP (program interpreter) and no DT_NEEDED (shared library).
if command -v readelf >/dev/null; then
    if readelf -lW "$binary" | grep -q 'Requesting program interpreter' ||
        readelf -dW "$binary" | grep -q '(NEEDED)'; then
        die "$binary is dynamically linked: $(readelf -dW "$binary" | grep '(NEEDED)' | tr -s ' ' | tr '\n' ' ')"
    fi
elif ! ldd "$binary" 2>&1 | grep -qE 'statically linked|not a dynamic executable'; then
    die "$binary is dynamically linked: $(ldd "$binary" 2>&1 | tr '\n' ' ')"
fi

if [[ -n $binary_only ]]; then
    say "$binary is statically linked ($(stat -c %s "$binary") bytes)"
    echo "$binary"
    exit 0
fi

ctx=$(mktemp -d /tmp/swarmkeeper-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
cp packaging/Dockerfile "$ctx/Dockerfile"
if command -v strip >/dev/null; then
    strip -o "$ctx/swarmkeeper" "$binary"
else
    cp "$binary" "$ctx/swarmkeeper"
fi
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
say "docker build -t $tag (classic builder, engine ${DOCKER_HOST:-unix:///var/run/docker.sock})"
DOCKER_BUILDKIT=0 docker build -q -t "$tag" \
    --label "org.opencontainers.image.title=swarmkeeper" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    --label "org.opencontainers.image.licenses=Apache-2.0" \
    "$ctx" >/dev/null 2> >(grep -v -e 'legacy builder is deprecated' -e 'BuildKit is currently disabled' \
        -e 'environment-variable' -e '^ *$' >&2)

# It must run in an image that holds nothing but itself.
out=$(docker run --rm --network none "$tag" --version 2>&1) || die "the image does not run: $out"
size=$(docker image inspect -f '{{.Size}}' "$tag")
say "$tag: $out, $((size / 1024)) KiB ($(stat -c %s "$ctx/swarmkeeper") bytes of binary)"

if [[ -n $push ]]; then
    say "docker push $tag"
    docker push "$tag" >/dev/null
    digest=$(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$tag" |
        grep -F "${tag%:*}@" | head -1)
    [[ -n $digest ]] || die "no digest for $tag after the push"
    echo "$tag@${digest#*@}"
else
    echo "$tag"
fi
