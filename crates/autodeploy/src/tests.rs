use super::*;

fn t(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn digest(n: u8) -> Digest {
    Digest::sha256_from_hex(&format!("{n:02x}").repeat(32)).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn tracker() -> Tracker {
    Tracker::new(
        "svc1",
        Settings {
            interval: DEFAULT_INTERVAL,
        },
        t("2026-11-26T14:00:00Z"),
    )
}

#[test]
fn reads_labels() {
    assert_eq!(settings(&labels(&[])), Ok(None));
    assert_eq!(settings(&labels(&[(LABEL_ENABLED, "false")])), Ok(None));
    assert_eq!(
        settings(&labels(&[(LABEL_ENABLED, "true")])),
        Ok(Some(Settings {
            interval: Duration::from_secs(60)
        }))
    );
    assert_eq!(
        settings(&labels(&[(LABEL_ENABLED, "true"), (LABEL_INTERVAL, "5m")])),
        Ok(Some(Settings {
            interval: Duration::from_secs(300)
        }))
    );
    // The interval alone does not turn it on.
    assert_eq!(settings(&labels(&[(LABEL_INTERVAL, "5m")])), Ok(None));
    let err = settings(&labels(&[(LABEL_ENABLED, "yes")])).unwrap_err();
    assert_eq!(err.label, LABEL_ENABLED);
    let err = settings(&labels(&[
        (LABEL_ENABLED, "true"),
        (LABEL_INTERVAL, "soon"),
    ]))
    .unwrap_err();
    assert_eq!(err.label, LABEL_INTERVAL);
    assert!(err
        .to_string()
        .starts_with("label swarmkeeper.autodeploy.interval=\"soon\""));
    let err = settings(&labels(&[(LABEL_ENABLED, "true"), (LABEL_INTERVAL, "1s")])).unwrap_err();
    assert!(err.reason.contains("at least 10s"), "{err}");
}

#[test]
fn follows_the_tag_swarm_pinned() {
    let hex = "ab".repeat(32);
    let f = followed(&format!("registry.example:5000/app:1@sha256:{hex}")).unwrap();
    assert_eq!(f.tag.to_string(), "registry.example:5000/app:1");
    assert_eq!(f.running.unwrap().encoded(), hex);
    let f = followed("busybox").unwrap();
    assert_eq!(f.tag.to_string(), "docker.io/library/busybox:latest");
    assert_eq!(f.running, None);
    assert_eq!(
        followed(&format!("app@sha256:{hex}")),
        Err(FollowError::NoTag)
    );
    assert!(matches!(followed("App:1"), Err(FollowError::Reference(_))));
}

#[test]
fn freshness_compares_the_running_digest_with_the_registry() {
    assert_eq!(freshness(Some(&digest(1)), &digest(1)), Freshness::Current);
    assert_eq!(freshness(Some(&digest(1)), &digest(2)), Freshness::Outdated);
    assert_eq!(freshness(None, &digest(2)), Freshness::Unpinned);
    assert_eq!(Freshness::Outdated.as_str(), "outdated");
}

#[test]
fn slots_are_spread_and_stable() {
    let interval = Duration::from_secs(60);
    let now = t("2026-11-26T14:00:00Z");
    let offsets: std::collections::BTreeSet<u64> = (0..1000)
        .map(|i| slot_offset(&format!("service{i}"), interval).as_secs())
        .collect();
    // 1,000 services over 60 one-second buckets: all of them used.
    assert_eq!(offsets.len(), 60);
    let a = next_slot("abc", interval, now);
    assert_eq!(a, next_slot("abc", interval, now));
    assert!(a > now && a <= now + SignedDuration::from_secs(60));
    let b = next_slot("abc", interval, a);
    assert_eq!(b.duration_since(a), SignedDuration::from_secs(60));
}

/// One check per service per interval, however late each one runs (the shell finds a due
/// check at its next wake-up, at most a listing period of 15 s late, and the HEAD takes its
/// time): the next check is the next slot after the check, not an interval after it, so
/// lateness neither adds checks nor lets them drift. At the default 1m interval that is 60
/// checks per service per hour.
#[test]
fn a_service_is_checked_once_per_interval_even_when_checks_run_late() {
    let start = t("2026-11-26T14:00:00Z");
    let end = start + SignedDuration::from_secs(3600);
    for i in 0..1000usize {
        let id = format!("service{i}");
        let mut tr = Tracker::new(
            &id,
            Settings {
                interval: DEFAULT_INTERVAL,
            },
            start,
        );
        let mut slots = Vec::new();
        while tr.next_check() < end {
            let slot = tr.next_check();
            // 0 to 15 s late, differently for each check.
            let late =
                SignedDuration::from_millis(((i * 7919 + slots.len() * 104_729) % 15_000) as i64);
            let now = slot + late;
            assert!(tr.is_due(now));
            assert_eq!(
                tr.checked(now, Some(&digest(1)), CheckResult::Digest(digest(1))),
                Decision::UpToDate
            );
            slots.push(slot);
        }
        assert_eq!(slots.len(), 60, "{id}: {} checks in an hour", slots.len());
        assert!(
            slots
                .windows(2)
                .all(|w| w[1].duration_since(w[0]) == SignedDuration::from_secs(60)),
            "{id}: checks drift: {slots:?}"
        );
    }
}

/// distribution notifies when the manifest is stored and points the tag at it just after: a
/// check right after the notification may read the old digest. Measured on the lab: without
/// re-checks, 2 of 5 notified pushes waited for the next poll slot (43 s) instead of 0.3 s.
#[test]
fn a_notified_digest_is_checked_again_until_the_tag_shows_it() {
    let mut tr = tracker();
    let now = t("2026-11-26T14:00:10Z");
    assert_eq!(tr.pushed(now, Some(&digest(2))), now);
    // The tag still names the old digest: checked again a second later, RECHECKS times.
    let mut at = now;
    for _ in 0..RECHECKS {
        assert!(tr.is_due(at));
        assert_eq!(
            tr.checked(at, Some(&digest(1)), CheckResult::Digest(digest(1))),
            Decision::UpToDate
        );
        assert_eq!(tr.next_check(), at + SignedDuration::from_secs(1));
        at = tr.next_check();
    }
    // Then back to the slots: a notification never makes polling faster for long.
    tr.checked(at, Some(&digest(1)), CheckResult::Digest(digest(1)));
    assert_eq!(tr.next_check(), next_slot("svc1", DEFAULT_INTERVAL, at));

    // The tag shows it at the second check: rolled out, and no more quick checks.
    let mut tr = tracker();
    tr.pushed(now, Some(&digest(2)));
    tr.checked(now, Some(&digest(1)), CheckResult::Digest(digest(1)));
    let at = tr.next_check();
    assert_eq!(
        tr.checked(at, Some(&digest(1)), CheckResult::Digest(digest(2))),
        Decision::RollOut(digest(2))
    );
    tr.finished(at, &digest(2), RolloutOutcome::Converged)
        .unwrap();
    assert_eq!(tr.next_check(), next_slot("svc1", DEFAULT_INTERVAL, at));

    // An error while the tag is being rewritten: checked again a second later, without the
    // backoff; after the re-checks, errors back off as always.
    let mut tr = tracker();
    tr.pushed(now, Some(&digest(2)));
    let failed = || CheckResult::Failed {
        message: "500 Internal Server Error".into(),
        retry_after: None,
    };
    let mut at = now;
    for _ in 0..RECHECKS {
        let until = at + SignedDuration::from_secs(1);
        assert_eq!(tr.checked(at, None, failed()), Decision::BackOff { until });
        at = until;
    }
    assert_eq!(
        tr.checked(at, None, failed()),
        Decision::BackOff {
            until: at + SignedDuration::from_secs(60)
        }
    );

    // A digest that failed before is not waited for; nor is a notification without one.
    let mut tr = tracker();
    tr.pushed(now, Some(&digest(2)));
    tr.checked(now, Some(&digest(1)), CheckResult::Digest(digest(2)));
    tr.finished(
        now,
        &digest(2),
        RolloutOutcome::RolledBack {
            reason: "exit 1".into(),
        },
    )
    .unwrap();
    for pushed in [Some(digest(2)), None] {
        tr.pushed(now, pushed.as_ref());
        tr.checked(now, Some(&digest(1)), CheckResult::Digest(digest(1)));
        assert_eq!(tr.next_check(), next_slot("svc1", DEFAULT_INTERVAL, now));
    }
}

#[test]
fn rolls_out_a_moved_tag_once_and_remembers_a_failure() {
    let mut tr = tracker();
    let now = tr.next_check();
    assert!(tr.is_due(now));
    assert_eq!(
        tr.checked(now, Some(&digest(1)), CheckResult::Digest(digest(1))),
        Decision::UpToDate
    );
    assert_eq!(tr.in_flight(), None);
    let now = tr.next_check();
    assert_eq!(
        tr.checked(now, Some(&digest(1)), CheckResult::Digest(digest(2))),
        Decision::RollOut(digest(2))
    );
    assert!(
        !tr.is_due(now + SignedDuration::from_secs(3600)),
        "no check while in flight"
    );
    assert_eq!(
        tr.checked(now, Some(&digest(1)), CheckResult::Digest(digest(2))),
        Decision::InFlight(digest(2))
    );
    // A stale report changes nothing.
    assert_eq!(
        tr.finished(now, &digest(3), RolloutOutcome::Converged),
        Err(NotInFlight(digest(3)))
    );
    let failed_at = t("2026-11-26T14:02:10Z");
    tr.finished(
        failed_at,
        &digest(2),
        RolloutOutcome::RolledBack {
            reason: "task exited 1".into(),
        },
    )
    .unwrap();
    assert!(tr.is_failed(&digest(2)));
    let now = tr.next_check();
    assert_eq!(
        tr.checked(now, Some(&digest(1)), CheckResult::Digest(digest(2))),
        Decision::KnownBad(digest(2))
    );
    assert_eq!(
        tr.status().describe(&TimeZone::UTC),
        format!(
            "{} failed at 14:02, rolled back; waiting for a newer push",
            digest(2).short()
        )
    );
    // The next push goes out.
    let now = tr.next_check();
    assert_eq!(
        tr.checked(now, Some(&digest(1)), CheckResult::Digest(digest(3))),
        Decision::RollOut(digest(3))
    );
    tr.finished(now, &digest(3), RolloutOutcome::Converged)
        .unwrap();
    assert!(tr
        .status()
        .describe(&TimeZone::UTC)
        .contains(&format!("deployed {}", digest(3).short())));
    // An operator may clear a failure.
    assert!(tr.forget_failure(&digest(2)));
    assert!(!tr.forget_failure(&digest(2)));
}

#[test]
fn a_rollout_that_never_started_is_tried_again() {
    let mut tr = tracker();
    let now = tr.next_check();
    assert_eq!(
        tr.checked(now, None, CheckResult::Digest(digest(2))),
        Decision::RollOut(digest(2))
    );
    tr.finished(
        now,
        &digest(2),
        RolloutOutcome::NotStarted {
            reason: "update out of sequence".into(),
        },
    )
    .unwrap();
    assert!(!tr.is_failed(&digest(2)));
    let now = tr.next_check();
    assert_eq!(
        tr.checked(now, None, CheckResult::Digest(digest(2))),
        Decision::RollOut(digest(2))
    );
    tr.finished(
        now,
        &digest(2),
        RolloutOutcome::Failed {
            reason: "paused".into(),
        },
    )
    .unwrap();
    assert!(tr.is_failed(&digest(2)));
    tr.checked(tr.next_check(), None, CheckResult::Digest(digest(2)));
    assert!(tr
        .status()
        .describe(&TimeZone::UTC)
        .contains("not rolled back; waiting for a newer push"));
}

#[test]
fn backs_off_and_honours_retry_after() {
    let mut tr = tracker();
    let now = tr.next_check();
    // Retry-After longer than the interval wins.
    let d = tr.checked(
        now,
        None,
        CheckResult::TooManyRequests {
            retry_after: Some(Duration::from_secs(600)),
        },
    );
    assert_eq!(
        d,
        Decision::BackOff {
            until: now + SignedDuration::from_secs(600)
        }
    );
    assert!(tr
        .status()
        .describe(&TimeZone::UTC)
        .contains("429 Too Many Requests"));
    // Without Retry-After the wait doubles: 1m, 2m, 4m, ... up to an hour.
    let mut waits = Vec::new();
    let mut now = tr.next_check();
    for _ in 0..9 {
        let Decision::BackOff { until } = tr.checked(
            now,
            None,
            CheckResult::Failed {
                message: "503".into(),
                retry_after: None,
            },
        ) else {
            panic!("expected a backoff");
        };
        waits.push(until.duration_since(now).as_secs());
        now = until;
    }
    assert_eq!(waits, [120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]);
    // A hook does not break through a backoff.
    let before = tr.next_check();
    assert_eq!(tr.hook(now - SignedDuration::from_secs(10)), before);
    // A good answer resets it.
    assert_eq!(
        tr.checked(now, None, CheckResult::Digest(digest(1))),
        Decision::RollOut(digest(1))
    );
    assert!(tr.next_check() <= now + SignedDuration::from_secs(60));
}

#[test]
fn a_hook_brings_the_check_forward_without_deploying() {
    let mut tr = tracker();
    let now = t("2026-11-26T14:00:00.5Z");
    assert_eq!(tr.hook(now), now);
    assert!(tr.is_due(now));
    assert_eq!(tr.in_flight(), None);
}

#[test]
fn changing_the_interval_moves_the_next_slot() {
    let mut tr = tracker();
    let now = t("2026-11-26T14:00:00Z");
    tr.set_settings(
        Settings {
            interval: Duration::from_secs(3600),
        },
        now,
    );
    assert_eq!(
        tr.next_check(),
        next_slot("svc1", Duration::from_secs(3600), now)
    );
}

#[test]
fn describes_each_state() {
    let mut tr = tracker();
    assert!(tr
        .status()
        .describe(&TimeZone::UTC)
        .starts_with("first check at 14:0"));
    let now = t("2026-11-26T14:01:00Z");
    tr.checked(now, None, CheckResult::Digest(digest(4)));
    assert_eq!(
        tr.status().describe(&TimeZone::UTC),
        format!("rolling out {} since 14:01", digest(4).short())
    );
    tr.finished(now, &digest(4), RolloutOutcome::Converged)
        .unwrap();
    tr.checked(now, Some(&digest(4)), CheckResult::Digest(digest(4)));
    let line = tr.status().describe(&TimeZone::UTC);
    assert!(
        line.starts_with(&format!(
            "tag at {} (checked 14:01); deployed",
            digest(4).short()
        )),
        "{line}"
    );
}

#[test]
fn the_state_survives_a_restart() {
    let mut tr = tracker();
    let now = tr.next_check();
    tr.checked(now, None, CheckResult::Digest(digest(2)));
    tr.finished(
        now,
        &digest(2),
        RolloutOutcome::RolledBack {
            reason: "exit 1".into(),
        },
    )
    .unwrap();
    let json = serde_json::to_string(&tr).unwrap();
    let back: Tracker = serde_json::from_str(&json).unwrap();
    assert_eq!(back, tr);
    assert!(back.is_failed(&digest(2)));
}

#[test]
fn a_restart_forgets_the_rollout_in_flight_and_keeps_the_slots_spread() {
    let mut tracker = tracker();
    let now = tracker.next_check();
    assert_eq!(
        tracker.checked(now, Some(&digest(1)), CheckResult::Digest(digest(2))),
        Decision::RollOut(digest(2))
    );
    let mut restarted: Tracker =
        serde_json::from_str(&serde_json::to_string(&tracker).unwrap()).unwrap();
    let later = now + SignedDuration::from_hours(3);
    restarted.resume(later);
    assert!(restarted.in_flight().is_none());
    assert!(restarted.next_check() > later, "not all due at once");
    assert_eq!(
        restarted.next_check(),
        next_slot("svc1", DEFAULT_INTERVAL, later)
    );
    // The digest was not remembered as failed: the next check tries it again.
    let at = restarted.next_check();
    assert_eq!(
        restarted.checked(at, Some(&digest(1)), CheckResult::Digest(digest(2))),
        Decision::RollOut(digest(2))
    );
}
