#!/usr/bin/env bash
# A second, throwaway Docker daemon whose data root is a small tmpfs: a "small-disk
# node" for tests that fill a disk (see lab/README.md).
#
#   lab/small-engine.sh up NAME SIZE [DOCKERD_ARG...]   start it (idempotent); last line
#                                                      of stdout is its socket, unix://...
#   lab/small-engine.sh down NAME...                   stop it and remove every trace
#   lab/small-engine.sh socket NAME                    print the socket if it answers
#   lab/small-engine.sh list                           print the names of labs that exist
#
# Each lab lives in its own network namespace (sklab-NAME, a veth pair with link-local
# addresses 169.254.I.1 host side / 169.254.I.2 inside) and UTS namespace (hostname
# lab-NAME), with its containers under the cgroup /swarmkeeper-lab-NAME. All its files are
# under /run/swarmkeeper-lab/NAME. It never touches the main engine (/var/run/docker.sock).
# Runs as root.
set -euo pipefail
# shellcheck source=lab/lib.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

ROOT=/run/swarmkeeper-lab
WAIT_SECS=${SWARMKEEPER_LAB_WAIT_SECS:-60}

die() { echo "small-engine: $*" >&2; exit 1; }
trap 'echo "small-engine: line $LINENO: \"$BASH_COMMAND\" failed (exit $?)" >&2' ERR
note() { echo "small-engine: $*" >&2; }

usage() {
    sed -n '4,9p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

check_name() {
    [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$ ]] ||
        die "bad NAME '$1': use 1-40 of [A-Za-z0-9_.-], starting with a letter or digit"
}

# --- per-lab names -----------------------------------------------------------------
set_lab_vars() {
    NAME=$1
    DIR=$ROOT/$NAME
    DATA=$DIR/data
    EXEC=$DIR/exec
    SOCK=$DIR/docker.sock
    PIDFILE=$DIR/docker.pid
    LOG=$DIR/dockerd.log
    NETNS=sklab-$NAME
    NETNS_FILE=/var/run/netns/$NETNS
    CGROUP=swarmkeeper-lab-$NAME
    HOSTNAME_IN=lab-$NAME
}

lab_docker() { timeout 10 docker -H "unix://$SOCK" "$@"; }

answers() { socket_answers "$SOCK"; }

# The dockerd pid of this lab if the process is alive and really is our daemon.
daemon_pid() {
    local pid
    pid=$(dockerd_pid "$PIDFILE") || return 1
    grep -qaF -- "$PIDFILE" "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

# Every process that belongs to this lab: in its netns, in its cgroup, or naming its
# folder on its command line (dockerd, containerd, shims).
lab_pids() {
    {
        namespace_pids "$NETNS" "$CGROUP"
        grep -lsaF -- "$DIR/" /proc/[0-9]*/cmdline | cut -d/ -f3
    } | grep -E '^[0-9]+$' | grep -vx "$$" | sort -un || true
}

# A failed start leaves nothing behind but a copy of the daemon's log.
start_failed() {
    local saved=/tmp/swarmkeeper-lab-$NAME.dockerd.log
    cp "$LOG" "$saved" 2>/dev/null || true
    tail -n 20 "$saved" >&2 || true
    teardown
    die "$1; the log above is kept in $saved"
}

exists() {
    [[ -e $DIR || -e $NETNS_FILE ]] && return 0
    [[ -n $(mounts_under "$DIR") || -n $(cgroup_dirs "$CGROUP") ]] && return 0
    return 1
}

# --- down ------------------------------------------------------------------------
teardown() {
    local pid ids idx
    if pid=$(daemon_pid); then
        if answers; then
            # Stopping containers through the daemon's shutdown waits 10 s per container
            # that ignores SIGTERM; kill them first, the lab's data is thrown away anyway.
            ids=$(lab_docker ps -q 2>/dev/null || true)
            if [[ -n $ids ]]; then
                # shellcheck disable=SC2086
                lab_docker kill $ids >/dev/null 2>&1 || true
            fi
        fi
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone 20 "$pid"; then
            note "dockerd $pid of lab $NAME did not stop in 20 s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone 5 "$pid" || true
        fi
    fi
    # Whatever is left (containerd, shims, containers of a daemon that was killed).
    # shellcheck disable=SC2046
    kill_all "lab $NAME" $(lab_pids)
    unmount_under "$DIR"
    idx=
    [[ -f $DIR/index ]] && idx=$(cat "$DIR/index" 2>/dev/null || true)
    delete_netns "$NETNS"
    if [[ -n $idx ]] && ip link show "sklab$idx" >/dev/null 2>&1; then
        ip link del "sklab$idx" 2>/dev/null || true
    fi
    remove_cgroups "$CGROUP"
    if [[ -n $(mounts_under "$DIR") ]]; then
        die "still mounted under $DIR: $(mounts_under "$DIR" | tr '\n' ' ')"
    fi
    rm -rf "$DIR"
    [[ -z $(cgroup_dirs "$CGROUP") ]] || note "cgroup $(cgroup_dirs "$CGROUP" | head -1) could not be removed"
}

cmd_down() {
    local n
    [[ $# -ge 1 ]] || usage
    for n in "$@"; do check_name "$n"; done
    mkdir -p "$ROOT/.locks"
    for n in "$@"; do
        set_lab_vars "$n"
        exec 8>"$ROOT/.locks/$NAME"
        flock 8
        if exists; then
            teardown
            note "lab $NAME is down"
        else
            note "lab $NAME was not there"
        fi
        exec 8>&-
    done
}

# --- up --------------------------------------------------------------------------
allocate_index() {
    local i used
    exec 9>"$ROOT/.locks/.alloc"
    flock 9
    used=$(cat "$ROOT"/*/index 2>/dev/null || true)
    for i in $(seq 1 254); do
        grep -qx "$i" <<<"$used" && continue
        ip link show "sklab$i" >/dev/null 2>&1 && continue
        echo "$i" >"$DIR/index"
        exec 9>&-
        return 0
    done
    exec 9>&-
    die "no free lab index (254 labs exist?)"
}

start_lab() { # start_lab SIZE ARGS_LINE [DOCKERD_ARG...]
    local size=$1 args_line=$2 idx host_if launched end
    shift 2
    mkdir -p "$DIR" "$DATA" "$EXEC"
    chmod 0711 "$DIR"
    allocate_index
    idx=$(cat "$DIR/index")
    host_if=sklab$idx
    printf '%s\n' "$args_line" >"$DIR/args"

    # Network namespace with a veth pair of our own (no route out: the lab needs none).
    ip netns add "$NETNS"
    ip link add "$host_if" type veth peer name "${host_if}n"
    ip link set "${host_if}n" netns "$NETNS"
    ip addr add "169.254.$idx.1/30" dev "$host_if"
    ip link set "$host_if" up
    ip -n "$NETNS" link set lo up
    ip -n "$NETNS" link set "${host_if}n" name eth0
    ip -n "$NETNS" addr add "169.254.$idx.2/30" dev eth0
    ip -n "$NETNS" link set eth0 up
    echo "169.254.$idx.1" >"$DIR/host-addr"
    echo "169.254.$idx.2" >"$DIR/addr"

    mount -t tmpfs -o "size=$size,mode=0710" "$CGROUP" "$DATA"

    # Its own daemon.json, so /etc/docker/daemon.json (the main engine's) never applies,
    # and its own key, so its engine ID differs from the main engine's.
    printf '{\n  "deprecated-key-path": "%s/key.json"\n}\n' "$DIR" >"$DIR/daemon.json"

    # nsenter, not `ip netns exec` (which remounts /sys; dockerd then dies with "Devices
    # cgroup isn't mounted"). unshare --uts gives the daemon its own hostname. Every fd
    # is redirected or closed so that no caller's pipe or lock is held by the daemon.
    (
        close_fds
        # shellcheck disable=SC2016
        exec setsid nsenter --net="$NETNS_FILE" unshare --uts \
            sh -c 'hostname "$1" && shift && exec "$@"' sh "$HOSTNAME_IN" \
            dockerd \
            --config-file "$DIR/daemon.json" \
            --data-root "$DATA" \
            --exec-root "$EXEC" \
            -H "unix://$SOCK" \
            --pidfile "$PIDFILE" \
            --iptables=false --ip-masq=false --bridge=none \
            --cgroup-parent "/$CGROUP" \
            "$@" \
            </dev/null >"$LOG" 2>&1
    ) &
    launched=$!

    end=$((SECONDS + WAIT_SECS))
    until answers; do
        if ! alive "$launched"; then
            start_failed "dockerd of lab $NAME exited"
        fi
        if ((SECONDS >= end)); then
            start_failed "dockerd of lab $NAME does not answer on $SOCK after $WAIT_SECS s"
        fi
        sleep 0.1
    done
    note "lab $NAME up: data root $DATA (tmpfs $size), netns $NETNS, address 169.254.$idx.2, hostname $HOSTNAME_IN"
}

cmd_up() {
    [[ $# -ge 2 ]] || usage
    local name=$1 size=$2 args_line cur_size
    shift 2
    check_name "$name"
    [[ $size =~ ^[0-9]+[kKmMgG%]?$ ]] || die "bad SIZE '$size': use e.g. 256m, 1g"
    [[ $(id -u) -eq 0 ]] || die "must run as root"
    command -v dockerd >/dev/null || die "dockerd not installed (run scripts/ensure-engine.sh)"
    set_lab_vars "$name"
    args_line="$*"
    mkdir -p "$ROOT/.locks"
    exec 8>"$ROOT/.locks/$NAME"
    flock 8

    if daemon_pid >/dev/null && answers && [[ -n $(mounts_under "$DIR") ]]; then
        if [[ $(cat "$DIR/args" 2>/dev/null) != "$args_line" ]]; then
            note "lab $NAME runs with other dockerd arguments; restarting it"
            teardown
        else
            cur_size=$(findmnt -n -o OPTIONS "$DATA" | tr ',' '\n' | sed -n 's/^size=//p')
            if ! mount -o "remount,size=$size" "$DATA" 2>/dev/null; then
                die "lab $NAME is up with size=$cur_size and cannot be resized to $size"
            fi
            note "lab $NAME already up"
            exec 8>&-
            echo "unix://$SOCK"
            return 0
        fi
    elif exists; then
        note "cleaning up stale state of lab $NAME"
        teardown
    fi

    start_lab "$size" "$args_line" "$@"
    exec 8>&-
    echo "unix://$SOCK"
}

cmd_socket() {
    [[ $# -eq 1 ]] || usage
    check_name "$1"
    set_lab_vars "$1"
    answers || die "lab $NAME is not up"
    echo "unix://$SOCK"
}

cmd_list() { list_dirs "$ROOT"; }

main() {
    [[ $# -ge 1 ]] || usage
    local cmd=$1
    shift
    case $cmd in
        up) cmd_up "$@" ;;
        down) cmd_down "$@" ;;
        socket) cmd_socket "$@" ;;
        list) cmd_list "$@" ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
