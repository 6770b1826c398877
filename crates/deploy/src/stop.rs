//! Stopping a run early: an operator's Ctrl-C, `timeout`, a CI job cancelled. The front end
//! asks with [`Stop::request`]; the run stops at its next safe point — while it waits for the
//! lock or for a network being removed, between two service changes, or while it follows a
//! rollout — records what it applied and what it did not, and gives the lock back. It never
//! stops halfway through one engine request, so nothing is left half applied and unrecorded.
//! Swarm carries on with a rollout it has started: stopping swarmkeeper does not stop Swarm.

use std::sync::Arc;

use tokio::sync::watch;

/// A request to stop a run, shared by the front end that asks and the run that obeys.
/// Cloning gives another handle on the same request. The default is never requested.
#[derive(Clone, Debug)]
pub struct Stop(Arc<watch::Sender<Option<String>>>);

impl Default for Stop {
    fn default() -> Stop {
        Stop(Arc::new(watch::Sender::new(None)))
    }
}

impl Stop {
    /// Asks the run to stop; `why` (e.g. `SIGTERM`) is what the record and the messages say.
    /// The first request wins: a later one changes nothing.
    pub fn request(&self, why: &str) {
        self.0.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some(why.to_owned());
            true
        });
    }

    /// Why the run was asked to stop, if it was.
    pub fn requested(&self) -> Option<String> {
        self.0.borrow().clone()
    }

    /// Resolves once a stop is requested (at once when it already was), with why.
    pub async fn wait(&self) -> String {
        let mut watching = self.0.subscribe();
        let why = watching
            .wait_for(Option::is_some)
            .await
            .expect("the sender lives as long as this handle");
        why.clone().unwrap_or_default()
    }
}

/// What a stopped run did and did not do, for the record and the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupted {
    /// What stopped it (e.g. `SIGTERM`).
    pub why: String,
    /// Services the run changed before it stopped (created, updated or removed): Swarm goes on
    /// rolling them out.
    pub applied: Vec<String>,
    /// Services it meant to change and did not get to: they run as before.
    pub not_applied: Vec<String>,
}

impl Interrupted {
    /// One line for the history's summary and the operator: what was applied, what was not,
    /// and that Swarm continues what it started.
    pub fn summary(&self) -> String {
        let mut text = format!("interrupted by {}", self.why);
        if self.applied.is_empty() {
            text.push_str(" before it changed anything");
            if !self.not_applied.is_empty() {
                text.push_str(&format!("; not applied: {}", self.not_applied.join(", ")));
            }
            return text;
        }
        let not_applied = if self.not_applied.is_empty() {
            "none".to_owned()
        } else {
            self.not_applied.join(", ")
        };
        text.push_str(&format!(
            ": applied {}; not applied: {not_applied}; Swarm continues the rollout of what was \
             applied (not followed, not rolled back: see `docker service ps`, or roll back)",
            self.applied.join(", ")
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_first_request_wins_and_wakes_every_waiter() {
        let stop = Stop::default();
        assert_eq!(stop.requested(), None);
        let other = stop.clone();
        let waiter = tokio::spawn(async move { other.wait().await });
        tokio::task::yield_now().await;
        stop.request("SIGTERM");
        stop.request("SIGINT");
        assert_eq!(waiter.await.unwrap(), "SIGTERM");
        assert_eq!(stop.requested().as_deref(), Some("SIGTERM"));
        assert_eq!(
            stop.wait().await,
            "SIGTERM",
            "resolves at once once requested"
        );
    }

    #[test]
    fn the_summary_says_what_was_applied_and_what_was_not() {
        let stopped = Interrupted {
            why: "SIGINT".into(),
            applied: vec!["shop_web".into()],
            not_applied: vec!["shop_api".into(), "shop_db".into()],
        };
        assert_eq!(
            stopped.summary(),
            "interrupted by SIGINT: applied shop_web; not applied: shop_api, shop_db; Swarm \
             continues the rollout of what was applied (not followed, not rolled back: see \
             `docker service ps`, or roll back)"
        );
        let early = Interrupted {
            why: "SIGTERM".into(),
            applied: Vec::new(),
            not_applied: vec!["shop_web".into()],
        };
        assert_eq!(
            early.summary(),
            "interrupted by SIGTERM before it changed anything; not applied: shop_web"
        );
    }
}
