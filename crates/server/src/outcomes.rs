//! What a form's POST hands to the page it redirects to. A form is answered POST → 303 → GET,
//! so that a browser's reload shows the page again rather than posting the form a second
//! time; an outcome that cannot be read again from the cluster or the store (what a channel's
//! or a registry's test answered) waits here for its maker's GET, under a key the redirect
//! carries (`/alerts?tested=KEY`). Kept in memory: a few minutes, a bounded number, read
//! only by the user who made it. A secret shown once (a new hook token) is taken by the first
//! GET: a reload shows the page without it.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Uri;

use crate::error::Format;

/// Outcomes kept at most: the oldest goes first.
const KEPT: usize = 256;
/// How long an outcome is shown after its form was posted (reloads included).
const SHOWN_FOR: Duration = Duration::from_secs(600);

/// The outcomes waiting for their pages.
#[derive(Default)]
pub struct Outcomes(Mutex<Kept>);

#[derive(Default)]
struct Kept {
    next: u64,
    entries: VecDeque<Entry>,
}

struct Entry {
    key: u64,
    user: i64,
    at: Instant,
    value: Arc<dyn Any + Send + Sync>,
}

impl Outcomes {
    /// Keeps `value` for `user` and returns the key the redirect carries.
    pub fn keep<T: Any + Send + Sync>(&self, user: i64, value: T) -> u64 {
        let mut kept = self.0.lock().expect("outcomes lock");
        let now = Instant::now();
        kept.entries
            .retain(|e| now.duration_since(e.at) < SHOWN_FOR);
        while kept.entries.len() >= KEPT {
            kept.entries.pop_front();
        }
        kept.next += 1;
        let key = kept.next;
        kept.entries.push_back(Entry {
            key,
            user,
            at: now,
            value: Arc::new(value),
        });
        key
    }

    /// Where a form that made `value` goes on to: `page?field=KEY`, `value` kept for `user`.
    /// A JSON call to `path` answers the value itself: `page`, and nothing is kept.
    pub fn redirect<T: Any + Send + Sync>(
        &self,
        path: &str,
        user: i64,
        value: T,
        page: &str,
        field: &str,
    ) -> String {
        match Format::of(path) {
            Format::Json => page.to_owned(),
            Format::Html => format!("{page}?{field}={}", self.keep(user, value)),
        }
    }

    /// The outcome `key` when `user` made it, it is a `T` and it is recent; `None` otherwise
    /// (the page is then shown without it).
    pub fn get<T: Any + Send + Sync + Clone>(&self, user: i64, key: u64) -> Option<T> {
        let kept = self.0.lock().expect("outcomes lock");
        kept.entries
            .iter()
            .find(|e| e.key == key && e.user == user && e.at.elapsed() < SHOWN_FOR)
            .and_then(|e| e.value.downcast_ref::<T>())
            .cloned()
    }

    /// The outcome a browser's GET of `uri` asks for with `?field=KEY`, taken as
    /// [`Outcomes::take`] takes it: a secret shown once. `None` for a JSON call, no such
    /// field, or an outcome gone, another user's or another kind.
    pub fn take_asked<T: Any + Send + Sync>(&self, uri: &Uri, user: i64, field: &str) -> Option<T> {
        if Format::of(uri.path()) != Format::Html {
            return None;
        }
        let key = uri.query()?.split('&').find_map(|pair| {
            pair.strip_prefix(field)?
                .strip_prefix('=')?
                .parse::<u64>()
                .ok()
        })?;
        self.take(user, key)
    }

    /// The outcome `key` as [`Outcomes::get`] finds it, taken: never shown again.
    pub fn take<T: Any + Send + Sync>(&self, user: i64, key: u64) -> Option<T> {
        let mut kept = self.0.lock().expect("outcomes lock");
        let at = kept.entries.iter().position(|e| {
            e.key == key && e.user == user && e.at.elapsed() < SHOWN_FOR && e.value.is::<T>()
        })?;
        let entry = kept.entries.remove(at)?;
        Arc::try_unwrap(entry.value.downcast::<T>().ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_is_read_by_its_maker_alone_as_its_own_type() {
        let outcomes = Outcomes::default();
        let key = outcomes.keep(7, String::from("delivered"));
        assert_eq!(outcomes.get::<String>(7, key).as_deref(), Some("delivered"));
        assert_eq!(
            outcomes.get::<String>(7, key).as_deref(),
            Some("delivered"),
            "a reload shows it again"
        );
        assert_eq!(outcomes.get::<String>(8, key), None, "another user's");
        assert_eq!(outcomes.get::<u32>(7, key), None, "another kind");
        assert_eq!(outcomes.get::<String>(7, key + 1), None);
    }

    #[test]
    fn a_form_is_sent_on_with_its_key_and_a_json_call_keeps_nothing() {
        let outcomes = Outcomes::default();
        assert_eq!(
            outcomes.redirect("/api/x/1/test", 7, 5u8, "/x", "tested"),
            "/x"
        );
        assert_eq!(
            outcomes.redirect("/x/1/test", 7, 6u8, "/x", "tested"),
            "/x?tested=1"
        );
        assert_eq!(
            outcomes.get::<u8>(7, 1),
            Some(6),
            "the form's, the first kept"
        );
    }

    #[test]
    fn a_taken_outcome_is_shown_once() {
        let outcomes = Outcomes::default();
        let key = outcomes.keep(7, String::from("skh_secret"));
        assert_eq!(outcomes.take::<String>(8, key), None, "another user's");
        assert_eq!(outcomes.take::<u32>(7, key), None, "another kind");
        assert_eq!(
            outcomes.take::<String>(7, key).as_deref(),
            Some("skh_secret")
        );
        assert_eq!(outcomes.take::<String>(7, key), None, "taken already");
        assert_eq!(outcomes.get::<String>(7, key), None);
    }

    #[test]
    fn a_page_takes_the_outcome_its_address_asks_for_once() {
        let outcomes = Outcomes::default();
        let key = outcomes.keep(7, String::from("skt_secret"));
        let asked = |address: &str| address.parse::<Uri>().unwrap();
        let page = asked(&format!("/account?new_token={key}"));
        assert_eq!(
            outcomes.take_asked::<String>(
                &asked(&format!("/api/tokens?new_token={key}")),
                7,
                "new_token"
            ),
            None,
            "a JSON call"
        );
        assert_eq!(
            outcomes.take_asked::<String>(&asked(&format!("/account?token={key}")), 7, "new_token"),
            None,
            "another field"
        );
        assert_eq!(
            outcomes.take_asked::<String>(
                &asked(&format!("/account?x_new_token={key}")),
                7,
                "new_token"
            ),
            None,
            "a longer name"
        );
        assert_eq!(
            outcomes.take_asked::<String>(&page, 8, "new_token"),
            None,
            "another user's"
        );
        assert_eq!(
            outcomes
                .take_asked::<String>(&page, 7, "new_token")
                .as_deref(),
            Some("skt_secret")
        );
        assert_eq!(
            outcomes.take_asked::<String>(&page, 7, "new_token"),
            None,
            "a reload"
        );
    }

    #[test]
    fn the_oldest_outcomes_go_past_the_bound() {
        let outcomes = Outcomes::default();
        let first = outcomes.keep(1, 0usize);
        for n in 1..KEPT {
            outcomes.keep(1, n);
        }
        assert_eq!(outcomes.get::<usize>(1, first), Some(0));
        let last = outcomes.keep(1, KEPT);
        assert_eq!(outcomes.get::<usize>(1, first), None);
        assert_eq!(outcomes.get::<usize>(1, last), Some(KEPT));
    }
}
