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
