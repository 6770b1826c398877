//! A pending alert across a crash of `swarmkeeper server` (issue #15): the real server
//! process, killed with SIGKILL while a `for` runs, started again on the same state directory,
//! the real engine and a webhook receiver on this machine.
//!
//! The rule is service-not-converged (read from Swarm's listing, so no agent is needed), its
//! `for` shortened from 10m to 20s on the API as an admin would, for a service whose task can
//! never be placed (a constraint no node meets). The server dies 14 s into the 20 s, stays
//! down 10 s, and comes back with a grace period of 10 s (`--alert-for-grace-period`):
//!
//! - the alert must not fire at the first evaluation after the start (before, the stored
//!   alert counted the outage as time pending, 24 s of 20, and fired at once, on a listing
//!   the new server had barely made);
//! - it must fire in this second life, the grace after the start (the 6 s it still had to
//!   go are less than the grace), not start its 20 s over (a server that crashes every
//!   15 s would then never fire it).

mod support;

use std::time::{Duration, Instant, SystemTime};

use support::server::Server;
use support::*;

const RULE: &str = "service-not-converged";
const GRACE: Duration = Duration::from_secs(10);

fn next_about(
    messages: &std::sync::mpsc::Receiver<(SystemTime, serde_json::Value)>,
    subject: &str,
    within: Duration,
) -> Option<(SystemTime, serde_json::Value)> {
    next_alert(messages, RULE, subject, within)
}

fn ongoing(server: &Server, token: &str, subject: &str) -> Option<serde_json::Value> {
    ongoing_alert(server, token, RULE, subject)
}

#[test]
fn a_pending_alert_survives_a_crash_and_fires_after_the_grace_period_not_at_once() {
    let mut setup = AlertSetup::start("restart");
    let session = setup.server.login();
    let token = setup.server.token(&session, "restart-rule");
    setup.set_rules(&token, r#"{"service_not_converged": {"for": "20s"}}"#);
    setup.create_unplaceable_service();
    // Pending: seen by the first server.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        if let Some(alert) = ongoing(&setup.server, &token, &setup.service) {
            break alert;
        }
        assert!(Instant::now() < deadline, "no pending {RULE} alert");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(pending["firing_since"].is_null(), "{pending}");
    let active_since: jiff::Timestamp = pending["active_since"].as_str().unwrap().parse().unwrap();
    let crash_at = active_since + jiff::SignedDuration::from_secs(14);
    let wait = crash_at.duration_since(jiff::Timestamp::now());
    std::thread::sleep(Duration::try_from(wait).unwrap_or_default());
    assert!(
        next_about(&setup.messages, &setup.service, Duration::ZERO).is_none(),
        "nothing fires in 14 s of a 20 s `for`"
    );
    let crashed = SystemTime::now();
    // SIGKILL: a crash, not a shutdown.
    setup.restart_server(
        drop,
        Duration::from_secs(10),
        &[("SWARMKEEPER_ALERT_FOR_GRACE_PERIOD", "10s")],
    );
    let started = SystemTime::now();
    let (server, service, messages) = (&setup.server, &setup.service, &setup.messages);
    let token = server.token(&server.login(), "after-restart");
    let restored = ongoing(server, &token, service).expect("the pending alert was forgotten");
    assert!(restored["firing_since"].is_null(), "{restored}");

    let (at, body) = next_about(messages, service, GRACE + Duration::from_secs(8))
        .expect("the restored alert did not fire in the server's second life");
    assert_eq!(body["status"], "firing", "{body}");
    assert_eq!(body["rule"], RULE, "{body}");
    assert_eq!(body["subject"], service.as_str(), "{body}");
    let after_start = at.duration_since(started).unwrap_or_default();
    println!(
        "crashed 14 s into the 20 s `for`, down {:.1} s; firing {:.1} s after the new server \
         answered (grace {GRACE:?})",
        started.duration_since(crashed).unwrap().as_secs_f64(),
        after_start.as_secs_f64()
    );
    // The server answered at most a moment after it read its state: allow 2 s for that.
    assert!(
        after_start >= GRACE - Duration::from_secs(2),
        "fired {after_start:?} after the start, within the grace period"
    );
    let firing = ongoing(server, &token, service).unwrap();
    assert!(!firing["firing_since"].is_null(), "{firing}");
}
