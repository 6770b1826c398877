//! `swarmkeeper outdated [STACK]`: the services whose tag moved in the registry since they
//! were deployed, found by comparing the digest each runs with a manifest `HEAD` of its tag.
//!
//! Exit codes: 0 every service checked runs its tag's digest; 1 at least one is outdated (as
//! `diff` answers 1 when something would change); 2 a check failed for a reason the operator
//! must fix (credentials refused, a tag or repository the registry does not know, a config
//! file that cannot be read); 3 the engine, or a registry, could not be reached or failed.
//! A failed check wins over "outdated": the answer is incomplete. Services whose image is not
//! pinned to a digest, or that name a digest without a tag, are listed and do not count; nor
//! does a service that runs a local image (unpinned, and the engine holds it under that tag
//! with no repo digest: built or loaded here, never pulled or pushed), which no registry can
//! answer for: it is listed as `local` and the registry is not asked.

use clap::Args;
use futures_util::{stream, StreamExt};
use serde::Serialize;
use swarmkeeper_autodeploy::{followed, freshness, FollowError, Followed};
use swarmkeeper_engine::{DfImage, Engine, Service};
use swarmkeeper_reference::Reference;
use swarmkeeper_registry::{Client, Keychain, RegistryError};

use super::registry::RegistryArgs;
use crate::exit::{block_on, CmdResult, Failure};
use crate::format;

/// Registry checks in flight at once.
const CONCURRENT_CHECKS: usize = 8;

#[derive(Args)]
pub struct OutdatedArgs {
    /// Only this stack's services [default: every service].
    #[arg(value_parser = super::stack_name)]
    stack: Option<String>,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// One service as the command reports it.
#[derive(Serialize)]
struct Row {
    service: String,
    /// The image as the service's spec names it.
    image: String,
    /// The tag followed, fully qualified; `None` when the image names no tag.
    tag: Option<String>,
    running_digest: Option<String>,
    registry_digest: Option<String>,
    /// `current`, `outdated`, `unpinned`, `no_tag`, `local` or `error`.
    status: &'static str,
    error: Option<String>,
    #[serde(skip)]
    bad_input: bool,
}

pub fn run(args: OutdatedArgs) -> CmdResult {
    let keychain = args.registry.keychain()?.unwrap_or_default();
    let rows = block_on(check_all(args.stack.as_deref(), &keychain))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "services": rows }))
                .expect("JSON serialises")
        );
    } else if rows.is_empty() {
        match &args.stack {
            Some(stack) => println!("stack {stack} has no services"),
            None => println!("no services"),
        }
    } else {
        let mut table = format::table();
        table.set_header(["SERVICE", "IMAGE", "RUNNING", "REGISTRY", "STATUS"]);
        for row in &rows {
            let short = |d: &Option<String>| {
                d.as_deref()
                    .map_or("-".to_string(), |d| d.chars().take(19).collect())
            };
            table.add_row([
                row.service.clone(),
                row.tag.clone().unwrap_or_else(|| row.image.clone()),
                short(&row.running_digest),
                short(&row.registry_digest),
                match row.status {
                    "local" => "local image, cannot check".to_string(),
                    status => status.to_string(),
                },
            ]);
        }
        println!("{table}");
    }
    conclude(&rows)
}

/// The exit code the rows call for (see the module's documentation).
fn conclude(rows: &[Row]) -> CmdResult {
    let errors: Vec<&Row> = rows.iter().filter(|r| r.error.is_some()).collect();
    for row in &errors {
        eprintln!(
            "swarmkeeper: {}: {}",
            row.service,
            row.error.as_deref().unwrap_or_default()
        );
    }
    if let Some(first) = errors.iter().find(|r| r.bad_input) {
        return Err(Failure::Usage(format!(
            "{} of {} service(s) could not be checked (first: {})",
            errors.len(),
            rows.len(),
            first.service
        )));
    }
    if let Some(first) = errors.first() {
        return Err(Failure::Engine(format!(
            "{} of {} service(s) could not be checked (first: {})",
            errors.len(),
            rows.len(),
            first.service
        )));
    }
    let outdated = rows.iter().filter(|r| r.status == "outdated").count();
    if outdated > 0 {
        return Err(Failure::Failed(format!(
            "{outdated} of {} service(s) outdated",
            rows.len()
        )));
    }
    Ok(())
}

async fn check_all(stack: Option<&str>, keychain: &Keychain) -> Result<Vec<Row>, Failure> {
    let engine = Engine::from_env()?;
    let mut services = engine.list_services(stack).await?;
    services.sort_by(|a, b| a.name.cmp(&b.name));
    // Registries the engine pulls from over plain HTTP are asked the same way.
    let info = engine.info().await?;
    let client = info
        .insecure_registries
        .iter()
        .fold(Client::builder(), |b, r| b.insecure_registry(r.clone()))
        .build()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let local = local_only_tags(&engine.list_images().await?);
    let rows = stream::iter(services.iter())
        .map(|service| check(service, &client, keychain, &local))
        .buffered(CONCURRENT_CHECKS)
        .collect()
        .await;
    Ok(rows)
}

/// The tags (fully qualified) of the engine's images that no registry knows: no repo digest,
/// so built, loaded or tagged here and never pulled or pushed.
fn local_only_tags(images: &[DfImage]) -> Vec<Reference> {
    images
        .iter()
        .filter(|image| image.repo_digests.is_empty())
        .flat_map(|image| &image.repo_tags)
        .filter_map(|tag| Reference::parse(tag).ok())
        .collect()
}

/// Whether a service's image is a local one: Swarm pinned no digest (it could not ask a
/// registry) and the engine holds the followed tag only locally. A pinned image came from a
/// registry, so it is always checked.
fn is_local(followed: &Followed, local: &[Reference]) -> bool {
    followed.running.is_none() && local.contains(&followed.tag)
}

async fn check(
    service: &Service,
    client: &Client,
    keychain: &Keychain,
    local: &[Reference],
) -> Row {
    let image = service.view.image.to_string();
    let mut row = Row {
        service: service.name.clone(),
        image: image.clone(),
        tag: None,
        running_digest: service.view.image.digest.clone(),
        registry_digest: None,
        status: "error",
        error: None,
        bad_input: false,
    };
    let followed = match followed(&image) {
        Ok(followed) => followed,
        Err(FollowError::NoTag) => {
            row.status = "no_tag";
            return row;
        }
        Err(e) => {
            row.error = Some(format!("image {image:?}: {e}"));
            row.bad_input = true;
            return row;
        }
    };
    row.tag = Some(followed.tag.to_string());
    if is_local(&followed, local) {
        row.status = "local";
        return row;
    }
    let result: Result<_, RegistryError> = async {
        let auth = keychain.for_image(&image).await?;
        client.manifest_digest(&followed.tag, auth.as_ref()).await
    }
    .await;
    match result {
        Ok(digest) => {
            row.status = freshness(followed.running.as_ref(), &digest).as_str();
            row.registry_digest = Some(digest.to_string());
        }
        Err(e) => {
            row.bad_input = e.is_bad_input();
            row.error = Some(e.to_string());
        }
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(tags: &[&str], digests: &[&str]) -> DfImage {
        DfImage {
            id: "sha256:1".into(),
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: digests.iter().map(|d| d.to_string()).collect(),
            created: jiff::Timestamp::UNIX_EPOCH,
            size: 0,
            shared_size: 0,
            labels: Default::default(),
            containers: 0,
        }
    }

    const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn a_local_image_is_not_asked_of_a_registry() {
        let images = [
            // Built or loaded here: no repo digest.
            image(&["app:1", "registry.example.com/tools/cli:2"], &[]),
            // Pulled: its registry knows it.
            image(&["busybox:latest"], &[&format!("busybox@{DIGEST}")]),
        ];
        let local = local_only_tags(&images);
        let local_image = |image: &str| is_local(&followed(image).unwrap(), &local);
        // As a service names it, short or fully qualified: the same tag.
        assert!(local_image("app:1"));
        assert!(local_image("docker.io/library/app:1"));
        assert!(local_image("registry.example.com/tools/cli:2"));
        // Another tag of the same repository, an image the engine does not hold, an image
        // with a repo digest: the registry is asked.
        assert!(!local_image("app:2"));
        assert!(!local_image("app"));
        assert!(!local_image("busybox"));
        // Pinned by Swarm: it came from a registry, whatever this engine holds.
        assert!(!local_image(&format!("app:1@{DIGEST}")));
    }
}
