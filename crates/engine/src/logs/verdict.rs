//! What a service's log driver means for reading its logs back, and what to tell the operator.
//! Pure.

use super::{LogLine, LOGS_UNREADABLE};

/// What a log driver means for reading a service's logs through the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriverVerdict {
    /// `local`, `json-file`, `journald`, or none named (the daemon's default: the engine will
    /// say if that cannot be read).
    Readable,
    /// The engine keeps nothing: `none`.
    Unreadable(String),
    /// Another driver (`syslog`, `gelf`, `fluentd`, …): readable only through the engine's
    /// local cache ("dual logging", on by default since Engine 20.10 unless a node's daemon
    /// sets `cache-disabled`).
    Cached(String),
}

/// Drivers the engine reads back itself.
const READABLE_DRIVERS: &[&str] = &["local", "json-file", "journald"];

impl DriverVerdict {
    /// The verdict on a service spec's `TaskTemplate.LogDriver.Name` (`None` or empty: the
    /// daemon's default).
    pub fn of(driver: Option<&str>) -> DriverVerdict {
        match driver.unwrap_or_default() {
            "" => DriverVerdict::Readable,
            "none" => DriverVerdict::Unreadable("none".to_owned()),
            name if READABLE_DRIVERS.contains(&name) => DriverVerdict::Readable,
            name => DriverVerdict::Cached(name.to_owned()),
        }
    }
}

/// The fix, in the words of lint rule SK001.
const FIX: &str = "set `logging: {driver: local, options: {max-size: 10m}}` in the stack file and \
                   redeploy (swarmkeeper deploy does this by default)";

/// Why a service's logs cannot be read and what to change; `driver` when its name is known.
/// Both forms quote the engine's own words, which is what `docker service logs` says.
pub fn unreadable_message(service: &str, driver: Option<&str>) -> String {
    let cause = match driver {
        Some(driver) => format!(
            "its log driver is `{driver}`, which keeps nothing the engine can read back (the \
             engine says: {LOGS_UNREADABLE})"
        ),
        None => format!("the engine says: {LOGS_UNREADABLE}"),
    };
    format!("The logs of {service} cannot be read: {cause}. Fix: {FIX}.")
}

/// The note for a driver read through the engine's cache.
pub fn cached_note(driver: &str) -> String {
    format!(
        "Log driver `{driver}`: the engine shows these lines from its local cache (dual logging), \
         which a node's daemon may disable with `cache-disabled`; if no line appears, {FIX}."
    )
}

/// Whether a line is the engine's own report that it cannot read the logs (an error frame
/// inside the stream, which carries no task id).
pub fn is_unreadable_line(line: &LogLine) -> bool {
    line.task_id.is_none() && line.text.contains(LOGS_UNREADABLE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogStream;

    #[test]
    fn drivers_that_keep_nothing_are_named_with_the_fix() {
        assert_eq!(DriverVerdict::of(None), DriverVerdict::Readable);
        assert_eq!(DriverVerdict::of(Some("")), DriverVerdict::Readable);
        assert_eq!(DriverVerdict::of(Some("local")), DriverVerdict::Readable);
        assert_eq!(
            DriverVerdict::of(Some("json-file")),
            DriverVerdict::Readable
        );
        assert_eq!(
            DriverVerdict::of(Some("none")),
            DriverVerdict::Unreadable("none".into())
        );
        assert_eq!(
            DriverVerdict::of(Some("syslog")),
            DriverVerdict::Cached("syslog".into())
        );
        let message = unreadable_message("shop_web", Some("none"));
        assert!(
            message.contains("shop_web") && message.contains("`none`"),
            "{message}"
        );
        assert!(message.contains(LOGS_UNREADABLE), "{message}");
        assert!(message.contains("logging: {driver: local"), "{message}");
        assert!(unreadable_message("web", None).contains(LOGS_UNREADABLE));
        assert!(cached_note("syslog").contains("driver: local"));
    }

    #[test]
    fn the_engines_own_refusal_inside_the_stream_is_recognised() {
        let line = |task: Option<&str>, text: &str| LogLine {
            stream: LogStream::Stderr,
            timestamp: None,
            task_id: task.map(str::to_owned),
            text: text.into(),
        };
        assert!(is_unreadable_line(&line(
            None,
            &format!("Error grabbing logs: {LOGS_UNREADABLE}")
        )));
        assert!(!is_unreadable_line(&line(Some("t1"), LOGS_UNREADABLE)));
    }
}
