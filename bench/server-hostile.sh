#!/usr/bin/env bash
# The dashboard under hostile traffic (issue 11): peak resident memory of `swarmkeeper server`
# and whether it keeps answering, under the stack's memory limit, through
#   - 200 concurrent wrong logins (twice),
#   - 100 stalled 4 MiB agent report uploads (anonymous, and with the report secret),
#   - 3,000 half-open connections.
# Each attack gets a fresh server on a free 127.0.0.1 port with a temporary state dir, started
# inside a cgroup (v1 memory controller) limited to MEMORY_LIMIT, as deploy/swarmkeeper.yml
# limits it; the attacks come from bench/lib/server_hostile.py, which also sends GET /healthz
# every 200 ms and reads the server's VmHWM from /proc and the cgroup's peak and OOM kills.
# With BEFORE=/path/to/older/swarmkeeper the same attacks run against that binary too.
#
# Usage: bench/server-hostile.sh        (as root; needs no Docker engine beyond the default
#                                        socket's existence)
# Env:   SWARMKEEPER (default: target/bench/release/swarmkeeper, built when missing), BEFORE (a
#        binary to compare with, e.g. one built from main), MEMORY_LIMIT (128M; empty: no
#        cgroup, /proc figures only), ATTACKS ("logins uploads uploads-auth halfopen"),
#        BENCH_KEEP (1: keep the temp folder with the server logs and raw JSON)
# Needs: python3, curl. Takes: about 2 minutes per binary.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

MEMORY_LIMIT=${MEMORY_LIMIT-128M}
ATTACKS=${ATTACKS:-logins uploads uploads-auth halfopen}
PY=$BENCH_LIB/server_hostile.py

need_root
need_cmd python3 "apt-get install -y python3"
need_cmd curl "apt-get install -y curl"

SK=$(swarmkeeper_bin)
BINARIES=("$SK")
if [[ -n ${BEFORE:-} ]]; then
    [[ -x $BEFORE ]] || die "BEFORE=$BEFORE is not an executable"
    BINARIES+=("$BEFORE")
fi

CGROUP=
SERVER_PID=
stop_server() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
    if [[ -n $CGROUP && -d $CGROUP ]]; then
        rmdir "$CGROUP" 2>/dev/null || say "could not remove $CGROUP"
    fi
    CGROUP=
}
finish() {
    local rc=$?
    trap - EXIT INT TERM
    stop_server
    (exit "$rc")
    cleanup
}
trap finish EXIT
trap 'exit 130' INT TERM
bench_tmp
T=$BENCH_TMP
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
SECRET=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s' "$SECRET" >"$T/secret"

# start_server BINARY NAME: a fresh server in its own cgroup; sets SERVER_PID, PORT, CGROUP.
start_server() {
    local bin=$1 name=$2
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$T/$name"
    if [[ -n $MEMORY_LIMIT ]]; then
        [[ -d /sys/fs/cgroup/memory ]] || die "no cgroup v1 memory controller: run with MEMORY_LIMIT="
        CGROUP=/sys/fs/cgroup/memory/swarmkeeper-bench-$$-$name
        mkdir "$CGROUP"
        echo "$MEMORY_LIMIT" >"$CGROUP/memory.limit_in_bytes"
        # No swap to escape to, as in a container with a memory limit and no swap.
        echo 0 >"$CGROUP/memory.swappiness" 2>/dev/null || true
    fi
    # The subshell joins the cgroup, then becomes the server.
    (
        [[ -z $CGROUP ]] || echo "$BASHPID" >"$CGROUP/cgroup.procs"
        exec env -u SWARMKEEPER_ADMIN_PASSWORD_FILE -u SWARMKEEPER_REPORT_SECRET_FILE \
            SWARMKEEPER_ADMIN_PASSWORD="$PASSWORD" \
            "$bin" server --listen "127.0.0.1:$PORT" --state-dir "$T/$name/state" \
            --admin-password-file "$T/no-such-file" --report-secret-file "$T/secret" \
            >"$T/$name/server.log" 2>&1
    ) &
    SERVER_PID=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$T/$name/server.log" >&2; die "the server exited"; }
        sleep 0.1
    done
    # One wrong login first: the start includes a password check's memory.
    curl -s -o /dev/null -d 'username=admin&password=wrong+password+long+enough&next=/' \
        "http://127.0.0.1:$PORT/login"
}

for bin in "${BINARIES[@]}"; do
    label=after
    [[ $bin == "${BEFORE:-}" ]] && label=before
    for attack in $ATTACKS; do
        say "$label: $attack"
        start_server "$bin" "$label-$attack"
        python3 "$PY" "$attack" --port "$PORT" --pid "$SERVER_PID" --secret "$SECRET" \
            ${CGROUP:+--cgroup "$CGROUP"} >"$T/$label-$attack.json"
        stop_server
    done
done

echo
echo "== server-hostile =="
echo "machine: $(machine_line), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for bin in "${BINARIES[@]}"; do
    echo "binary:  $bin ($("$bin" --version))"
done
echo "limit:   ${MEMORY_LIMIT:-none} (cgroup v1 memory.limit_in_bytes, no swap); bench scripts from $(source_line)"
echo
python3 - "$T" $ATTACKS <<'EOF'
import glob, json, os, sys

folder, attacks = sys.argv[1], sys.argv[2:]
mib = lambda kib: "-" if kib is None else f"{kib / 1024:.1f}"
print(f"| binary | attack | peak RSS before | peak RSS | cgroup peak | OOM kills | alive | /healthz ok/failed (slowest) | answers |")
print("|---|---|---|---|---|---|---|---|---|")
for label in ("after", "before"):
    for attack in attacks:
        path = os.path.join(folder, f"{label}-{attack}.json")
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        cg = r.get("cgroup_peak_bytes")
        cg = "-" if cg is None else f"{cg / 1048576:.1f}"
        extra = {k: v for k, v in r.items() if k in ("answers", "opened", "refused_at_connect",
                 "login_page_during", "closed_by_server_within_12s", "error")}
        print(f"| {label} | {attack} | {mib(r['peak_rss_before_kib'])} MiB | {mib(r['peak_rss_kib'])} MiB "
              f"| {cg} MiB | {r.get('cgroup_oom_kills', '-')} | {r['alive']} "
              f"| {r['healthz_ok']}/{r['healthz_failed']} ({r['healthz_slowest_s']} s) | {json.dumps(extra)} |")
EOF
