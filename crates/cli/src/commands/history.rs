//! `swarmkeeper history STACK`: the stack's revisions in the swarm's history, newest first.

use clap::Args;
use serde_json::json;
use swarmkeeper_deploy::{service_images, DeployRecord, History, ServiceImages};
use swarmkeeper_engine::Engine;
use swarmkeeper_rollout::revisions::DEFAULT_KEEP_REVISIONS;

use super::deploy::StateArgs;
use crate::exit::{block_on, CmdResult, Failure};
use crate::format;

#[derive(Args)]
pub struct HistoryArgs {
    #[arg(value_parser = super::stack_name)]
    stack: String,
    /// Print one JSON document instead of a table: `{"stack": …, "revisions": [ … ]}`, newest
    /// first; each revision with `revision`, `started_at`, `finished_at`, `by` (who and what
    /// in one phrase: `alice`, `edited in the dashboard by alice`), `who`, `what` (null for a
    /// deploy or rollback of files), `kind`, `outcome`, `summary`, `files` (`path`, `sha256`)
    /// and `services` (`service`, `outcome`, `image`, and `previous_image` when the revision
    /// changed it).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: HistoryArgs) -> CmdResult {
    let engine = Engine::from_env()?;
    let history = block_on(async {
        let history = args
            .state
            .history(&engine, DEFAULT_KEEP_REVISIONS as u64)
            .await;
        history.revisions(&args.stack).await
    })
    .map_err(|e| match e {
        swarmkeeper_deploy::DeployError::Engine(e) => e.into(),
        other => Failure::Usage(other.to_string()),
    })?;
    if args.json {
        let revisions: Vec<_> = history.iter().map(revision_json).collect();
        let document = json!({ "stack": args.stack, "revisions": revisions });
        return print(&serde_json::to_string_pretty(&document).expect("JSON serialises"));
    }
    if history.is_empty() {
        return print(&format!(
            "no revisions of {} in the history of the swarm at {}",
            args.stack,
            engine.host()
        ));
    }
    let mut table = format::table();
    table.set_header([
        "REV", "STARTED", "BY", "KIND", "OUTCOME", "SERVICES", "SUMMARY",
    ]);
    for r in &history {
        table.add_row([
            r.revision.to_string(),
            r.started_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            r.by.clone(),
            r.kind.to_string(),
            r.outcome.to_string(),
            services_cell(&args.stack, &service_images(r)),
            summary_cell(r),
        ]);
    }
    print(&table.to_string())
}

/// Prints the answer; a reader that went away (`| head`) ends the command quietly.
fn print(text: &str) -> CmdResult {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Failure::Failed(format!("cannot write the history: {e}")))
        }
        _ => Ok(()),
    }
}

fn revision_json(r: &DeployRecord) -> serde_json::Value {
    let services: Vec<_> = service_images(r)
        .into_iter()
        .map(|s| {
            let mut service = json!({
                "service": s.service,
                "outcome": s.outcome,
                "image": s.image.map(|i| i.to_string()),
            });
            if let Some(previous) = s.previous {
                service["previous_image"] = json!(previous.to_string());
            }
            service
        })
        .collect();
    json!({
        "revision": r.revision,
        "started_at": r.started_at.to_string(),
        "finished_at": r.finished_at.map(|t| t.to_string()),
        "by": r.by_sentence(),
        "who": r.by,
        "what": r.action,
        "kind": r.kind,
        "outcome": r.outcome,
        "summary": r.summary,
        "files": r.files.iter().map(|f| json!({"path": f.path, "sha256": f.sha256})).collect::<Vec<_>>(),
        "services": services,
    })
}

/// What the revision did, then its summary: the BY column names who alone.
fn summary_cell(r: &DeployRecord) -> String {
    swarmkeeper_store::what_and_summary(r.action.as_deref(), &r.summary)
}

/// One line per service the revision changed (`web: app:1 → app:2 (converged)`), then how
/// many it left as they were.
fn services_cell(stack: &str, services: &[ServiceImages]) -> String {
    let prefix = format!("{stack}_");
    let mut lines = Vec::new();
    let mut unchanged = 0;
    for s in services {
        if s.outcome == "unchanged" {
            unchanged += 1;
            continue;
        }
        let name = s.service.strip_prefix(&prefix).unwrap_or(&s.service);
        let image = match (&s.previous, &s.image) {
            (Some(previous), Some(image)) => format!("{} → {}", previous.short(), image.short()),
            (None, Some(image)) => image.short(),
            _ => "?".to_owned(),
        };
        lines.push(format!("{name}: {image} ({})", s.outcome));
    }
    if unchanged > 0 {
        lines.push(format!("{unchanged} unchanged"));
    }
    if lines.is_empty() {
        "-".to_owned()
    } else {
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use swarmkeeper_engine::ImageRef;

    fn record(by: &str, action: Option<&str>, summary: &str) -> DeployRecord {
        DeployRecord {
            stack: "shop".into(),
            revision: 3,
            started_at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
            finished_at: None,
            by: by.into(),
            action: action.map(Into::into),
            kind: swarmkeeper_deploy::DeployKind::Edit,
            files: Vec::new(),
            outcome: swarmkeeper_deploy::DeployOutcome::RolledBack,
            summary: summary.into(),
            services: Vec::new(),
            objects: Vec::new(),
        }
    }

    #[test]
    fn who_and_what_are_shown_apart() {
        let edit = record(
            "alice",
            Some("edited in the dashboard"),
            "shop_web: task exited 1",
        );
        assert_eq!(
            summary_cell(&edit),
            "edited in the dashboard; shop_web: task exited 1"
        );
        let json = revision_json(&edit);
        assert_eq!(json["by"], "edited in the dashboard by alice");
        assert_eq!(json["who"], "alice");
        assert_eq!(json["what"], "edited in the dashboard");
        let deploy = record("ci", None, "");
        assert_eq!(summary_cell(&deploy), "");
        let json = revision_json(&deploy);
        assert_eq!((&json["by"], &json["who"]), (&json!("ci"), &json!("ci")));
        assert!(json["what"].is_null());
    }

    #[test]
    fn a_revision_shows_each_change_as_old_to_new_image_and_counts_the_rest() {
        let service =
            |name: &str, image: &str, previous: Option<&str>, outcome: &str| ServiceImages {
                service: format!("shop_{name}"),
                outcome: outcome.into(),
                image: Some(ImageRef::parse(image)),
                previous: previous.map(ImageRef::parse),
            };
        let cell = services_cell(
            "shop",
            &[
                service("web", "app:2", Some("app:1"), "rolled back"),
                service("db", "pg:16", None, "unchanged"),
                service("api", "api:1", None, "unchanged"),
                service("cache", "redis:7", None, "converged"),
            ],
        );
        assert_eq!(
            cell,
            "web: app:1 → app:2 (rolled back)\ncache: redis:7 (converged)\n2 unchanged"
        );
        assert_eq!(services_cell("shop", &[]), "-");
    }
}
