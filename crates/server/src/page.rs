//! What every page shares: the header (who is logged in, the navigation, the CSRF token) and
//! small formatting helpers the templates call.

use askama::Template;
use axum::response::Html;
use jiff::Timestamp;
use swarmkeeper_auth::Action;

use crate::access::Caller;
use crate::error::AppError;

/// The part of every page around its content.
pub struct Chrome {
    pub user: String,
    pub role: &'static str,
    pub csrf: String,
    /// Which navigation entry is the current one.
    pub active: &'static str,
    pub can_operate: bool,
    pub can_admin: bool,
}

impl Chrome {
    pub fn new(caller: &Caller, active: &'static str) -> Chrome {
        Chrome {
            user: caller.user.name.clone(),
            role: caller.role().as_str(),
            csrf: caller.csrf(),
            active,
            can_operate: caller.may(Action::Deploy),
            can_admin: caller.may(Action::ManageUsers),
        }
    }
}

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

/// `1.5 GiB`, `320 MiB`, `12 KiB`, `900 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else if value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `5s ago`, `3m ago`, `2h ago`, `4d ago`; `in the future` for a clock ahead of ours.
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

/// A timestamp to the second, in UTC, for tables.
pub fn when(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker_system_df() {
        assert_eq!(bytes(900), "900 B");
        assert_eq!(bytes(12 * 1024), "12.0 KiB");
        assert_eq!(bytes(320 * 1024 * 1024), "320 MiB");
        assert_eq!(bytes(1536 * 1024 * 1024), "1.5 GiB");
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
}
