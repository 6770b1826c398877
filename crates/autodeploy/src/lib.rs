//! Auto-deploy decisions, pure: no I/O, no clock (every function is given `now`).
//!
//! A service labelled `swarmkeeper.autodeploy=true` follows its image's tag. The shell (the
//! server) keeps one [`Tracker`] per such service, asks it when the tag is due for a check,
//! asks the registry for the tag's digest (a manifest `HEAD`), and hands the answer to
//! [`Tracker::checked`], which says whether to roll out. The rollout itself goes through the
//! deploy engine; its outcome comes back through [`Tracker::finished`].
//!
//! Invariants (each a property test in `tests/properties.rs`):
//! - At most one rollout in flight per service: [`Tracker::checked`] answers
//!   [`Decision::RollOut`] only when none is, and records it as in flight at once.
//! - A digest whose rollout failed (rolled back, or failed without rollback) is never rolled
//!   out again by auto-deploy; the next different digest is. Only an operator forgets it
//!   ([`Tracker::forget_failure`]). The memory holds the newest [`FAILED_MEMORY`] failures.
//! - A digest equal to the running one is never rolled out: zero spec writes when nothing moved.
//! - A hook (registry notification, CI) only brings the next check forward; it never names
//!   what to deploy.
//! - Checks are spread over the interval by a deterministic offset from the service id, so a
//!   thousand services polled every minute do not all ask at once, and a restart keeps each
//!   service's slot. After a throttled or failed check the next one waits at least the
//!   registry's `Retry-After` and doubles the wait on each further failure, up to
//!   [`MAX_BACKOFF`].

mod notification;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use jiff::{tz::TimeZone, SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use swarmkeeper_reference::{Digest, Reference, ReferenceError};

pub use notification::{pushed_tags, EnvelopeError, PushedTag};

/// `swarmkeeper.autodeploy=true` on a service turns auto-deploy on (`false` or absent: off).
pub const LABEL_ENABLED: &str = "swarmkeeper.autodeploy";
/// `swarmkeeper.autodeploy.interval=DURATION` (`90s`, `2m`, `1h`) overrides the poll interval.
pub const LABEL_INTERVAL: &str = "swarmkeeper.autodeploy.interval";
/// The poll interval without the label.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// The shortest interval the label may ask for: faster polling only loads the registry (pushes
/// that must go out at once have the hooks).
pub const MIN_INTERVAL: Duration = Duration::from_secs(10);
/// The longest wait after failed checks, unless the registry's `Retry-After` asks for more.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The longest `Retry-After` honoured; a larger one is read as this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);
/// How many failed digests a service remembers (the newest ones).
pub const FAILED_MEMORY: usize = 100;

/// A service's auto-deploy settings, from its labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// How often the tag is checked.
    pub interval: Duration,
}

/// A label that auto-deploy cannot read; the service page shows it and the service is not
/// auto-deployed until it is fixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelError {
    /// The label's name.
    pub label: &'static str,
    /// Its value as written.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for LabelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "label {}={:?}: {}", self.label, self.value, self.reason)
    }
}

impl std::error::Error for LabelError {}

/// Reads a service's labels: `Ok(None)` when auto-deploy is off, the settings when
/// `swarmkeeper.autodeploy=true`. Errors: the switch is neither `true` nor `false`, or the
/// interval is not a duration (`swarmkeeper_gc::parse_duration`'s grammar, the one every
/// swarmkeeper duration uses) or is shorter than [`MIN_INTERVAL`].
pub fn settings(labels: &BTreeMap<String, String>) -> Result<Option<Settings>, LabelError> {
    let enabled = match labels.get(LABEL_ENABLED).map(|v| v.trim()) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(LabelError {
                label: LABEL_ENABLED,
                value: other.to_string(),
                reason: "must be true or false".into(),
            })
        }
    };
    if !enabled {
        return Ok(None);
    }
    let interval = match labels.get(LABEL_INTERVAL) {
        None => DEFAULT_INTERVAL,
        Some(text) => {
            let error = |reason: String| LabelError {
                label: LABEL_INTERVAL,
                value: text.clone(),
                reason,
            };
            let interval = swarmkeeper_gc::parse_duration(text).map_err(error)?;
            if interval < MIN_INTERVAL {
                return Err(error(format!(
                    "must be at least {}s (a hook rolls a push out at once)",
                    MIN_INTERVAL.as_secs()
                )));
            }
            interval
        }
    };
    Ok(Some(Settings { interval }))
}

/// What a service's image follows: the tag, and the digest it runs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed {
    /// The repository at the followed tag (no digest): what the registry is asked about.
    pub tag: Reference,
    /// The digest Swarm pinned (`image:tag@sha256:…`); `None` for an image deployed unpinned.
    pub running: Option<Digest>,
}

/// Why a service's image cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowError {
    /// The image is not a reference docker would accept.
    Reference(ReferenceError),
    /// `app@sha256:…` names no tag: there is nothing to follow.
    NoTag,
}

impl fmt::Display for FollowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FollowError::Reference(e) => e.fmt(f),
            FollowError::NoTag => {
                f.write_str("the image is pinned by digest with no tag: there is no tag to follow")
            }
        }
    }
}

impl std::error::Error for FollowError {}

/// What the service's image (`ContainerSpec.Image`, e.g. `app:1@sha256:…`) follows. No tag and
/// no digest means `latest`, as for docker.
pub fn followed(image: &str) -> Result<Followed, FollowError> {
    let reference = Reference::parse(image).map_err(FollowError::Reference)?;
    let tag = reference.tag_or_latest().ok_or(FollowError::NoTag)?;
    Ok(Followed {
        tag: reference.with_tag(tag),
        running: reference.digest().cloned(),
    })
}

/// How the digest a service runs compares with its tag's digest in the registry: the
/// "outdated" badge of every service page and `swarmkeeper outdated` read it from here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Freshness {
    /// The service runs the digest the tag points at.
    Current,
    /// The tag moved: the registry has another digest than the one the service runs.
    Outdated,
    /// The service's image is not pinned to a digest (deployed without a registry, or with
    /// `--no-resolve-image`): what it runs cannot be compared.
    Unpinned,
}

impl Freshness {
    /// The word a table or a badge shows: `current`, `outdated`, `unpinned`.
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Current => "current",
            Freshness::Outdated => "outdated",
            Freshness::Unpinned => "unpinned",
        }
    }
}

/// Compares the running digest (`None`: not pinned) with the registry's.
pub fn freshness(running: Option<&Digest>, registry: &Digest) -> Freshness {
    match running {
        None => Freshness::Unpinned,
        Some(running) if running == registry => Freshness::Current,
        Some(_) => Freshness::Outdated,
    }
}

/// The service's offset within each interval, from its id (FNV-1a, so the same on every run
/// and every machine).
pub fn slot_offset(service_id: &str, interval: Duration) -> Duration {
    let hash = service_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let millis = interval.as_millis().max(1) as u64;
    Duration::from_millis(hash % millis)
}

/// The service's next slot strictly after `after`: the instant `k × interval + offset` (from
/// the Unix epoch) that follows it. Consecutive slots are one interval apart.
pub fn next_slot(service_id: &str, interval: Duration, after: Timestamp) -> Timestamp {
    let interval_ms = interval.as_millis().max(1) as i128;
    let offset_ms = slot_offset(service_id, interval).as_millis() as i128;
    let after_ms = after.as_millisecond() as i128;
    let k = (after_ms - offset_ms).div_euclid(interval_ms) + 1;
    let slot = k * interval_ms + offset_ms;
    Timestamp::from_millisecond(slot as i64).unwrap_or(Timestamp::MAX)
}

/// What the registry said about the followed tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// The tag's digest (the one docker would pin).
    Digest(Digest),
    /// HTTP 429, with the registry's `Retry-After` if it gave one.
    TooManyRequests { retry_after: Option<Duration> },
    /// The registry could not be reached, refused the credentials, does not know the tag, or
    /// answered an error; `message` says which, as the page shows it.
    Failed {
        message: String,
        retry_after: Option<Duration>,
    },
}

/// What to do after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The registry's digest is the running one: nothing to do, no spec written.
    UpToDate,
    /// Update the service to this digest (through the deploy engine), then call
    /// [`Tracker::finished`]. Already recorded as in flight.
    RollOut(Digest),
    /// A rollout is already in flight; nothing else starts.
    InFlight(Digest),
    /// The registry's digest failed before: wait for a newer push.
    KnownBad(Digest),
    /// The check failed; the next one is at `until`.
    BackOff { until: Timestamp },
}

/// How a rollout ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum RolloutOutcome {
    /// Every task runs the new digest.
    Converged,
    /// It failed and the service was rolled back: the digest is remembered as failed.
    RolledBack { reason: String },
    /// It failed and could not be rolled back (paused, or the rollback failed too): the digest
    /// is remembered as failed.
    Failed { reason: String },
    /// It never started (the engine refused, the service changed meanwhile): nothing is known
    /// about the digest, so it is tried again at the next check.
    NotStarted { reason: String },
}

/// A digest remembered as failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub digest: Digest,
    pub at: Timestamp,
    /// `true`: the service was rolled back to what it ran before.
    pub rolled_back: bool,
    pub reason: String,
}

/// The rollout in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    pub digest: Digest,
    pub since: Timestamp,
}

/// The last check and what it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCheck {
    pub at: Timestamp,
    /// The registry's digest, when the check got one.
    pub registry_digest: Option<Digest>,
    /// Why the check failed, when it did (`"429 Too Many Requests"`, the registry's error).
    pub error: Option<String>,
}

/// The last rollout that converged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    pub digest: Digest,
    pub at: Timestamp,
}

/// One service's auto-deploy state: what the shell keeps (serialisable, so it survives a
/// restart) and feeds back with each event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracker {
    service_id: String,
    interval: Duration,
    next_check: Timestamp,
    /// Checks that failed in a row; 0 after a good one.
    consecutive_failures: u32,
    last_check: Option<LastCheck>,
    in_flight: Option<InFlight>,
    /// Oldest first, at most [`FAILED_MEMORY`].
    failed: Vec<Failure>,
    last_deployed: Option<Deployed>,
    /// The digest a registry notification said was pushed, while checks have not read it yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    awaited: Option<Awaited>,
}

/// A pushed digest the tag does not point at yet, and how many quick re-checks are left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Awaited {
    digest: Digest,
    rechecks_left: u8,
}

/// Re-checks after a registry notification whose digest the tag did not show yet, each
/// [`RECHECK_AFTER`] after the last: distribution notifies when the manifest is stored, and
/// points the tag at it just after, so the first check can still read the old digest.
pub const RECHECKS: u8 = 5;
/// See [`RECHECKS`].
pub const RECHECK_AFTER: Duration = Duration::from_secs(1);

impl Tracker {
    /// A service seen for the first time: its first check is at its next slot.
    pub fn new(service_id: &str, settings: Settings, now: Timestamp) -> Tracker {
        Tracker {
            service_id: service_id.to_string(),
            interval: settings.interval,
            next_check: next_slot(service_id, settings.interval, now),
            consecutive_failures: 0,
            last_check: None,
            in_flight: None,
            failed: Vec::new(),
            last_deployed: None,
            awaited: None,
        }
    }

    /// The labels changed: a new interval takes effect from the next slot (a pending backoff
    /// is kept).
    pub fn set_settings(&mut self, settings: Settings, now: Timestamp) {
        if settings.interval == self.interval {
            return;
        }
        self.interval = settings.interval;
        if self.consecutive_failures == 0 {
            self.next_check = next_slot(&self.service_id, self.interval, now);
        }
    }

    /// The server started again with this remembered state. A rollout that was in flight when
    /// it stopped has no result to wait for: nothing is known about its digest, which is
    /// checked again (a rollout that did converge then reads as up to date). A check that fell
    /// due while the server was down happens at the service's next slot, so a restart does not
    /// ask for every tag at once; a backoff still pending is kept.
    pub fn resume(&mut self, now: Timestamp) {
        self.in_flight = None;
        if self.next_check <= now {
            self.next_check = next_slot(&self.service_id, self.interval, now);
        }
    }

    /// When the next check is due.
    pub fn next_check(&self) -> Timestamp {
        self.next_check
    }

    /// Whether a check is due at `now` (never while a rollout is in flight: its result is
    /// awaited first).
    pub fn is_due(&self, now: Timestamp) -> bool {
        self.in_flight.is_none() && now >= self.next_check
    }

    /// The rollout in flight, if any.
    pub fn in_flight(&self) -> Option<&InFlight> {
        self.in_flight.as_ref()
    }

    /// The remembered failures, oldest first.
    pub fn failures(&self) -> &[Failure] {
        &self.failed
    }

    /// Whether `digest` is remembered as failed.
    pub fn is_failed(&self, digest: &Digest) -> bool {
        self.failed.iter().any(|f| &f.digest == digest)
    }

    /// A hook (registry notification, CI, "check now") asks for a check: it is due now, or when
    /// a backoff the registry asked for ends. Returns when. Never deploys by itself.
    pub fn hook(&mut self, now: Timestamp) -> Timestamp {
        if self.consecutive_failures == 0 || self.next_check <= now {
            self.next_check = now;
        }
        self.next_check
    }

    /// A registry notification says `digest` was pushed to the followed tag: a check is due now
    /// (as [`Tracker::hook`]), and until a check reads that digest, one that reads another or
    /// fails (without the registry asking for a wait) is repeated [`RECHECK_AFTER`] later, at
    /// most [`RECHECKS`] times in all. A digest that failed before is not waited for.
    pub fn pushed(&mut self, now: Timestamp, digest: Option<&Digest>) -> Timestamp {
        self.awaited = digest.filter(|d| !self.is_failed(d)).map(|d| Awaited {
            digest: d.clone(),
            rechecks_left: RECHECKS,
        });
        self.hook(now)
    }

    /// Records a check's result and decides. `running` is the digest the service runs now, read
    /// from the engine just before the check (`None` when its image is not pinned).
    pub fn checked(
        &mut self,
        now: Timestamp,
        running: Option<&Digest>,
        result: CheckResult,
    ) -> Decision {
        let registry = match result {
            CheckResult::Digest(digest) => digest,
            CheckResult::TooManyRequests { retry_after } => {
                return self.back_off(now, "429 Too Many Requests".into(), retry_after)
            }
            CheckResult::Failed {
                message,
                retry_after,
            } => return self.back_off(now, message, retry_after),
        };
        self.consecutive_failures = 0;
        self.next_check = next_slot(&self.service_id, self.interval, now);
        if let Some(awaited) = &mut self.awaited {
            if awaited.digest == registry || awaited.rechecks_left == 0 {
                self.awaited = None;
            } else {
                awaited.rechecks_left -= 1;
                self.next_check = now
                    .checked_add(SignedDuration::try_from(RECHECK_AFTER).unwrap_or_default())
                    .unwrap_or(self.next_check);
            }
        }
        self.last_check = Some(LastCheck {
            at: now,
            registry_digest: Some(registry.clone()),
            error: None,
        });
        if running == Some(&registry) {
            return Decision::UpToDate;
        }
        if let Some(in_flight) = &self.in_flight {
            return Decision::InFlight(in_flight.digest.clone());
        }
        if self.is_failed(&registry) {
            return Decision::KnownBad(registry);
        }
        self.in_flight = Some(InFlight {
            digest: registry.clone(),
            since: now,
        });
        Decision::RollOut(registry)
    }

    fn back_off(
        &mut self,
        now: Timestamp,
        message: String,
        retry_after: Option<Duration>,
    ) -> Decision {
        self.last_check = Some(LastCheck {
            at: now,
            registry_digest: None,
            error: Some(message),
        });
        // Right after a notified push the tag is being rewritten (distribution writes its
        // link file in place): an error then is retried as soon as a tag that had not moved
        // yet would be, unless the registry asked for a wait.
        if let Some(awaited) = self.awaited.as_mut().filter(|a| a.rechecks_left > 0) {
            if retry_after.is_none() {
                awaited.rechecks_left -= 1;
                let until = now
                    .checked_add(SignedDuration::try_from(RECHECK_AFTER).unwrap_or_default())
                    .unwrap_or(Timestamp::MAX);
                self.next_check = until;
                return Decision::BackOff { until };
            }
        }
        self.awaited = None;
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let doubling = 2u32.saturating_pow(self.consecutive_failures - 1);
        let backoff = self
            .interval
            .saturating_mul(doubling)
            .min(MAX_BACKOFF.max(self.interval));
        let wait = backoff.max(retry_after.unwrap_or_default().min(MAX_RETRY_AFTER));
        let until = now
            .checked_add(SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX))
            .unwrap_or(Timestamp::MAX);
        self.next_check = until;
        Decision::BackOff { until }
    }

    /// The rollout of `digest` ended. Errors when no rollout of that digest is in flight (a
    /// stale or duplicate report), changing nothing.
    pub fn finished(
        &mut self,
        now: Timestamp,
        digest: &Digest,
        outcome: RolloutOutcome,
    ) -> Result<(), NotInFlight> {
        match &self.in_flight {
            Some(in_flight) if &in_flight.digest == digest => {}
            _ => return Err(NotInFlight(digest.clone())),
        }
        self.in_flight = None;
        let (rolled_back, reason) = match outcome {
            RolloutOutcome::Converged => {
                self.last_deployed = Some(Deployed {
                    digest: digest.clone(),
                    at: now,
                });
                return Ok(());
            }
            RolloutOutcome::NotStarted { .. } => return Ok(()),
            RolloutOutcome::RolledBack { reason } => (true, reason),
            RolloutOutcome::Failed { reason } => (false, reason),
        };
        self.failed.retain(|f| &f.digest != digest);
        self.failed.push(Failure {
            digest: digest.clone(),
            at: now,
            rolled_back,
            reason,
        });
        if self.failed.len() > FAILED_MEMORY {
            let excess = self.failed.len() - FAILED_MEMORY;
            self.failed.drain(..excess);
        }
        Ok(())
    }

    /// An operator clears a failed digest so that auto-deploy may try it again. Returns whether
    /// it was remembered.
    pub fn forget_failure(&mut self, digest: &Digest) -> bool {
        let before = self.failed.len();
        self.failed.retain(|f| &f.digest != digest);
        before != self.failed.len()
    }

    /// What the service page shows.
    pub fn status(&self) -> Status<'_> {
        if let Some(in_flight) = &self.in_flight {
            return Status::RollingOut(in_flight);
        }
        let Some(check) = &self.last_check else {
            return Status::Waiting {
                next_check: self.next_check,
            };
        };
        if let Some(error) = &check.error {
            return Status::BackingOff {
                error,
                at: check.at,
                next_check: self.next_check,
            };
        }
        let newest_failure = check
            .registry_digest
            .as_ref()
            .and_then(|d| self.failed.iter().find(|f| &f.digest == d));
        if let Some(failure) = newest_failure {
            return Status::WaitingForNewerPush(failure);
        }
        Status::Following {
            registry_digest: check.registry_digest.as_ref(),
            checked_at: check.at,
            last_deployed: self.last_deployed.as_ref(),
            next_check: self.next_check,
        }
    }
}

/// [`Tracker::finished`] was told about a rollout that is not in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotInFlight(pub Digest);

impl fmt::Display for NotInFlight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no rollout of {} is in flight", self.0)
    }
}

impl std::error::Error for NotInFlight {}

/// A service's auto-deploy state as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status<'a> {
    /// Not checked yet.
    Waiting { next_check: Timestamp },
    /// A rollout is in flight.
    RollingOut(&'a InFlight),
    /// The registry's digest failed before.
    WaitingForNewerPush(&'a Failure),
    /// The last check failed; checks back off.
    BackingOff {
        error: &'a str,
        at: Timestamp,
        next_check: Timestamp,
    },
    /// The last check succeeded.
    Following {
        registry_digest: Option<&'a Digest>,
        checked_at: Timestamp,
        last_deployed: Option<&'a Deployed>,
        next_check: Timestamp,
    },
}

impl Status<'_> {
    /// One line for the page, times as `HH:MM` in `tz`, e.g. "sha256:0123456789ab failed at
    /// 14:02, rolled back; waiting for a newer push".
    pub fn describe(&self, tz: &TimeZone) -> String {
        let hm = |t: &Timestamp| {
            t.to_zoned_datetime(tz.clone())
                .strftime("%H:%M")
                .to_string()
        };
        match self {
            Status::Waiting { next_check } => format!("first check at {}", hm(next_check)),
            Status::RollingOut(in_flight) => format!(
                "rolling out {} since {}",
                in_flight.digest.short(),
                hm(&in_flight.since)
            ),
            Status::WaitingForNewerPush(failure) => format!(
                "{} failed at {}, {}; waiting for a newer push",
                failure.digest.short(),
                hm(&failure.at),
                if failure.rolled_back {
                    "rolled back"
                } else {
                    "not rolled back"
                }
            ),
            Status::BackingOff {
                error,
                at,
                next_check,
            } => format!(
                "check at {} failed: {error}; next check at {}",
                hm(at),
                hm(next_check)
            ),
            Status::Following {
                registry_digest,
                checked_at,
                last_deployed,
                next_check,
            } => {
                let mut line = match registry_digest {
                    Some(d) => format!("tag at {} (checked {})", d.short(), hm(checked_at)),
                    None => format!("checked {}", hm(checked_at)),
                };
                if let Some(deployed) = last_deployed {
                    line.push_str(&format!(
                        "; deployed {} at {}",
                        deployed.digest.short(),
                        hm(&deployed.at)
                    ));
                }
                line.push_str(&format!("; next check at {}", hm(next_check)));
                line
            }
        }
    }
}

#[cfg(test)]
mod tests;
