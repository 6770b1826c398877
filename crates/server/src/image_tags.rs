//! The tags of an image's repository, offered by the service form's image field: asked of
//! the registry with the server's registry credentials (the keychain every deploy takes;
//! they never leave the server), within [`WITHIN`], and remembered for [`KEPT`] — a failure
//! too, so that a registry that does not answer costs one wait a minute, not one per
//! keystroke — or until the registries' credentials change. The page itself never waits for
//! a registry: its script asks for the tags.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use swarmkeeper_reference::Reference;

use crate::error::AppError;
use crate::registries::RegistryRow;
use crate::state::AppState;

/// How long a registry may take to list a repository's tags.
pub const WITHIN: Duration = Duration::from_secs(3);
/// How long an answer (or a failure) is reused.
pub const KEPT: Duration = Duration::from_secs(60);
/// Repositories remembered at most; the oldest answer goes first.
const ENTRIES: usize = 256;
/// Tags offered at most (the last ones in the registry's order): a datalist of thousands
/// helps nobody.
pub const MAX_TAGS: usize = 200;

/// What `GET /api/image-tags?image=REF` answers.
#[derive(Clone, Debug, Serialize)]
pub struct ImageTags {
    /// The repository asked, normalised as docker does (`busybox` is
    /// `docker.io/library/busybox`).
    pub repository: String,
    pub tags: Vec<String>,
    /// Why there are no tags: the registry refused, did not answer in time, or is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The registry listed more tags than [`MAX_TAGS`].
    pub truncated: bool,
}

/// The registries as they were when an answer was had: every change of them makes a new
/// value ([`crate::registries::Registries::rows`]), and an answer had with others is not
/// reused.
type Credentials = Arc<Vec<RegistryRow>>;

/// The answers of the last [`KEPT`], by repository.
#[derive(Default)]
pub struct TagCache {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    at: Instant,
    credentials: Credentials,
    tags: Arc<ImageTags>,
}

impl TagCache {
    fn get(
        &self,
        repository: &str,
        credentials: &Credentials,
        now: Instant,
    ) -> Option<Arc<ImageTags>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(repository)
            .filter(|e| now.duration_since(e.at) < KEPT && Arc::ptr_eq(&e.credentials, credentials))
            .map(|e| e.tags.clone())
    }

    fn put(&self, tags: Arc<ImageTags>, credentials: Credentials, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, e| now.duration_since(e.at) < KEPT);
        if entries.len() >= ENTRIES {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.at)
                .map(|(repository, _)| repository.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            tags.repository.clone(),
            Entry {
                at: now,
                credentials,
                tags,
            },
        );
    }
}

/// The newest [`MAX_TAGS`] of `tags`, in the registry's order, and whether any were left out.
fn bounded(mut tags: Vec<String>) -> (Vec<String>, bool) {
    let truncated = tags.len() > MAX_TAGS;
    if truncated {
        tags.drain(..tags.len() - MAX_TAGS);
    }
    (tags, truncated)
}

/// The tags of `image`'s repository (its own tag or digest is ignored). A malformed
/// reference is bad input; a registry that refuses or does not answer is an answer with an
/// `error` and no tags.
pub async fn image_tags(state: &AppState, image: &str) -> Result<Arc<ImageTags>, AppError> {
    let reference = Reference::parse(image.trim())
        .map_err(|e| AppError::BadInput(format!("image {image:?}: {e}")))?;
    let repository = reference.name();
    let credentials = state.registries.rows();
    if let Some(known) = state
        .image_tags
        .get(&repository, &credentials, Instant::now())
    {
        return Ok(known);
    }
    let client = state.registries.client(&state.engine).await?;
    let asked = async {
        let auth = state
            .registries
            .keychain()
            .for_image(&repository)
            .await
            .map_err(|e| e.to_string())?;
        client
            .tags(&reference, auth.as_ref())
            .await
            .map_err(|e| e.to_string())
    };
    let answer = match tokio::time::timeout(WITHIN, asked).await {
        Ok(Ok(tags)) => {
            let (tags, truncated) = bounded(tags);
            ImageTags {
                repository,
                tags,
                error: None,
                truncated,
            }
        }
        Ok(Err(e)) => ImageTags {
            repository,
            tags: Vec::new(),
            error: Some(e),
            truncated: false,
        },
        Err(_) => ImageTags {
            error: Some(format!(
                "the registry {} did not list the tags within {} s",
                reference.domain(),
                WITHIN.as_secs()
            )),
            repository,
            tags: Vec::new(),
            truncated: false,
        },
    };
    let answer = Arc::new(answer);
    state
        .image_tags
        .put(answer.clone(), credentials, Instant::now());
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(repository: &str) -> Arc<ImageTags> {
        Arc::new(ImageTags {
            repository: repository.to_owned(),
            tags: vec!["1".into()],
            error: None,
            truncated: false,
        })
    }

    #[test]
    fn answers_are_reused_for_a_minute_and_the_oldest_goes_when_full() {
        let cache = TagCache::default();
        let creds: Credentials = Arc::new(Vec::new());
        let start = Instant::now();
        cache.put(tags("r/a"), creds.clone(), start);
        assert!(cache.get("r/a", &creds, start + KEPT / 2).is_some());
        assert!(cache.get("r/a", &creds, start + KEPT).is_none());
        // Other credentials (the registries changed): asked again.
        let changed: Credentials = Arc::new(Vec::new());
        assert!(cache.get("r/a", &changed, start).is_none());
        for i in 0..ENTRIES {
            let at = start + Duration::from_millis(i as u64 + 1);
            cache.put(tags(&format!("r/{i}")), creds.clone(), at);
        }
        cache.put(
            tags("r/last"),
            creds.clone(),
            start + Duration::from_secs(1),
        );
        let later = start + Duration::from_secs(2);
        assert!(cache.get("r/0", &creds, later).is_none(), "the oldest went");
        assert!(cache.get("r/1", &creds, later).is_some());
        assert!(cache.get("r/last", &creds, later).is_some());
    }

    #[test]
    fn only_the_last_tags_are_offered() {
        let many: Vec<String> = (0..MAX_TAGS + 5).map(|i| format!("v{i:04}")).collect();
        let (kept, truncated) = bounded(many);
        assert!(truncated);
        assert_eq!(kept.len(), MAX_TAGS);
        assert_eq!(kept[0], "v0005");
        assert_eq!(bounded(vec!["a".into()]), (vec!["a".to_owned()], false));
    }
}
