#!/usr/bin/env bash
# A Docker Swarm of several nodes on one machine: a manager and N workers, each a dockerd of
# its own in its own network, UTS and mount namespaces, plus a local registry they all pull
# from (see lab/README.md).
#
#   lab/lab.sh up [--name NAME] [--workers N] [--managers N] [--worker-disk SIZE] [--disk NODE=SIZE]...
#                 [--registry-auth USER:PASS] [--registry-notify URL]... [--registry-notify-token TOKEN]
#                                     bring the lab up (idempotent); prints `env` on stdout
#   lab/lab.sh down [--name NAME | --all]      stop it and remove every trace
#   lab/lab.sh env [--name NAME]               KEY=VALUE lines (addresses, sockets, paths)
#   lab/lab.sh status [--name NAME]            nodes, daemons, registry
#   lab/lab.sh list                            names of the labs that exist
#   lab/lab.sh socket [--name NAME] NODE       print unix://... of NODE's daemon
#   lab/lab.sh docker [--name NAME] NODE ARG...    the docker CLI against NODE's daemon
#   lab/lab.sh exec [--name NAME] NODE CMD...      run CMD inside NODE's namespaces
#   lab/lab.sh stop-node|start-node [--name NAME] NODE   stop / start NODE's dockerd
#
# Nodes are `manager`, `worker1` ... `workerN` (hostnames NAME-manager, NAME-worker1, ...;
# node label lab.node=manager|worker1|...). `--worker-disk SIZE` gives worker1 (only) a
# tmpfs of SIZE as its data root; `--disk NODE=SIZE` does the same for any node. Other nodes
# keep their data root in a folder on the host's disk. `--registry-auth` makes the registry
# ask for that user (htpasswd); `--registry-notify` sends its push notifications (the
# distribution `notifications: endpoints:` envelope; pulls and blobs left out) to URL, with
# `Authorization: Bearer TOKEN` when `--registry-notify-token` gives one (a hook token).
# `--managers N` (default 1) has worker1 ... worker(N-1) join as managers too (their names
# stay). The manager carries swarmkeeper.state=true, where deploy/swarmkeeper.yml puts the server.
#
# Addresses: lab number L (0-7) uses 169.254.0.(32L)/27 on a bridge inside the lab's own
# network namespace: .32L+1 is the host (veth skswL) and the registry (port 5000), .32L+2 the
# manager, .32L+2+K worker K. No namespace has a route anywhere else; containers on a node's
# docker_gwbridge reach the lab subnet (registry, host) masqueraded as their node.
# Runs as root. Never touches the host engine (/var/run/docker.sock) or its swarm.
set -euo pipefail
# shellcheck source=lab/lib.sh
. "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"
set -E

ROOT=/run/swarmkeeper-swarm
BULK_ROOT=/var/tmp/swarmkeeper-swarm
WAIT_SECS=${SWARMKEEPER_LAB_WAIT_SECS:-60}
REGISTRY_PORT=5000
MAX_LABS=8

note() { echo "lab: $*" >&2; }
die() {
    echo "lab: error: $*" >&2
    exit 1
}

usage() {
    sed -n '6,18p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# --- small helpers ----------------------------------------------------------------------
check_name() {
    [[ $1 =~ ^[a-z0-9]{1,12}$ ]] || die "bad lab name '$1': use 1-12 of [a-z0-9]"
}

# --- names ------------------------------------------------------------------------------
set_lab() {
    NAME=$1
    LDIR=$ROOT/$NAME
    BULK=$BULK_ROOT/$NAME
    HUB_NS=sksw-$NAME-hub
    IDX=
    [[ -f $LDIR/index ]] && IDX=$(cat "$LDIR/index" 2>/dev/null || true)
    set_addrs
}

set_addrs() {
    if [[ $IDX =~ ^[0-9]+$ ]]; then
        HOST_IF=sksw$IDX
        HOST_ADDR=169.254.0.$((IDX * 32 + 1))
        REGISTRY=$HOST_ADDR:$REGISTRY_PORT
    else
        HOST_IF='' HOST_ADDR='' REGISTRY=''
    fi
}

# Nodes of the lab, from its config (manager first).
lab_nodes() {
    local n w
    n=$(cfg workers 2>/dev/null || echo 0)
    echo manager
    for ((w = 1; w <= n; w++)); do echo "worker$w"; done
}

cfg() { # cfg KEY: a value of the lab's config file
    [[ -f $LDIR/config ]] || return 1
    sed -n "s/^$1=//p" "$LDIR/config" | head -1
}

set_node() {
    NODE=$1
    [[ $NODE =~ ^(manager|worker[1-9][0-9]?)$ ]] || die "bad node '$NODE': manager or workerK"
    NDIR=$LDIR/nodes/$NODE
    NRUN=$NDIR/run
    SOCK=$NRUN/docker.sock
    PIDFILE=$NRUN/docker.pid
    NLOG=$NDIR/dockerd.log
    NNS=sksw-$NAME-$NODE
    NNS_FILE=/run/netns/$NNS
    CGROUP=swarmkeeper-swarm-$NAME-$NODE
    NHOST=$NAME-$NODE
    NDISK=$(node_disk "$NODE")
    if [[ -n $NDISK ]]; then NDATA=$NDIR/data; else NDATA=$BULK/$NODE/data; fi
    local k=0
    [[ $NODE == worker* ]] && k=${NODE#worker}
    NADDR=
    [[ -n $IDX ]] && NADDR=169.254.0.$((IDX * 32 + 2 + k))
    return 0
}

node_disk() { # the tmpfs size of a node's data root, empty for a folder
    local d
    d=$(cfg disks 2>/dev/null || true)
    tr ',' '\n' <<<"$d" | sed -n "s/^$1=//p" | head -1
}

node_docker() { timeout 20 docker -H "unix://$SOCK" "$@"; }

answers() { socket_answers "$SOCK"; }

# The dockerd pid of the current node if that process is alive and is our daemon (its
# network namespace is the node's).
daemon_pid() {
    local pid
    pid=$(dockerd_pid "$PIDFILE") || return 1
    [[ -e $NNS_FILE ]] || return 1
    [[ $(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) == "$(stat -L -c %i "$NNS_FILE" 2>/dev/null)" ]] || return 1
    echo "$pid"
}

registry_pid() {
    local pid
    [[ -f $LDIR/registry.pid ]] || return 1
    pid=$(cat "$LDIR/registry.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    grep -qaF -- "$LDIR/registry.yml" "/proc/$pid/cmdline" 2>/dev/null || return 1
    alive "$pid" || return 1
    echo "$pid"
}

registry_answers() { # GET /v2/ answers 200, or 401 with auth (bash's /dev/tcp: no curl needed)
    [[ -n $REGISTRY ]] || return 1
    # shellcheck disable=SC2016
    timeout 3 bash -c 'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" &&
        printf "GET /v2/ HTTP/1.0\r\n\r\n" >&3 && head -n 1 <&3' sh "$REGISTRY" 2>/dev/null |
        grep -q ' 200 \| 401 '
}

exists() {
    [[ -e $LDIR || -e $BULK ]] && return 0
    ip netns list 2>/dev/null | grep -q "^sksw-$NAME-" && return 0
    [[ -n $(mounts_under "$LDIR") ]] && return 0
    return 1
}

# --- down -------------------------------------------------------------------------------
# Every process of the current node: in its network namespace (dockerd, containerd, shims,
# docker-proxy) or in its cgroup (containers).
kill_node_pids() {
    # shellcheck disable=SC2046
    kill_all "$NAME/$NODE" $(namespace_pids "$NNS" "$CGROUP")
}

teardown_node() {
    # The lab's data is thrown away: no graceful shutdown (dockerd takes 4-8 s for it). Every
    # process of the node goes at once (dockerd, containerd, shims, containers); the mounts
    # the daemon made live in its own mount namespace and go with it.
    kill_node_pids
    unmount_under "$NDIR"
    delete_netns "$NNS"
    remove_cgroups "$CGROUP"
}

teardown() {
    local n pid pids
    # Nodes named in the config, and any other node namespace or folder of this lab.
    {
        lab_nodes 2>/dev/null
        [[ -d $LDIR/nodes ]] && ls "$LDIR/nodes"
        ip netns list 2>/dev/null | awk '{ print $1 }' | sed -n "s/^sksw-$NAME-//p" | grep -vx hub
    } | grep -E '^(manager|worker[0-9]+)$' | sort -u | while read -r n; do
        set_node "$n"
        teardown_node
    done
    if pid=$(registry_pid); then
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone 5 "$pid" || kill -KILL "$pid" 2>/dev/null || true
    fi
    # A registry whose pid file is gone (its config file names this lab).
    pids=$(grep -lsaF -- "$LDIR/registry.yml" /proc/[0-9]*/cmdline | cut -d/ -f3 | grep -vx "$$" || true)
    if [[ -n $pids ]]; then
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null || true
    fi
    delete_netns "$HUB_NS"
    if [[ -n $HOST_IF ]] && ip link show "$HOST_IF" >/dev/null 2>&1; then
        ip link del "$HOST_IF" 2>/dev/null || true
    fi
    unmount_under "$LDIR"
    [[ -z $(mounts_under "$LDIR") ]] || die "still mounted under $LDIR: $(mounts_under "$LDIR" | tr '\n' ' ')"
    rm -rf "$LDIR" "$BULK"
}

with_lab_lock() { # with_lab_lock CMD...: run CMD holding the lab's lock (fd 8)
    mkdir -p "$ROOT/.locks"
    exec 8>"$ROOT/.locks/$NAME"
    flock 8
    "$@"
    exec 8>&-
}

cmd_down() {
    local name=lab all='' t=$SECONDS n
    while [[ $# -gt 0 ]]; do
        case $1 in
        --name) name=${2:?--name needs a value}; shift 2 ;;
        --all) all=1; shift ;;
        *) usage ;;
        esac
    done
    [[ $(id -u) -eq 0 ]] || die "must run as root"
    if [[ -n $all ]]; then
        for n in $( (cmd_list; ip netns list 2>/dev/null | awk '{ print $1 }' | sed -n 's/^sksw-\(.*\)-hub$/\1/p') | sort -u); do
            check_name "$n"
            set_lab "$n"
            with_lab_lock down_one
        done
        return 0
    fi
    check_name "$name"
    set_lab "$name"
    with_lab_lock down_one
    note "down in $((SECONDS - t)) s"
}

down_one() {
    if exists; then
        teardown
        note "lab $NAME is down"
    else
        note "lab $NAME was not there"
    fi
}

# --- up ---------------------------------------------------------------------------------
allocate_index() {
    local i used
    exec 9>"$ROOT/.locks/.alloc"
    flock 9
    used=$(cat "$ROOT"/*/index 2>/dev/null || true)
    for ((i = 0; i < MAX_LABS; i++)); do
        grep -qx "$i" <<<"$used" && continue
        ip link show "sksw$i" >/dev/null 2>&1 && continue
        ip -4 -o addr show 2>/dev/null | grep -qF " 169.254.0.$((i * 32 + 1))/" && continue
        echo "$i" >"$LDIR/index"
        IDX=$i
        exec 9>&-
        set_addrs
        return 0
    done
    exec 9>&-
    die "no free lab number: $MAX_LABS labs exist (lab/lab.sh list)"
}

make_network() {
    ip netns add "$HUB_NS"
    ip -n "$HUB_NS" link set lo up
    ip -n "$HUB_NS" link add name br0 type bridge
    ip -n "$HUB_NS" link set br0 up
    ip link add name "$HOST_IF" type veth peer name host netns "$HUB_NS"
    ip -n "$HUB_NS" link set host master br0 up
    ip addr add "$HOST_ADDR/27" dev "$HOST_IF"
    ip link set "$HOST_IF" up
}

start_registry() {
    mkdir -p "$BULK/registry"
    cat >"$LDIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $BULK/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
  secret: swarmkeeper-lab-$NAME
EOF
    local user url
    if [[ -n $REG_AUTH ]]; then
        user=${REG_AUTH%%:*}
        htpasswd -Bbn "$user" "${REG_AUTH#*:}" >"$LDIR/registry.htpasswd"
        printf 'auth:\n  htpasswd:\n    realm: swarmkeeper-lab-%s\n    path: %s\n' \
            "$NAME" "$LDIR/registry.htpasswd" >>"$LDIR/registry.yml"
    fi
    if [[ ${#REG_NOTIFY[@]} -gt 0 ]]; then
        printf 'notifications:\n  endpoints:\n' >>"$LDIR/registry.yml"
        for url in "${REG_NOTIFY[@]}"; do
            printf '    - name: %s\n      url: %s\n      timeout: 2s\n      threshold: 5\n      backoff: 1s\n      ignore:\n        mediatypes: [application/octet-stream]\n        actions: [pull]\n' \
                "${url//[^A-Za-z0-9]/-}" "$url" >>"$LDIR/registry.yml"
            [[ -z $REG_NOTIFY_TOKEN ]] ||
                printf '      headers:\n        Authorization: ["Bearer %s"]\n' "$REG_NOTIFY_TOKEN" >>"$LDIR/registry.yml"
        done
    fi
    (
        close_fds
        exec setsid docker-registry serve "$LDIR/registry.yml" </dev/null >"$LDIR/registry.log" 2>&1
    ) &
    echo $! >"$LDIR/registry.pid"
    disown # bash would report it "Killed" when the lab goes
}

wait_registry() {
    local end=$((SECONDS + WAIT_SECS))
    until registry_answers; do
        registry_pid >/dev/null || { tail -n 20 "$LDIR/registry.log" >&2; die "the registry exited"; }
        ((SECONDS < end)) || die "the registry does not answer on $REGISTRY after $WAIT_SECS s"
        sleep 0.1
    done
}

# The network namespace of the current node and its leg on the lab's bridge.
make_node_net() {
    ip netns add "$NNS"
    ip -n "$NNS" link set lo up
    ip -n "$HUB_NS" link add name "$NODE" type veth peer name eth0 netns "$NNS"
    ip -n "$HUB_NS" link set "$NODE" master br0 up
    ip -n "$NNS" addr add "$NADDR/27" dev eth0
    ip -n "$NNS" link set eth0 up
    # dockerd runs with --iptables=false, so nothing translates the addresses of containers
    # on the node's docker_gwbridge: without this masquerade the server's container could not
    # ask the lab's registry for digests nor reach a receiver on the host. Best effort: a lab
    # without it still runs the Swarm tests.
    if ! ip netns exec "$NNS" sh -c "sysctl -qw net.ipv4.ip_forward=1 &&
        iptables -t nat -A POSTROUTING -o eth0 ! -s $NADDR -j MASQUERADE" 2>/dev/null; then
        note "$NODE: no masquerade for its containers (iptables in its namespace failed)"
    fi
}

make_node_disk() {
    mkdir -p "$NRUN" "$NDATA"
    chmod 0711 "$NDIR"
    if [[ -n $NDISK ]]; then
        mount -t tmpfs -o "size=$NDISK,mode=0711" "$CGROUP" "$NDATA"
    fi
    # Its own daemon.json (/etc/docker/daemon.json never applies) and key (its own engine
    # ID). Paths are as the daemon sees them in its mount namespace, where /run is $NRUN.
    cat >"$NRUN/daemon.json" <<EOF
{
  "insecure-registries": ["$REGISTRY"],
  "deprecated-key-path": "/run/docker-key.json"
}
EOF
}

# Starts the current node's dockerd, detached. Inside its namespaces the node looks like a
# machine of its own: /var/lib/docker is its data root, /var/run/docker.sock its socket,
# its hostname is $NHOST. That is what makes deploy/swarmkeeper.yml work unchanged.
launch_daemon() {
    : >"$NLOG"
    (
        close_fds
        # nsenter --net, not `ip netns exec` (which remounts /sys: dockerd then dies with
        # "Devices cgroup isn't mounted").
        # shellcheck disable=SC2016
        exec setsid nsenter --net="$NNS_FILE" \
            unshare --uts --mount --propagation private \
            sh -c '
                set -e
                hostname "$1"
                # Drop the copies of mounts that belong to others (the host engine, other
                # labs): this namespace must not keep their namespaces or tmpfs alive.
                awk "{ print \$5 }" /proc/self/mountinfo | sort -r | while read -r m; do
                    case $m in
                    "$2") ;;
                    /run/*|/var/lib/docker/*) umount -l "$m" 2>/dev/null || true ;;
                    esac
                done
                mkdir -p /var/lib/docker
                mount --bind "$2" /var/lib/docker
                mount --bind "$3" /run
                shift 3
                exec "$@"
            ' sh "$NHOST" "$NDATA" "$NRUN" \
            dockerd --config-file /run/daemon.json \
            --iptables=false --ip-masq=false --bridge=none \
            --cgroup-parent "/$CGROUP" \
            </dev/null >>"$NLOG" 2>&1
    ) &
    echo $! >"$NDIR/launcher.pid"
    disown
}

wait_daemon() {
    local end=$((SECONDS + WAIT_SECS)) launcher
    launcher=$(cat "$NDIR/launcher.pid" 2>/dev/null || echo 0)
    until answers; do
        if ! alive "$launcher" && ! daemon_pid >/dev/null; then
            keep_log
            die "dockerd of $NAME/$NODE exited (log: /tmp/swarmkeeper-lab-$NAME-$NODE.dockerd.log)"
        fi
        if ((SECONDS >= end)); then
            keep_log
            die "dockerd of $NAME/$NODE does not answer after $WAIT_SECS s"
        fi
        sleep 0.1
    done
}

keep_log() {
    local saved=/tmp/swarmkeeper-lab-$NAME-$NODE.dockerd.log
    cp "$NLOG" "$saved" 2>/dev/null || true
    tail -n 15 "$saved" >&2 2>/dev/null || true
}

# While a lab is being made, any failure (a command, a `die`, Ctrl-C) removes what was made.
on_up_exit() {
    local rc=$?
    [[ -n ${UP_DONE:-} ]] && return 0
    trap - ERR EXIT INT TERM
    note "up failed (exit $rc)${UP_FAILED:+ at $UP_FAILED}; removing what was made"
    teardown || true
    exit 1
}

lab_healthy() {
    local n ready want
    [[ -f $LDIR/ready ]] || return 1
    registry_pid >/dev/null && registry_answers || return 1
    for n in $(lab_nodes); do
        set_node "$n"
        daemon_pid >/dev/null && answers || return 1
    done
    set_node manager
    want=$(lab_nodes | wc -l)
    ready=$(node_docker node ls --format '{{.Status}}' 2>/dev/null | grep -c '^Ready$' || true)
    [[ $ready -eq $want ]]
}

create_lab() { # create_lab WORKERS DISKS
    local workers=$1 disks=$2 n token mid t joins=()
    UP_DONE='' UP_FAILED=''
    trap 'UP_FAILED="line $LINENO: $BASH_COMMAND"' ERR
    trap on_up_exit EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$LDIR" "$BULK"
    allocate_index
    printf 'workers=%s\ndisks=%s\nregistry=%s\nmanagers=%s\n' "$workers" "$disks" "$REG_CFG" "$MANAGERS" >"$LDIR/config"
    make_network
    start_registry
    for n in $(lab_nodes); do
        set_node "$n"
        make_node_net
        make_node_disk
        launch_daemon
    done
    wait_registry
    for n in $(lab_nodes); do
        set_node "$n"
        wait_daemon
    done
    note "daemons up after $((SECONDS - T0)) s"

    set_node manager
    node_docker swarm init --advertise-addr "$NADDR" --listen-addr "$NADDR:2377" \
        --default-addr-pool 169.254.64.0/18 --default-addr-pool-mask-length 24 >/dev/null
    token=$(node_docker swarm join-token -q worker)
    local mtoken maddr=$NADDR
    mtoken=$(node_docker swarm join-token -q manager)
    for n in $(lab_nodes | grep -v '^manager$'); do
        set_node "$n"
        ((${n#worker} < MANAGERS)) && token=$mtoken
        node_docker swarm join --token "$token" --advertise-addr "$NADDR" \
            --listen-addr "$NADDR:2377" "$maddr:2377" >/dev/null &
        joins+=($!)
    done
    for n in "${joins[@]}"; do
        wait "$n" || die "a worker could not join the swarm"
    done
    for n in $(lab_nodes); do
        set_node "$n"
        mid=$(node_docker info --format '{{.Swarm.NodeID}}')
        set_node manager
        node_docker node update --label-add "lab.node=$n" "$mid" >/dev/null
    done
    node_docker node update --label-add swarmkeeper.state=true "$(node_docker info --format '{{.Swarm.NodeID}}')" >/dev/null
    t=$((SECONDS + WAIT_SECS))
    set_node manager
    until [[ $(node_docker node ls --format '{{.Status}}' | grep -c '^Ready$' || true) -eq $(lab_nodes | wc -l) ]]; do
        ((SECONDS < t)) || die "not every node is Ready after $WAIT_SECS s: $(node_docker node ls)"
        sleep 0.2
    done
    touch "$LDIR/ready"
    UP_DONE=1
    trap - ERR EXIT INT TERM
}

cmd_up() {
    local name=lab workers=2 disks=() worker_disk='' d node size want
    REG_AUTH='' REG_NOTIFY=() REG_NOTIFY_TOKEN='' MANAGERS=1
    while [[ $# -gt 0 ]]; do
        case $1 in
        --name) name=${2:?--name needs a value}; shift 2 ;;
        --registry-auth) REG_AUTH=${2:?--registry-auth needs USER:PASS}; shift 2 ;;
        --registry-notify) REG_NOTIFY+=("${2:?--registry-notify needs a URL}"); shift 2 ;;
        --registry-notify-token) REG_NOTIFY_TOKEN=${2:?--registry-notify-token needs a TOKEN}; shift 2 ;;
        --workers) workers=${2:?--workers needs a value}; shift 2 ;;
        --managers) MANAGERS=${2:?--managers needs a value}; shift 2 ;;
        --worker-disk) worker_disk=${2:?--worker-disk needs a SIZE}; shift 2 ;;
        --disk) disks+=("${2:?--disk needs NODE=SIZE}"); shift 2 ;;
        *) usage ;;
        esac
    done
    check_name "$name"
    if ! [[ $workers =~ ^[0-9]+$ ]] || ((workers > 28)); then
        die "bad --workers '$workers': 0 to 28"
    fi
    [[ $MANAGERS =~ ^[1-9][0-9]*$ ]] && ((MANAGERS <= workers + 1)) ||
        die "bad --managers '$MANAGERS': 1 to $((workers + 1)) (the manager and workers)"
    [[ -n $worker_disk ]] && disks=("worker1=$worker_disk" "${disks[@]}")
    [[ -z $REG_AUTH || $REG_AUTH =~ ^[^:[:space:]]+:[^[:space:]]+$ ]] ||
        die "bad --registry-auth: USER:PASS, without spaces"
    [[ -z $REG_NOTIFY_TOKEN || $REG_NOTIFY_TOKEN =~ ^[A-Za-z0-9._~+/=-]+$ ]] ||
        die "bad --registry-notify-token: letters, digits and ._~+/=- only"
    [[ -z $REG_NOTIFY_TOKEN || ${#REG_NOTIFY[@]} -gt 0 ]] ||
        die "--registry-notify-token needs --registry-notify URL"
    for d in "${REG_NOTIFY[@]}"; do
        [[ $d =~ ^https?://[^[:space:]]+$ ]] || die "bad --registry-notify '$d': an http(s):// URL"
    done
    # What the registry is made with, to tell whether an existing lab is the one asked for
    # (the password only as a digest).
    REG_CFG=
    if [[ -n $REG_AUTH ]]; then
        REG_CFG="${REG_AUTH%%:*}:$(printf %s "${REG_AUTH#*:}" | sha256sum | cut -c1-16)"
    fi
    for d in "${REG_NOTIFY[@]}"; do REG_CFG+=" $d"; done
    [[ -z $REG_NOTIFY_TOKEN ]] || REG_CFG+=" token:$(printf %s "$REG_NOTIFY_TOKEN" | sha256sum | cut -c1-16)"
    want=
    for d in "${disks[@]}"; do
        node=${d%%=*} size=${d#*=}
        [[ $d == *=* && $node =~ ^(manager|worker[1-9][0-9]?)$ ]] || die "bad --disk '$d': NODE=SIZE, e.g. worker1=256m"
        [[ $node == manager || ${node#worker} -le $workers ]] || die "--disk $d: the lab has $workers workers"
        [[ $size =~ ^[0-9]+[kKmMgG]?$ ]] || die "bad SIZE '$size' in '$d': e.g. 256m, 1g"
        [[ ,$want, == *",$node="* ]] && continue # the first one given wins
        want+=${want:+,}$d
    done
    [[ $(id -u) -eq 0 ]] || die "must run as root"
    local tool
    for tool in dockerd docker docker-registry ip nsenter unshare flock ${REG_AUTH:+htpasswd}; do
        command -v "$tool" >/dev/null ||
            die "$tool is not installed (scripts/ensure-engine.sh installs docker.io, docker-registry and apache2-utils)"
    done
    T0=$SECONDS
    set_lab "$name"
    mkdir -p "$ROOT/.locks"
    exec 8>"$ROOT/.locks/$NAME"
    flock 8
    if exists; then
        if [[ $(cfg workers || true) == "$workers" && $(cfg disks || true) == "$want" &&
            $(cfg registry || true) == "$REG_CFG" && $(cfg managers || true) == "$MANAGERS" ]] &&
            lab_healthy; then
            note "lab $NAME already up"
            exec 8>&-
            print_env
            return 0
        fi
        note "lab $NAME exists but is not up as asked; removing it first"
        teardown
        set_lab "$name"
    fi
    create_lab "$workers" "$want"
    exec 8>&-
    note "lab $NAME up in $((SECONDS - T0)) s: registry $REGISTRY, manager $(set_node manager; echo "$NADDR")"
    print_env
}

# --- the other commands -----------------------------------------------------------------
need_lab() { # need_lab ARGS...: parse --name, set the lab; the rest is left in REST
    local name=lab
    REST=()
    while [[ $# -gt 0 ]]; do
        case $1 in
        --name) name=${2:?--name needs a value}; shift 2 ;;
        *) REST=("$@"); break ;;
        esac
    done
    check_name "$name"
    set_lab "$name"
    [[ -f $LDIR/config && -n $IDX ]] || die "lab $NAME is not up (lab/lab.sh up --name $NAME)"
}

print_env() {
    local n u nodes m
    nodes=$(lab_nodes | paste -sd, -)
    echo "LAB_NAME=$NAME"
    echo "LAB_REGISTRY=$REGISTRY"
    echo "LAB_HOST_ADDR=$HOST_ADDR"
    echo "LAB_NODES=$nodes"
    m=$(cfg managers || true)
    echo "LAB_MANAGERS=$(lab_nodes | head -n "${m:-1}" | paste -sd, -)"
    for n in $(lab_nodes); do
        set_node "$n"
        u=$(tr '[:lower:]' '[:upper:]' <<<"$n")
        echo "LAB_${u}_HOST=unix://$SOCK"
        echo "LAB_${u}_ADDR=$NADDR"
        echo "LAB_${u}_HOSTNAME=$NHOST"
        echo "LAB_${u}_DATA=$NDATA"
        echo "LAB_${u}_DISK=${NDISK:-host}"
        echo "LAB_${u}_NETNS=$NNS"
    done
}

cmd_env() {
    need_lab "$@"
    [[ ${#REST[@]} -eq 0 ]] || usage
    print_env
}

cmd_socket() {
    need_lab "$@"
    [[ ${#REST[@]} -eq 1 ]] || usage
    set_node "${REST[0]}"
    answers || die "$NAME/$NODE does not answer"
    echo "unix://$SOCK"
}

cmd_docker() {
    need_lab "$@"
    [[ ${#REST[@]} -ge 1 ]] || usage
    set_node "${REST[0]}"
    exec docker -H "unix://$SOCK" "${REST[@]:1}"
}

cmd_exec() {
    need_lab "$@"
    [[ ${#REST[@]} -ge 2 ]] || usage
    set_node "${REST[0]}"
    local pid
    pid=$(daemon_pid) || die "dockerd of $NAME/$NODE is not running"
    # The same working directory, when the node sees it (everything but /run and
    # /var/lib/docker is the host's own).
    local wd=/
    case $PWD in /run | /run/* | /var/run/* | /var/lib/docker | /var/lib/docker/*) ;; *) wd=$PWD ;; esac
    exec nsenter --target "$pid" --mount --uts --net --wd="$wd" -- "${REST[@]:1}"
}

cmd_stop_node() {
    need_lab "$@"
    [[ ${#REST[@]} -eq 1 ]] || usage
    set_node "${REST[0]}"
    exec 8>"$ROOT/.locks/$NAME"
    flock 8
    local pid
    if pid=$(daemon_pid); then
        kill -TERM "$pid"
        if ! wait_gone 30 "$pid"; then
            note "dockerd $pid of $NAME/$NODE did not stop in 30 s, killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        note "$NAME/$NODE stopped (its data root and network stay)"
    else
        note "$NAME/$NODE was not running"
    fi
}

# What a reboot does to a node's overlay state: a dockerd that exits while it tears an overlay
# sandbox down (it logs "Daemon shutdown complete", then cleans up for about a second more)
# leaves that network's vx-<VNI>-<id> device in the node's namespace (moby/libnetwork#1765),
# and a dead sandbox's device is reaped by the kernel a little later. Either makes the next
# daemon's overlay join fail, "error creating vxlan interface: file exists", for every task on
# that network, until Swarm stops retrying (max_attempts): the agent never came back on a CI run.
clear_stale_vxlan() {
    local dev until=$((SECONDS + 10))
    for dev in $(ip -n "$NNS" -o link show type vxlan 2>/dev/null |
        awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'); do
        note "$NAME/$NODE: removing the overlay device $dev its last daemon left"
        ip -n "$NNS" link del "$dev" 2>/dev/null || true
    done
    while nsenter --net="$NNS_FILE" ss -Hunl 'sport = :4789' 2>/dev/null | grep -q .; do
        if ((SECONDS >= until)); then
            note "$NAME/$NODE: a vxlan socket (udp 4789) is still open after 10 s"
            break
        fi
        sleep 0.1
    done
}

cmd_start_node() {
    need_lab "$@"
    [[ ${#REST[@]} -eq 1 ]] || usage
    set_node "${REST[0]}"
    [[ -d $NDIR && -e $NNS_FILE ]] || die "$NAME/$NODE does not exist"
    exec 8>"$ROOT/.locks/$NAME"
    flock 8
    if daemon_pid >/dev/null && answers; then
        note "$NAME/$NODE is already running"
        return 0
    fi
    # A daemon killed with SIGKILL leaves shims and containers behind.
    kill_node_pids
    clear_stale_vxlan
    launch_daemon
    wait_daemon
    note "$NAME/$NODE started"
}

cmd_status() {
    need_lab "$@"
    local n state
    echo "lab $NAME: registry $REGISTRY ($(registry_answers && echo up || echo DOWN))"
    for n in $(lab_nodes); do
        set_node "$n"
        if daemon_pid >/dev/null && answers; then
            state=$(node_docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo '?')
        else
            state=stopped
        fi
        printf '  %-9s %-15s %-20s disk %-6s swarm %s\n' "$n" "$NADDR" "$NHOST" "${NDISK:-host}" "$state"
    done
}

cmd_list() { list_dirs "$ROOT"; }

main() {
    [[ $# -ge 1 ]] || usage
    local cmd=$1
    shift
    case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    env) cmd_env "$@" ;;
    status) cmd_status "$@" ;;
    list) cmd_list "$@" ;;
    socket) cmd_socket "$@" ;;
    docker) cmd_docker "$@" ;;
    exec) cmd_exec "$@" ;;
    stop-node) cmd_stop_node "$@" ;;
    start-node) cmd_start_node "$@" ;;
    *) usage ;;
    esac
}

main "$@"
