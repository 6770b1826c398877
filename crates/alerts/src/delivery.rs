//! Which message is due to which channel when, given how its deliveries went: a failed
//! delivery is tried again with back-off, per channel, until it gets through or a newer
//! message about the same alert replaces it.
//!
//! Alertmanager's notifier keeps a notification log per receiver and retries a failed
//! notification with exponential back-off; a receiver that never had an alert's firing
//! notification gets no resolved one for it (its `DedupStage`). The same here, per channel:
//!
//! - a message being sent, or waiting for its next attempt, is held per (rule, subject,
//!   channel); a newer message about the same alert to that channel replaces it (a repeat
//!   replaces an undelivered firing message; a resolution replaces one in flight);
//! - a resolution for a channel whose firing message is still waiting (it never got it) is
//!   not sent there, and the waiting firing message is dropped: the channel never heard of
//!   the alert, so it hears nothing of its end;
//! - a failed attempt waits [`Backoff::after`] its failures before the next; a channel that
//!   works is never sent a message again because another one failed.
//!
//! Nothing here decides whether an alert fires or resolves: the engine's state moves on
//! whatever the deliveries did, so a resolution is recorded when the condition ends.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use crate::message::{Message, Status};
use crate::observe::signed;
use crate::rules::RuleId;

/// The wait between attempts of a failed delivery: `first` after the first failure,
/// doubling with each failure after, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after `failures` failed attempts in a row (`first` for 0 and 1).
    pub fn after(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first
            .checked_mul(1 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// A message one channel has not had yet: being sent, or waiting for its next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Undelivered {
    message: Message,
    /// Failed attempts so far (each one the notifier's own few tries).
    failures: u32,
    /// When it is tried next; `None` while an attempt is under way.
    next_at: Option<Timestamp>,
    /// The history row that tells of it (the shell's id), if written.
    record: Option<i64>,
}

/// One attempt to make now: a message waiting for `channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub message: Message,
    pub channel: String,
    /// Failed attempts before this one.
    pub failures: u32,
    /// The history row that tells of the message, if written.
    pub record: Option<i64>,
}

/// Where a message goes now, decided by [`Outbox::route`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sending {
    /// The channels to send it to now.
    pub send: Vec<String>,
    /// The channels a resolution is not sent to because their firing message never reached
    /// them (that firing message is dropped), with the history row that told of it.
    pub dropped: Vec<(String, Option<i64>)>,
}

/// Every message a channel has not had yet, per (rule, subject, channel). The server stores
/// it ([`Outbox::waiting`]) whenever it changes and restores it at a start
/// ([`Outbox::restored`]), as Alertmanager's notification log makes a restarted Alertmanager
/// send again what no receiver acknowledged: a restart loses no undelivered message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outbox {
    waiting: BTreeMap<(RuleId, String, String), Undelivered>,
}

/// A message one channel has not had yet, as it is stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Waiting {
    pub message: Message,
    pub channel: String,
    /// Failed attempts so far.
    pub failures: u32,
    /// The history row that tells of the message, if written.
    pub record: Option<i64>,
}

impl Outbox {
    /// Everything waiting, by rule, subject then channel: what the server stores.
    pub fn waiting(&self) -> Vec<Waiting> {
        self.waiting
            .iter()
            .map(|((_, _, channel), w)| Waiting {
                message: w.message.clone(),
                channel: channel.clone(),
                failures: w.failures,
                record: w.record,
            })
            .collect()
    }

    /// The outbox a start restores from what was stored: each message due at `now` (the
    /// start), its failures kept so its back-off goes on; an attempt the stop cut off is made
    /// again.
    pub fn restored(waiting: Vec<Waiting>, now: Timestamp) -> Outbox {
        let waiting = waiting
            .into_iter()
            .map(|w| {
                let key = (w.message.rule, w.message.subject.clone(), w.channel);
                let undelivered = Undelivered {
                    message: w.message,
                    failures: w.failures,
                    next_at: Some(now),
                    record: w.record,
                };
                (key, undelivered)
            })
            .collect();
        Outbox { waiting }
    }

    /// Takes a message decided now for `channels`: the channels to send it to at once (each
    /// then holds it as being sent), and those it is dropped for (a resolution whose firing
    /// message is still waiting there).
    pub fn route(&mut self, message: &Message, channels: &[String]) -> Sending {
        let mut sending = Sending::default();
        for channel in channels {
            let key = (message.rule, message.subject.clone(), channel.clone());
            let before = self.waiting.remove(&key);
            if let Some(waiting) = &before {
                let never_got_it = message.status == Status::Resolved
                    && waiting.message.status == Status::Firing
                    && waiting.next_at.is_some();
                if never_got_it {
                    sending.dropped.push((channel.clone(), waiting.record));
                    continue;
                }
            }
            self.waiting.insert(
                key,
                Undelivered {
                    message: message.clone(),
                    failures: 0,
                    next_at: None,
                    record: None,
                },
            );
            sending.send.push(channel.clone());
        }
        sending
    }

    /// The attempts due at `now`, by rule, subject then channel; each is then held as being
    /// sent until [`Outbox::delivered`] or [`Outbox::failed`] tells how it went.
    pub fn due(&mut self, now: Timestamp) -> Vec<Attempt> {
        let mut due = Vec::new();
        for ((_, _, channel), waiting) in self.waiting.iter_mut() {
            if waiting.next_at.is_some_and(|at| at <= now) {
                waiting.next_at = None;
                due.push(Attempt {
                    message: waiting.message.clone(),
                    channel: channel.clone(),
                    failures: waiting.failures,
                    record: waiting.record,
                });
            }
        }
        due
    }

    /// `message` reached `channel`: it is forgotten there (unless a newer message replaced
    /// it meanwhile).
    pub fn delivered(&mut self, message: &Message, channel: &str) {
        let key = (message.rule, message.subject.clone(), channel.to_string());
        if self
            .waiting
            .get(&key)
            .is_some_and(|w| &w.message == message)
        {
            self.waiting.remove(&key);
        }
    }

    /// `message` did not reach `channel` at `now`: it is tried again after
    /// `backoff.after(failures)`, its history row being `record` (unless a newer message
    /// replaced it meanwhile). Returns when it is tried next, if it is.
    pub fn failed(
        &mut self,
        message: &Message,
        channel: &str,
        record: Option<i64>,
        backoff: Backoff,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let key = (message.rule, message.subject.clone(), channel.to_string());
        let waiting = self
            .waiting
            .get_mut(&key)
            .filter(|w| &w.message == message)?;
        waiting.failures += 1;
        waiting.record = record.or(waiting.record);
        let next = now
            .saturating_add(signed(backoff.after(waiting.failures)))
            .ok()?;
        waiting.next_at = Some(next);
        Some(next)
    }

    /// Forgets what waits for channels not in `channels` (removed ones).
    pub fn keep_channels(&mut self, channels: &[String]) {
        self.waiting
            .retain(|(_, _, channel), _| channels.contains(channel));
    }

    /// How many messages wait for a channel (being sent or for their next attempt).
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::engine::AlertState;
    use crate::observe::{NodeObservation, Observation};
    use crate::route::evaluate_routed;
    use crate::rules::AlertRules;

    fn t(seconds: i64) -> Timestamp {
        "2026-11-26T12:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_secs(seconds)
    }

    const BACKOFF: Backoff = Backoff {
        first: Duration::from_secs(3),
        max: Duration::from_secs(300),
    };

    fn message(status: Status) -> Message {
        Message {
            status,
            rule: RuleId::RolledBack,
            subject: "web".into(),
            summary: "web was rolled back".into(),
            started_at: t(0),
            ended_at: (status == Status::Resolved).then(|| t(100)),
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_backoff_doubles_from_its_first_wait_up_to_its_max() {
        let waits: Vec<u64> = (0..10).map(|n| BACKOFF.after(n).as_secs()).collect();
        assert_eq!(waits, [3, 3, 6, 12, 24, 48, 96, 192, 300, 300]);
        assert_eq!(BACKOFF.after(u32::MAX), BACKOFF.max);
    }

    /// Tryout 12 finding 6: one channel down, one working. The working one gets the firing
    /// message once; the one down is tried again with back-off, not at every evaluation.
    #[test]
    fn a_failed_channel_is_retried_with_backoff_and_the_working_one_is_sent_once() {
        let mut outbox = Outbox::default();
        let firing = message(Status::Firing);
        let sending = outbox.route(&firing, &names(&["down", "up"]));
        assert_eq!(sending.send, ["down", "up"]);
        outbox.delivered(&firing, "up");
        assert_eq!(
            outbox.failed(&firing, "down", Some(7), BACKOFF, t(0)),
            Some(t(3))
        );
        // An evaluation every 3 s for 11.5 minutes: attempts at 3, 9, 21, 45, 93, 189, 381, 681.
        let mut attempts = Vec::new();
        for now in (1..=230).map(|i| t(i * 3)) {
            for attempt in outbox.due(now) {
                assert_eq!(attempt.channel, "down", "the working channel is done");
                assert_eq!(attempt.record, Some(7));
                attempts.push(now.duration_since(t(0)).as_secs());
                outbox.failed(&attempt.message, &attempt.channel, None, BACKOFF, now);
            }
        }
        assert_eq!(attempts, [3, 9, 21, 45, 93, 189, 381, 681]);
        // It comes back: delivered, forgotten.
        let attempt = outbox.due(t(981)).pop().unwrap();
        assert_eq!(attempt.failures, 9);
        outbox.delivered(&attempt.message, "down");
        assert!(outbox.is_empty());
    }

    /// Tryout 12 finding 5, Alertmanager's rule: a channel that never got the firing message
    /// gets no resolution; the waiting firing message goes too. A channel that got it gets the
    /// resolution.
    #[test]
    fn a_resolution_drops_a_firing_message_that_never_got_through() {
        let mut outbox = Outbox::default();
        let firing = message(Status::Firing);
        outbox.route(&firing, &names(&["down", "up"]));
        outbox.delivered(&firing, "up");
        outbox.failed(&firing, "down", Some(7), BACKOFF, t(0));
        let resolved = message(Status::Resolved);
        let sending = outbox.route(&resolved, &names(&["down", "up"]));
        assert_eq!(sending.send, ["up"]);
        assert_eq!(sending.dropped, [("down".to_string(), Some(7))]);
        outbox.delivered(&resolved, "up");
        assert!(outbox.is_empty());
        assert!(outbox.due(t(10_000)).is_empty());
    }

    /// A resolution decided while a firing attempt is under way goes out (after it, per
    /// channel), and that attempt's failure is not tried again: it would fire the alert
    /// again at the receiver after its end.
    #[test]
    fn a_resolution_replaces_a_firing_message_in_flight() {
        let mut outbox = Outbox::default();
        let firing = message(Status::Firing);
        outbox.route(&firing, &names(&["hook"]));
        outbox.failed(&firing, "hook", None, BACKOFF, t(0));
        let attempt = outbox.due(t(3)).pop().unwrap();
        let resolved = message(Status::Resolved);
        assert_eq!(outbox.route(&resolved, &names(&["hook"])).send, ["hook"]);
        assert_eq!(
            outbox.failed(&attempt.message, "hook", None, BACKOFF, t(4)),
            None
        );
        outbox.failed(&resolved, "hook", None, BACKOFF, t(5));
        let retried = outbox.due(t(8));
        assert_eq!(retried.len(), 1);
        assert_eq!(retried[0].message, resolved);
        // A removed channel's messages are forgotten.
        outbox.keep_channels(&[]);
        assert!(outbox.is_empty());
    }

    /// The engine and the outbox together, as the server runs them: a node down for 6
    /// minutes, one channel refusing every attempt (alone, as in the tryout, or beside one
    /// that works), an evaluation every 3 s. One firing message decided (one history row), the
    /// working channel sent it once, the one down tried a bounded number of times; when the
    /// node is back, the resolution is decided (recorded) and sent to the working channel only.
    #[test]
    fn an_unreachable_channel_neither_repeats_the_alert_nor_hides_its_resolution() {
        for channels in [names(&["down"]), names(&["down", "up"])] {
            simulate(&channels);
        }
    }

    fn simulate(channels: &[String]) {
        let rules = AlertRules::default();
        let mut state = AlertState::default();
        let mut outbox = Outbox::default();
        let node = |down| Observation {
            nodes: vec![NodeObservation {
                name: "w1".into(),
                down,
                membership: crate::Membership::Member,
                last_report: None,
                ready_since: None,
                report_interval_seconds: 0,
                disk: None,
            }],
            ..Observation::default()
        };
        let mut decided = Vec::new();
        let mut sent_up = Vec::new();
        let mut attempts_down = 0;
        for i in 0..=140 {
            let now = t(i * 3);
            let observation = node(i < 120);
            let mut sends = Vec::new();
            for routed in evaluate_routed(&mut state, &rules, &observation, &[], channels, now) {
                decided.push(routed.message.status);
                let sending = outbox.route(&routed.message, &routed.channels);
                sends.extend(
                    sending
                        .send
                        .into_iter()
                        .map(|c| (routed.message.clone(), c)),
                );
            }
            sends.extend(outbox.due(now).into_iter().map(|a| (a.message, a.channel)));
            for (message, channel) in sends {
                if channel == "up" {
                    sent_up.push(message.status);
                    outbox.delivered(&message, &channel);
                } else {
                    attempts_down += 1;
                    outbox.failed(&message, &channel, None, BACKOFF, now);
                }
            }
        }
        assert_eq!(decided, [Status::Firing, Status::Resolved]);
        if channels.len() == 2 {
            assert_eq!(sent_up, [Status::Firing, Status::Resolved]);
        }
        assert!(attempts_down <= 8, "{attempts_down} attempts in 7 minutes");
        assert!(
            outbox.is_empty(),
            "the resolution dropped the undelivered firing"
        );
    }

    /// A restart loses no undelivered message: what waited (an attempt under way too) is
    /// stored, restored due at the start, its failures and history row kept; once delivered
    /// it is gone, and a resolution decided after the start still drops a firing message the
    /// channel never had.
    #[test]
    fn a_stored_outbox_is_restored_due_at_the_start() {
        let mut outbox = Outbox::default();
        let firing = message(Status::Firing);
        outbox.route(&firing, &names(&["down", "up"]));
        outbox.delivered(&firing, "up");
        outbox.failed(&firing, "down", Some(7), BACKOFF, t(1));
        outbox.failed(&firing, "down", None, BACKOFF, t(4));
        let stored = outbox.waiting();
        assert_eq!(
            stored,
            [Waiting {
                message: firing.clone(),
                channel: "down".into(),
                failures: 2,
                record: Some(7),
            }]
        );
        let text = serde_json::to_string(&stored).unwrap();
        let back: Vec<Waiting> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, stored);

        let mut restored = Outbox::restored(back, t(60));
        assert_eq!(restored.waiting(), stored, "what waited, nothing more");
        assert!(restored.clone().due(t(59)).is_empty(), "due from the start");
        let due = restored.due(t(60));
        assert_eq!(
            due,
            [Attempt {
                message: firing.clone(),
                channel: "down".into(),
                failures: 2,
                record: Some(7),
            }]
        );
        // Failed again: the back-off goes on from its third failure.
        assert_eq!(
            restored.failed(&firing, "down", None, BACKOFF, t(60)),
            Some(t(60 + 12))
        );
        restored.delivered(&firing, "down");
        assert!(restored.is_empty());

        // Resolved while the server was down: the channel never had the firing message.
        let mut restored = Outbox::restored(stored, t(60));
        let sending = restored.route(&message(Status::Resolved), &names(&["down"]));
        assert_eq!(sending.send, Vec::<String>::new());
        assert_eq!(sending.dropped, [("down".to_owned(), Some(7))]);
        assert!(restored.is_empty());
    }
}
