//! What every page shares: the header around its content ([`Chrome`]) and the askama
//! [`filters`] the templates format numbers and times with. A leaf: it knows nothing of
//! requests or callers.

use askama::Template;
use axum::response::Html;
use jiff::Timestamp;

use crate::error::AppError;

/// The part of every page around its content: who is logged in, the navigation, the CSRF
/// token of forms.
#[derive(Clone, Debug, Default)]
pub struct Chrome {
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    /// Which navigation entry is the current one.
    pub active: &'static str,
    pub can_operate: bool,
    pub can_admin: bool,
    pub can_view_logs: bool,
}

/// Renders a page that stands alone (login, setup, errors); the others go through
/// [`crate::respond`].
pub fn render(template: &impl Template) -> Result<Html<String>, AppError> {
    template.render().map(Html).map_err(AppError::internal)
}

/// Percent-encodes everything but unreserved characters, for a value inside a URL.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `5s ago`, `3m ago`, `2h ago`, `4d ago`; `just now` for a clock ahead of ours.
pub fn ago(at: Timestamp, now: Timestamp) -> String {
    let seconds = now.duration_since(at).as_secs();
    match seconds {
        s if s < 0 => "just now".to_owned(),
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// A Swarm enum value as words for a badge: `rollback_completed` → `rollback completed`.
/// The raw value stays in the badge's class and in the JSON.
pub fn words(raw: &str) -> String {
    raw.replace('_', " ")
}

/// Who made a recorded revision and what they did, as one phrase wherever it is shown: a
/// plain deploy reads "by alice", a change that says what it was reads "edited in the
/// dashboard by alice".
pub fn changed_by(who: &str, what: Option<&str>) -> String {
    match what {
        Some(what) => format!("{what} by {who}"),
        None => format!("by {who}"),
    }
}

/// A timestamp to the second, in UTC, for tables.
pub fn when(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

/// The filters every template may use. A time that is absent (a node that never ran GC, a
/// token never used) reads `never`, wherever it is shown.
///
/// - `{{ n|bytes }}`: a byte count, `1.5 GiB` ([`swarmkeeper_units::bytes`]).
/// - `{{ at|ago }}`: how long ago, see [`ago`](super::ago), against the `now` the responder
///   renders the page with (one instant for the whole page).
/// - `{{ at|when }}`: the time to the second, UTC.
/// - `{{ nano_cpus|cpus }}`: Swarm's nano-CPUs as CPUs, `1.5`.
///
/// Each takes a value or a reference to one (askama passes `&field`, or `&&value` for a
/// `let` binding), and times also as `Option<Timestamp>`.
pub mod filters {
    use std::convert::Infallible;

    use jiff::Timestamp;

    /// The name under which the responder passes the page's instant.
    pub const NOW: &str = "now";

    /// A count of bytes or nano-CPUs, however askama passes it.
    pub trait Count {
        fn count(&self) -> u64;
    }

    impl Count for u64 {
        fn count(&self) -> u64 {
            *self
        }
    }

    impl<T: Count + ?Sized> Count for &T {
        fn count(&self) -> u64 {
            (**self).count()
        }
    }

    /// A time that may be absent, however askama passes it.
    pub trait Moment {
        fn moment(&self) -> Option<Timestamp>;
    }

    impl Moment for Timestamp {
        fn moment(&self) -> Option<Timestamp> {
            Some(*self)
        }
    }

    impl Moment for Option<Timestamp> {
        fn moment(&self) -> Option<Timestamp> {
            *self
        }
    }

    impl<T: Moment + ?Sized> Moment for &T {
        fn moment(&self) -> Option<Timestamp> {
            (**self).moment()
        }
    }

    const NEVER: &str = "never";

    pub fn words<T: std::fmt::Display + ?Sized>(
        raw: &T,
        _: &dyn askama::Values,
    ) -> Result<String, Infallible> {
        Ok(super::words(&raw.to_string()))
    }

    pub fn bytes<T: Count + ?Sized>(n: &T, _: &dyn askama::Values) -> Result<String, Infallible> {
        Ok(swarmkeeper_units::bytes(n.count()))
    }

    pub fn ago<T: Moment + ?Sized>(at: &T, values: &dyn askama::Values) -> askama::Result<String> {
        let now = askama::get_value::<Timestamp>(values, NOW)?;
        Ok(at
            .moment()
            .map_or_else(|| NEVER.to_owned(), |at| super::ago(at, *now)))
    }

    pub fn when<T: Moment + ?Sized>(at: &T, _: &dyn askama::Values) -> Result<String, Infallible> {
        Ok(at.moment().map_or_else(|| NEVER.to_owned(), super::when))
    }

    pub fn cpus<T: Count + ?Sized>(nano: &T, _: &dyn askama::Values) -> Result<String, Infallible> {
        Ok(format!("{:.1}", nano.count() as f64 / 1e9))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn swarm_enum_values_read_as_words() {
        assert_eq!(super::words("rollback_completed"), "rollback completed");
        assert_eq!(super::words("running"), "running");
    }

    use super::*;

    #[test]
    fn who_changed_a_revision_is_said_once() {
        assert_eq!(changed_by("alice", None), "by alice");
        assert_eq!(changed_by("auto-deploy", None), "by auto-deploy");
        assert_eq!(
            changed_by("alice", Some("edited in the dashboard")),
            "edited in the dashboard by alice"
        );
    }

    #[test]
    fn ages_pick_the_largest_whole_unit() {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(ago(at("2026-01-01T23:59:55Z"), now), "5s ago");
        assert_eq!(ago(at("2026-01-01T23:57:00Z"), now), "3m ago");
        assert_eq!(ago(at("2026-01-01T22:00:00Z"), now), "2h ago");
        assert_eq!(ago(at("2025-12-29T00:00:00Z"), now), "4d ago");
        assert_eq!(ago(at("2026-01-02T00:00:09Z"), now), "just now");
    }

    #[test]
    fn urls_keep_paths_and_escape_the_rest() {
        assert_eq!(
            url_encode("/services/web?x=1&y"),
            "/services/web%3Fx%3D1%26y"
        );
    }

    #[derive(Template)]
    #[template(
        source = "{{ size|bytes }} {{ last|ago }} {{ never|ago }} {% if let Some(at) = last %}{{ at|ago }} {{ at|when }}{% endif %} {{ never|when }} {{ nano|cpus }}",
        ext = "txt"
    )]
    struct Sample {
        size: u64,
        last: Option<Timestamp>,
        never: Option<Timestamp>,
        nano: u64,
    }

    #[test]
    fn the_filters_read_the_pages_instant_and_say_never_for_no_time() {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let sample = Sample {
            size: 1536,
            last: Some("2026-01-01T23:57:00Z".parse().unwrap()),
            never: None,
            nano: 1_500_000_000,
        };
        let values: (&str, &dyn std::any::Any) = (filters::NOW, &now);
        assert_eq!(
            sample.render_with_values(&values).unwrap(),
            "1.5 KiB 3m ago never 3m ago 2026-01-01 23:57:00 never 1.5"
        );
        assert!(sample.render().is_err(), "`ago` needs the page's instant");
    }
}
