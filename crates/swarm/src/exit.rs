//! How a task's container ended, in words: the one wording the task page, its slot table and
//! the deploy's failure line share (`exit 137 (killed: out of memory, limit 16 MiB)`). Pure.

/// How a task's container ended: the facts [`exit_wording`] words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitFacts {
    /// The container's exit code.
    pub code: i64,
    /// Swarm asked the task to stop before it exited ([`crate::Task::stopped_by_swarm`]).
    pub stopped_by_swarm: bool,
    /// The kernel's OOM killer killed in the container.
    pub oom_killed: bool,
    /// Its memory limit in bytes, if it had one.
    pub memory_limit_bytes: Option<u64>,
}

/// Signals a container's main process may die of, by number: an exit code above 128 is
/// 128 + the signal (the shell's and Docker's convention).
const SIGNALS: [(i64, &str); 10] = [
    (1, "SIGHUP"),
    (2, "SIGINT"),
    (3, "SIGQUIT"),
    (6, "SIGABRT"),
    (7, "SIGBUS"),
    (8, "SIGFPE"),
    (9, "SIGKILL"),
    (11, "SIGSEGV"),
    (13, "SIGPIPE"),
    (15, "SIGTERM"),
];

/// The exit line of a task page, the one place it is worded:
///
/// - `exit 137 (killed: out of memory, limit 16 MiB)`: SIGKILL and the kernel's OOM killer
///   killed in the container (it wins over a stop Swarm asked for: the kill came first);
/// - `exit 143 (stopped by Swarm)`: Swarm asked the task to stop (an update, a scale-down,
///   a drain); any code, since a process may answer SIGTERM with any;
/// - `exit 137 (SIGKILL, not from Swarm)`, `exit 139 (SIGSEGV)`: a signal nobody here asked
///   for (SIGKILL and SIGTERM are Swarm's own, hence the note);
/// - `exit 0`, `exit 1`: the process ended by itself.
pub fn exit_wording(facts: &ExitFacts) -> String {
    let code = facts.code;
    let signal = SIGNALS
        .iter()
        .find(|(n, _)| 128 + n == code)
        .map(|(_, name)| *name);
    if facts.oom_killed && signal == Some("SIGKILL") {
        return match facts.memory_limit_bytes.filter(|b| *b > 0) {
            Some(limit) => {
                format!(
                    "exit {code} (killed: out of memory, limit {})",
                    mebibytes(limit)
                )
            }
            None => format!("exit {code} (killed: out of memory)"),
        };
    }
    if facts.stopped_by_swarm {
        return format!("exit {code} (stopped by Swarm)");
    }
    match signal {
        Some(name @ ("SIGKILL" | "SIGTERM")) => format!("exit {code} ({name}, not from Swarm)"),
        Some(name) => format!("exit {code} ({name})"),
        None => format!("exit {code}"),
    }
}

/// A memory limit as people set it: `16 MiB`, `1536 MiB`, `1 GiB` when exact, else
/// `units::bytes`.
fn mebibytes(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        swarmkeeper_units::bytes(bytes)
    }
}

/// The task page's exit line and error, each fact said once: the exit line from
/// [`exit_wording`], and Swarm's `Status.Err` without its `non-zero exit (N)` when N is that
/// code.
pub fn task_outcome(error: &str, exit: Option<&ExitFacts>) -> (Option<String>, String) {
    let Some(exit) = exit else {
        return (None, error.to_owned());
    };
    let said = format!("non-zero exit ({})", exit.code);
    let rest = error.replace(&said, "");
    let rest = rest
        .trim()
        .trim_start_matches("task:")
        .trim()
        .trim_start_matches(':')
        .trim()
        .trim_end_matches(':')
        .trim();
    (Some(exit_wording(exit)), rest.to_owned())
}

/// The exit line of a container killed by SIGKILL (`code` 137) when whether the kernel's OOM
/// killer sent it could not be learned: the engine asked cannot inspect a container on
/// another node, and no agent's count was at hand (a deploy from the CLI). The kill is the
/// OOM killer's often enough to say so, with the memory limit (`limit` bytes, if any) it
/// would have hit, and where the answer is. The deploy's failure line; the task page has the
/// agents' counts and says `killed: out of memory` when they counted one.
pub fn sigkill_unverified(code: i64, limit: Option<u64>) -> String {
    let at = match limit.filter(|b| *b > 0) {
        Some(limit) => format!("at the {} memory limit", mebibytes(limit)),
        None => "when the node runs out of memory".to_owned(),
    };
    format!(
        "exit {code} (SIGKILL: often an OOM kill {at}; its container is on a node this \
         deploy's engine cannot inspect: that node's swarmkeeper agent counts OOM kills, and \
         the dashboard's task page says whether this was one)"
    )
}

/// The processes of a container the kernel's OOM killer killed that its exit line does not
/// already say, in words: `1 process killed: out of memory (limit 16 MiB)`, `2 processes
/// killed: …`. `kills` is the agent's count for the container (cgroup `memory.events`
/// `oom_kill`), `limit` its memory limit in bytes, `exit_code` the container's, once it
/// exited. A child process killed while the main one goes on (or later exits 0) leaves no
/// trace in Swarm's task; a main process killed is the exit line's `exit 137 (killed: out of
/// memory …)` (a SIGKILL exit with kills counted), so it is not counted here again. `None`:
/// nothing left to say.
pub fn processes_killed(kills: u64, limit: Option<u64>, exit_code: Option<i64>) -> Option<String> {
    let main_killed = exit_code == Some(128 + 9);
    let others = kills.saturating_sub(u64::from(main_killed));
    if others == 0 {
        return None;
    }
    let processes = if others == 1 { "process" } else { "processes" };
    Some(match limit.filter(|b| *b > 0) {
        Some(limit) => format!(
            "{others} {processes} killed: out of memory (limit {})",
            mebibytes(limit)
        ),
        None => format!("{others} {processes} killed: out of memory"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_the_exit_line_does_not_name_are_counted() {
        let mib16 = Some(16 << 20);
        // A child killed while the main process runs, or after it exited 0 or 1.
        assert_eq!(
            processes_killed(1, mib16, None).as_deref(),
            Some("1 process killed: out of memory (limit 16 MiB)")
        );
        assert_eq!(
            processes_killed(3, mib16, Some(0)).as_deref(),
            Some("3 processes killed: out of memory (limit 16 MiB)")
        );
        assert_eq!(
            processes_killed(1, None, Some(1)).as_deref(),
            Some("1 process killed: out of memory")
        );
        // The main process killed: the exit line says it; only the others are counted.
        assert_eq!(processes_killed(1, mib16, Some(137)), None);
        assert_eq!(
            processes_killed(2, mib16, Some(137)).as_deref(),
            Some("1 process killed: out of memory (limit 16 MiB)")
        );
        assert_eq!(processes_killed(0, mib16, None), None);
    }

    #[test]
    fn a_sigkill_nobody_could_check_names_the_limit_and_who_knows() {
        assert_eq!(
            sigkill_unverified(137, Some(1 << 30)),
            "exit 137 (SIGKILL: often an OOM kill at the 1 GiB memory limit; its container is \
             on a node this deploy's engine cannot inspect: that node's swarmkeeper agent counts \
             OOM kills, and the dashboard's task page says whether this was one)"
        );
        assert!(sigkill_unverified(137, None).starts_with(
            "exit 137 (SIGKILL: often an OOM kill when the node runs out of memory; "
        ));
    }
}
