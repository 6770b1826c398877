# Helpers shared by lab/small-engine.sh and lab/lab.sh (sourced, not run): processes, and what
# a throwaway daemon leaves behind.

alive() { # a live process, not a zombie
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ $st != Z* ]]
}

wait_gone() { # wait_gone SECS PID...: 0 once every PID is gone, 1 after SECS
    local secs=$1 end p any
    shift
    end=$((SECONDS + secs))
    while :; do
        any=
        for p in "$@"; do
            if alive "$p"; then any=1; fi
        done
        [[ -z $any ]] && return 0
        ((SECONDS >= end)) && return 1
        sleep 0.1
    done
}

socket_answers() { # socket_answers SOCK: a Docker daemon answers on the unix socket SOCK
    [[ -S $1 ]] && timeout 10 docker -H "unix://$1" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

dockerd_pid() { # dockerd_pid PIDFILE: the pid in PIDFILE, if it is a live dockerd
    local pid
    [[ -f $1 ]] || return 1
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || return 1
    alive "$pid" || return 1
    echo "$pid"
}

list_dirs() { # list_dirs DIR: the names of the folders in DIR (the labs under a root)
    local d
    for d in "$1"/*/; do
        [[ -d $d ]] && basename "$d"
    done
    return 0
}

# Close every fd above 2 (a caller's pipes, our locks) in a subshell about to exec a daemon.
close_fds() {
    local fd
    for fd in "/proc/$BASHPID/fd/"*; do
        fd=${fd##*/}
        if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
}

# --- what a throwaway daemon leaves behind (namespaces, cgroups, mounts, processes) ---------
# The callers define note() for messages.

mounts_under() { # mounts_under DIR: mount points at or below DIR, deepest first
    awk -v d="$1" '{ m = $5; gsub(/\\040/, " ", m); if (m == d || index(m, d "/") == 1) print m }' \
        /proc/self/mountinfo | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

unmount_under() { # unmount_under DIR: every mount at or below DIR, lazily if busy
    local m
    while read -r m; do
        [[ -n $m ]] || continue
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || note "cannot unmount $m"
    done < <(mounts_under "$1")
}

cgroup_dirs() { # cgroup_dirs NAME: the folder of cgroup NAME in every hierarchy that has it
    local h
    for h in /sys/fs/cgroup /sys/fs/cgroup/*; do
        [[ -d $h/$1 ]] && echo "$h/$1"
    done
    return 0
}

remove_cgroups() { # remove_cgroups NAME: cgroup NAME and those below it, where empty
    local c
    while read -r c; do
        [[ -n $c ]] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done < <(cgroup_dirs "$1")
}

namespace_pids() { # namespace_pids NETNS CGROUP: processes in the network namespace or the cgroup
    {
        [[ -e /run/netns/$1 ]] && ip netns pids "$1" 2>/dev/null
        local c
        while read -r c; do
            find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null
        done < <(cgroup_dirs "$2")
    } | grep -E '^[0-9]+$' | grep -vx "$$" | sort -un || true
}

kill_all() { # kill_all WHAT PID...: SIGKILL and wait up to 10 s; WHAT names them in a note
    local what=$1
    shift
    [[ $# -gt 0 ]] || return 0
    kill -KILL "$@" 2>/dev/null || true
    wait_gone 10 "$@" || note "some processes of $what did not die: $*"
}

delete_netns() { # delete_netns NAME: the network namespace, or at least its mount
    [[ -e /run/netns/$1 ]] || return 0
    ip netns del "$1" 2>/dev/null || { umount -l "/run/netns/$1" 2>/dev/null; rm -f "/run/netns/$1"; }
}
