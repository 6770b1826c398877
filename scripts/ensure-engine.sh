#!/usr/bin/env bash
# Make sure this machine has a Docker Engine that answers on /var/run/docker.sock and is a
# single-node Swarm manager; install and start what is missing. Idempotent: a no-op when
# all is there. Run as root (it only needs root when something must be done).
#
# There is no systemd on these machines: dockerd is started in the background by hand and
# logs to $SWARMKEEPER_DOCKERD_LOG (default /var/log/swarmkeeper-dockerd.log).
#
# Environment:
#   SWARMKEEPER_ADVERTISE_ADDR  address for `docker swarm init --advertise-addr`
#                               (default: let Docker choose; if it cannot, the address of
#                               the default route's interface, else 127.0.0.1)
#   SWARMKEEPER_ENGINE_WAIT     seconds to wait for the engine and the swarm (default 60)
#   SWARMKEEPER_EXTRA_PACKAGES  more Debian packages to install the same way when missing
#                               (scripts/browser-test.sh asks for chromium)
#   PYTHON                      the Python that gets the tests' PyPI packages (default python3)
set -euo pipefail

LOG=${SWARMKEEPER_DOCKERD_LOG:-/var/log/swarmkeeper-dockerd.log}
WAIT=${SWARMKEEPER_ENGINE_WAIT:-60}
SOCK=/var/run/docker.sock
PIDFILE=/var/run/docker.pid
PACKAGES=(docker.io busybox-static iproute2 docker-registry apache2-utils)
# PyPI packages tests need, NAME[EXTRAS]==VERSION (pip installs them when a version differs):
# moto is the AWS emulator of the ECR test; its dependency cryptography signs the registry
# tests' tokens.
PYPI_PACKAGES=("moto[server]==5.2.1")
# python3-aiosmtpd, prometheus-alertmanager and openssl: the alert channels' real receivers in
# crates/notify's tests.
PACKAGES+=(python3-aiosmtpd prometheus-alertmanager openssl)
read -ra EXTRA_PACKAGES <<<"${SWARMKEEPER_EXTRA_PACKAGES:-}"
PACKAGES+=("${EXTRA_PACKAGES[@]}")

say() { echo "ensure-engine: $*" >&2; }
die() { echo "ensure-engine: error: $*" >&2; exit 1; }

need_root() { [[ $(id -u) -eq 0 ]] || die "$1 needs root; run this script as root"; }

installed() { [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]; }

ensure_packages() {
    local missing=() p policy_added=
    for p in "${PACKAGES[@]}"; do
        installed "$p" || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    need_root "installing ${missing[*]}"
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the packages' maintainer scripts from starting services: this script starts
    # dockerd itself, the way it wants.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    apt-get update -qq
    apt-get install -y -qq -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null ||
        { [[ -n $policy_added ]] && rm -f /usr/sbin/policy-rc.d; die "apt-get install ${missing[*]} failed"; }
    [[ -n $policy_added ]] && rm -f /usr/sbin/policy-rc.d
    return 0
}

ensure_python_packages() {
    local python=${PYTHON:-python3} p name want have missing=()
    command -v "$python" >/dev/null || die "$python is missing (the tests' PyPI packages need it)"
    for p in "${PYPI_PACKAGES[@]}"; do
        name=${p%%[[=]*} want=${p##*==}
        have=$("$python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$name" 2>/dev/null || true)
        [[ $have == "$want" ]] || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    say "pip install ${missing[*]}"
    "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        "${missing[@]}" </dev/null || die "pip install ${missing[*]} failed"
}

engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# pid of the dockerd named by the pidfile, if that process is alive and is dockerd.
pidfile_dockerd() {
    local pid
    [[ -f $PIDFILE ]] || return 1
    pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || return 1
    echo "$pid"
}

wait_for_engine() { # wait_for_engine PID
    local pid=$1 end=$((SECONDS + WAIT))
    until engine_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$LOG" >&2 2>/dev/null || true
            die "dockerd (pid $pid) exited; see $LOG"
        fi
        if ((SECONDS >= end)); then
            tail -n 20 "$LOG" >&2 2>/dev/null || true
            die "dockerd (pid $pid) does not answer on $SOCK after $WAIT s; see $LOG"
        fi
        sleep 0.2
    done
}

ensure_dockerd() {
    local pid cpid fd
    if engine_answers; then
        return 0
    fi
    if pid=$(pidfile_dockerd); then
        say "dockerd (pid $pid) is running but does not answer yet; waiting"
        wait_for_engine "$pid"
        return 0
    fi
    need_root "starting dockerd"
    # A dockerd killed earlier leaves its pidfile (dockerd refuses to start while the pid
    # in it exists), its socket, and containerd's pidfile; remove the stale ones.
    if [[ -e $PIDFILE ]]; then
        say "removing stale $PIDFILE (no dockerd runs with pid $(cat "$PIDFILE" 2>/dev/null))"
        rm -f "$PIDFILE"
    fi
    [[ -S $SOCK ]] && rm -f "$SOCK"
    cpid=/var/run/docker/containerd/containerd.pid
    if [[ -f $cpid ]]; then
        pid=$(cat "$cpid" 2>/dev/null || true)
        if [[ ! $pid =~ ^[0-9]+$ || $(cat "/proc/$pid/comm" 2>/dev/null) != containerd ]]; then
            rm -f "$cpid"
        fi
    fi
    command -v dockerd >/dev/null || die "dockerd is not installed"
    mkdir -p "$(dirname "$LOG")"
    say "starting dockerd (log: $LOG)"
    # Detached from this script: its own session, no inherited fds (a caller's pipe kept
    # open by dockerd would make the caller wait forever).
    (
        for fd in "/proc/$BASHPID/fd/"*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-"; fi
        done
        exec setsid dockerd </dev/null >>"$LOG" 2>&1
    ) &
    pid=$!
    wait_for_engine "$pid"
    say "dockerd is up (pid $pid)"
}

swarm_state() { docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}' 2>/dev/null; }

# The address Docker would not pick by itself: the default route's interface's first
# global IPv4 address, else 127.0.0.1.
fallback_addr() {
    local dev addr
    dev=$(ip -4 route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
    if [[ -n $dev ]]; then
        addr=$(ip -4 -o addr show dev "$dev" scope global 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }')
        [[ -n $addr ]] && { echo "$addr"; return 0; }
    fi
    echo 127.0.0.1
}

swarm_init() {
    local out addr
    if [[ -n ${SWARMKEEPER_ADVERTISE_ADDR:-} ]]; then
        say "docker swarm init --advertise-addr $SWARMKEEPER_ADVERTISE_ADDR"
        docker swarm init --advertise-addr "$SWARMKEEPER_ADVERTISE_ADDR" >/dev/null
        return 0
    fi
    if out=$(docker swarm init 2>&1); then
        say "docker swarm init: done"
        return 0
    fi
    case $out in
    *"could not choose an IP address"* | *"could not find"*"address"* | *"must specify"*"advertise"* | *"advertise address"*)
        addr=$(fallback_addr)
        say "docker swarm init could not choose an address; using --advertise-addr $addr"
        docker swarm init --advertise-addr "$addr" >/dev/null
        ;;
    *) die "docker swarm init failed: $out" ;;
    esac
}

ensure_swarm() {
    local state end
    end=$((SECONDS + WAIT))
    while :; do
        state=$(swarm_state) || die "docker info failed"
        case $state in
        "active true")
            # A restarted manager needs a few seconds to elect itself leader.
            if timeout 10 docker node ls -q >/dev/null 2>&1; then
                return 0
            fi
            ;;
        "inactive "*)
            swarm_init
            continue
            ;;
        "active false")
            say "this engine is a swarm worker, not a manager; leaving that swarm"
            docker swarm leave --force >/dev/null
            continue
            ;;
        "error "*)
            say "swarm state is 'error' (e.g. its address is gone); leaving and starting anew"
            docker swarm leave --force >/dev/null
            continue
            ;;
        "locked "*) die "the swarm is locked (autolock); unlock it with 'docker swarm unlock'" ;;
        esac
        # pending, or active without a leader yet
        if ((SECONDS >= end)); then
            die "swarm not ready after $WAIT s (state: $state): $(docker node ls 2>&1 | tail -1)"
        fi
        sleep 0.5
    done
}

main() {
    # This script is about the machine's own engine, whatever the caller's environment.
    export DOCKER_HOST=unix://$SOCK
    unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
    # One run at a time (parallel test runs on a fresh machine).
    local lock=/run/swarmkeeper-ensure-engine.lock
    [[ -w /run ]] || lock=/tmp/swarmkeeper-ensure-engine.$(id -u).lock
    exec 7>"$lock"
    flock 7
    ensure_packages
    ensure_python_packages
    ensure_dockerd
    ensure_swarm
    exec 7>&-
    say "engine $(docker version --format '{{.Server.Version}}') on $SOCK, swarm manager $(docker info --format '{{.Swarm.NodeAddr}}')"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
