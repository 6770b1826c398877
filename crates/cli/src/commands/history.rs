//! `swarmkeeper history STACK`: the stack's recorded revisions, newest first.

use clap::Args;
use serde_json::json;

use super::deploy::StateArgs;
use crate::exit::{CmdResult, Failure};
use crate::format;

#[derive(Args)]
pub struct HistoryArgs {
    stack: String,
    /// One JSON object per revision instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    state: StateArgs,
}

pub fn run(args: HistoryArgs) -> CmdResult {
    let store = args.state.open()?;
    let history = store
        .deploy_history(&args.stack)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    if args.json {
        let revisions: Vec<_> = history
            .iter()
            .map(|r| {
                json!({
                    "revision": r.revision,
                    "started_at": r.started_at.to_string(),
                    "finished_at": r.finished_at.map(|t| t.to_string()),
                    "by": r.by,
                    "kind": r.kind,
                    "outcome": r.outcome,
                    "summary": r.summary,
                    "files": r.files.iter().map(|f| json!({"path": f.path, "sha256": f.sha256})).collect::<Vec<_>>(),
                    "services": r.services.iter().map(|s| json!({"service": s.service, "outcome": s.outcome})).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "stack": args.stack, "revisions": revisions }))
                .expect("JSON serialises")
        );
        return Ok(());
    }
    if history.is_empty() {
        println!(
            "no deploys of {} recorded in {}",
            args.stack,
            store.path().display()
        );
        return Ok(());
    }
    let mut table = format::table();
    table.set_header([
        "REV", "STARTED", "BY", "KIND", "OUTCOME", "SERVICES", "SUMMARY",
    ]);
    for r in &history {
        let changed: Vec<String> = r
            .services
            .iter()
            .filter(|s| s.outcome != "unchanged")
            .map(|s| format!("{} ({})", s.service, s.outcome))
            .collect();
        table.add_row([
            r.revision.to_string(),
            r.started_at.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            r.by.clone(),
            r.kind.to_string(),
            r.outcome.to_string(),
            if changed.is_empty() {
                "-".to_string()
            } else {
                changed.join(", ")
            },
            r.summary.clone(),
        ]);
    }
    println!("{table}");
    Ok(())
}
