# Process helpers shared by lab/small-engine.sh and lab/lab.sh (sourced, not run).

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

# Close every fd above 2 (a caller's pipes, our locks) in a subshell about to exec a daemon.
close_fds() {
    local fd
    for fd in "/proc/$BASHPID/fd/"*; do
        fd=${fd##*/}
        if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
}
