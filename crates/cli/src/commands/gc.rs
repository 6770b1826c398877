//! `swarmkeeper gc snapshot | plan | run`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use swarmkeeper_agent::{collect, Detail, GcOutcome, Node, Trigger};
use swarmkeeper_gc::{plan, Accounting, KeepReason, Plan, PlanMode, PolicySettings, Snapshot};

use super::NodeArgs;
use crate::exit::{block_on, init_logging, CmdResult, Failure};
use crate::format;
use crate::policy_args::PolicyArgs;

#[derive(Subcommand)]
pub enum GcCommand {
    /// Record this node's images, containers and disk as a JSON snapshot.
    Snapshot(SnapshotArgs),
    /// Show what GC would delete, from the live engine or a recorded snapshot.
    Plan(PlanArgs),
    /// Collect now.
    Run(RunArgs),
}

#[derive(Args)]
pub struct SnapshotArgs {
    /// Write the snapshot here instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Args)]
pub struct PlanArgs {
    /// Plan from this snapshot file instead of the live engine (with the default policy and
    /// the flags given, not the local agent's).
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Args)]
pub struct RunArgs {
    /// Only print the plan of the first round; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the outcome (or, with --dry-run, the plan) as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    node: NodeArgs,
}

pub fn run(command: GcCommand) -> CmdResult {
    init_logging("warn");
    match command {
        GcCommand::Snapshot(args) => block_on(snapshot(args)),
        GcCommand::Plan(args) => plan_command(args),
        GcCommand::Run(args) => block_on(run_gc(args)),
    }
}

async fn snapshot(args: SnapshotArgs) -> CmdResult {
    let mut node = args.node.node().await?;
    let text = node.observe(Detail::Full).await?.to_json_pretty();
    match args.output {
        Some(path) => std::fs::write(&path, text + "\n")
            .map_err(|e| Failure::Usage(format!("--output {}: {e}", path.display()))),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

fn plan_command(args: PlanArgs) -> CmdResult {
    let (snapshot, policy) = match &args.snapshot {
        Some(path) => {
            let policy = args.policy.policy(PolicySettings::default())?;
            (read_snapshot(path)?, policy)
        }
        None => block_on(async {
            let mut node = args.node.node().await?;
            let policy = args.policy.policy(agent_policy(&node))?;
            Ok::<_, Failure>((node.observe(Detail::Full).await?, policy))
        })?,
    };
    print_plan(&plan(&snapshot, &policy, PlanMode::Threshold), args.json);
    Ok(())
}

/// The policy the agent on this node runs with, when its state directory holds one (flags
/// given override it); else the defaults.
fn agent_policy(node: &Node) -> PolicySettings {
    let Some(state_dir) = node.store.path().parent() else {
        return PolicySettings::default();
    };
    match swarmkeeper_agent::read_policy(state_dir) {
        Ok(Some(settings)) => {
            eprintln!(
                "swarmkeeper: the agent's policy ({}); flags given override it",
                state_dir.join(swarmkeeper_agent::POLICY_FILE).display()
            );
            settings
        }
        Ok(None) => PolicySettings::default(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the agent's policy; using the defaults");
            PolicySettings::default()
        }
    }
}

async fn run_gc(args: RunArgs) -> CmdResult {
    let mut node = args.node.node().await?;
    let policy = args.policy.policy(agent_policy(&node))?;
    if args.dry_run {
        let snapshot = node.observe(Detail::Full).await?;
        print_plan(&plan(&snapshot, &policy, PlanMode::Threshold), args.json);
        return Ok(());
    }
    let outcome = collect(&mut node, &policy, Trigger::Manual).await?;
    print_outcome(&outcome, args.json);
    if outcome.fell_short() {
        let headroom = if outcome.pull_headroom_bytes > 0 {
            format!(
                " and {} available for the next pull",
                format::bytes(outcome.pull_headroom_bytes)
            )
        } else {
            String::new()
        };
        return Err(Failure::Failed(format!(
            "GC fell short: {} still to free to reach {}%{headroom} (usage {}%)",
            format::bytes(outcome.shortfall_bytes),
            outcome.low_threshold_percent,
            outcome.usage_percent_after
        )));
    }
    Ok(())
}

fn read_snapshot(path: &std::path::Path) -> Result<Snapshot, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("--snapshot {}: {e}", path.display())))?;
    Snapshot::from_json(&text).map_err(|e| {
        Failure::Usage(format!(
            "{}:{}:{}: {}",
            path.display(),
            e.line,
            e.column,
            e.message
        ))
    })
}

fn print_plan(plan: &Plan, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(plan).expect("a plan serialises")
        );
        return;
    }
    println!(
        "usage {}% (high {}%, low {}%): {} to free, {} planned, shortfall {}",
        plan.usage_percent,
        plan.high_threshold_percent,
        plan.low_threshold_percent,
        format::bytes(plan.bytes_to_free),
        format::bytes(plan.planned_free_bytes),
        format::bytes(plan.shortfall_bytes),
    );
    if plan.pull_headroom_bytes > 0 {
        let (relation, verdict) = if plan.available_bytes < plan.pull_headroom_bytes {
            (
                "<",
                format!("collect {}", format::bytes(plan.headroom_bytes_to_free)),
            )
        } else {
            (">=", "room for the next pull".to_string())
        };
        println!(
            "free {} {relation} headroom {}: {verdict}",
            format::bytes(plan.available_bytes),
            format::bytes(plan.pull_headroom_bytes),
        );
    }
    if plan.accounting == Accounting::Sizes && !plan.delete.is_empty() {
        println!("freed bytes from image sizes (a lower bound: the images' layers are unknown)");
    }
    if let Some(prune) = &plan.prune_build_cache {
        println!(
            "build cache first: {} unused for {} (keep-storage {})",
            format::bytes(prune.bytes),
            swarmkeeper_gc::format_duration(prune.until),
            format::bytes(prune.keep_storage_bytes),
        );
    }
    if !plan.remove_containers.is_empty() {
        let mut table = format::table();
        table.set_header(["CONTAINER", "SERVICE", "REASON"]);
        for c in &plan.remove_containers {
            table.add_row([
                format::short_id(c.id).to_string(),
                c.service.unwrap_or("-").to_string(),
                serde_json::to_value(c.reason)
                    .map(|v| v.as_str().unwrap_or_default().to_string())
                    .unwrap_or_default(),
            ]);
        }
        println!("\nremove containers:\n{table}");
    }
    if plan.delete.is_empty() {
        println!("\nnothing to delete");
    } else {
        let mut table = format::table();
        table.set_header(["IMAGE", "NAME", "REASON", "FREES"]);
        for d in &plan.delete {
            table.add_row([
                format::short_id(d.id).to_string(),
                d.name.to_string(),
                d.reason.as_str().to_string(),
                format::bytes(d.bytes),
            ]);
        }
        println!("\ndelete, in order:\n{table}");
    }
    let reasons = [
        KeepReason::InUse,
        KeepReason::Pinned,
        KeepReason::TooYoung,
        KeepReason::RollbackReserve,
        KeepReason::NotNeeded,
    ];
    let kept: Vec<String> = reasons
        .iter()
        .map(|r| (r, plan.keep.iter().filter(|k| k.reason == *r).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{n} {}", r.as_str()))
        .collect();
    if !kept.is_empty() {
        println!("\nkeep: {}", kept.join(", "));
    }
    let pinned: Vec<&str> = plan
        .keep
        .iter()
        .filter(|k| k.reason == KeepReason::Pinned)
        .map(|k| k.name())
        .collect();
    if !pinned.is_empty() {
        println!("pinned: {}", pinned.join(", "));
    }
}

fn print_outcome(outcome: &GcOutcome, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(outcome).expect("an outcome serialises")
        );
        return;
    }
    println!(
        "usage {}% -> {}% (high {}%, low {}%), {} freed (measured), {} round(s)",
        outcome.usage_percent_before,
        outcome.usage_percent_after,
        outcome.high_threshold_percent,
        outcome.low_threshold_percent,
        format::bytes(outcome.bytes_freed),
        outcome.rounds,
    );
    if outcome.pull_headroom_bytes > 0 {
        println!(
            "free {} (headroom {})",
            format::bytes(outcome.available_bytes_after),
            format::bytes(outcome.pull_headroom_bytes)
        );
    }
    if outcome.build_cache_freed_bytes > 0 {
        println!(
            "build cache pruned: {}",
            format::bytes(outcome.build_cache_freed_bytes)
        );
    }
    for c in &outcome.removed_containers {
        println!(
            "removed container {} ({})",
            format::short_id(&c.id),
            c.service.as_deref().unwrap_or("standalone")
        );
    }
    if !outcome.deleted.is_empty() {
        let mut table = format::table();
        table.set_header(["DELETED IMAGE", "NAME", "REASON", "PLANNED"]);
        for d in &outcome.deleted {
            table.add_row([
                format::short_id(&d.id).to_string(),
                d.name.clone(),
                d.reason.as_str().to_string(),
                format::bytes(d.bytes),
            ]);
        }
        println!("{table}");
    }
    for f in &outcome.failures {
        println!("refused: {}: {}", format::short_id(&f.id), f.error);
    }
}
