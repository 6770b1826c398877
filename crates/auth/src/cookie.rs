//! The session cookie's `Set-Cookie` value, written out by hand so the server's framework
//! cannot quietly drop an attribute.

use jiff::SignedDuration;

/// The `__Host-` prefix makes browsers refuse the cookie unless it is `Secure`, has `Path=/`
/// and no `Domain`: a sibling subdomain or a plain-HTTP page cannot set or shadow it.
pub const SESSION_COOKIE_NAME: &str = "__Host-swarmkeeper_session";

/// `Set-Cookie` value for a session. `HttpOnly` keeps scripts (an XSS) from reading it;
/// `SameSite=Strict` keeps other sites' links and forms from sending it; `Secure` keeps it off
/// plain HTTP (browsers treat `http://localhost` as secure, so local use still works).
pub fn session_cookie(token: &str, max_age: SignedDuration) -> String {
    format!(
        "{SESSION_COOKIE_NAME}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        max_age.as_secs().max(0)
    )
}

/// `Set-Cookie` value that makes the browser forget the session at logout.
pub fn clear_session_cookie() -> String {
    session_cookie("", SignedDuration::ZERO)
}

/// The session token in a request's `Cookie` header, if it carries one.
pub fn session_token_from_cookie_header(cookie_header: &str) -> Option<&str> {
    cookie_value(cookie_header, SESSION_COOKIE_NAME)
}

/// The browser's device cookie: set at each login, it lets the next login from this browser
/// pass while strangers are slowed down on the same user name. It opens nothing by itself.
pub const DEVICE_COOKIE_NAME: &str = "__Host-swarmkeeper_device";

/// `Set-Cookie` value for a device token, with the session cookie's attributes and a lifetime
/// of [`crate::DEVICE_LIFETIME`].
pub fn device_cookie(token: &str) -> String {
    format!(
        "{DEVICE_COOKIE_NAME}={token}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        crate::DEVICE_LIFETIME.as_secs()
    )
}

/// The device token in a request's `Cookie` header, if it carries one.
pub fn device_token_from_cookie_header(cookie_header: &str) -> Option<&str> {
    cookie_value(cookie_header, DEVICE_COOKIE_NAME)
}

/// Whether a browser that loaded a page from `host` (the `Host` header: a name or address,
/// perhaps with a port) keeps the `Secure` session cookie: over HTTPS always (`https`: the
/// connection was TLS, or a trusted proxy said so), over plain HTTP only on localhost, which
/// browsers treat as a secure context (the W3C's "potentially trustworthy origin":
/// `localhost`, `*.localhost`, `127.0.0.0/8`, `::1`).
pub fn secure_cookie_kept(https: bool, host: &str) -> bool {
    if https {
        return true;
    }
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn cookie_value<'a>(cookie_header: &'a str, wanted: &str) -> Option<&'a str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secure_cookie_is_kept_over_https_and_on_localhost_only() {
        for host in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "dash.localhost:80",
            "127.0.0.1:8080",
            "127.3.2.1",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(secure_cookie_kept(false, host), "{host}");
        }
        for host in [
            "10.0.0.5:8080",
            "manager-1",
            "dash.example.com:8080",
            "[fe80::1]:8080",
            "localhost.example.com",
            "",
            "128.0.0.1",
        ] {
            assert!(!secure_cookie_kept(false, host), "{host}");
            assert!(secure_cookie_kept(true, host), "{host}");
        }
    }

    #[test]
    fn the_session_cookie_has_exactly_the_secure_attributes() {
        assert_eq!(
            session_cookie("sks_00ff", SignedDuration::from_hours(12)),
            "__Host-swarmkeeper_session=sks_00ff; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=43200"
        );
    }

    #[test]
    fn clearing_sends_an_empty_value_that_expires_at_once() {
        assert_eq!(
            clear_session_cookie(),
            "__Host-swarmkeeper_session=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"
        );
        assert_eq!(
            session_cookie("x", SignedDuration::from_secs(-5)),
            "__Host-swarmkeeper_session=x; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0"
        );
    }

    #[test]
    fn the_session_token_is_found_among_other_cookies() {
        let header = "theme=dark; __Host-swarmkeeper_session=sks_abc; other=1";
        assert_eq!(session_token_from_cookie_header(header), Some("sks_abc"));
        assert_eq!(
            session_token_from_cookie_header("__Host-swarmkeeper_session=sks_abc"),
            Some("sks_abc")
        );
        assert_eq!(
            session_token_from_cookie_header("swarmkeeper_session=sks_abc"),
            None
        );
        assert_eq!(
            session_token_from_cookie_header("__Host-swarmkeeper_session="),
            None
        );
        assert_eq!(session_token_from_cookie_header(""), None);
        let both = "__Host-swarmkeeper_session=sks_abc; __Host-swarmkeeper_device=skd_def";
        assert_eq!(device_token_from_cookie_header(both), Some("skd_def"));
        assert_eq!(session_token_from_cookie_header(both), Some("sks_abc"));
    }

    #[test]
    fn the_device_cookie_lasts_ninety_days_with_the_same_attributes() {
        assert_eq!(
            device_cookie("skd_00ff"),
            "__Host-swarmkeeper_device=skd_00ff; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=7776000"
        );
    }
}
