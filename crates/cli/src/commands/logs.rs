//! `swarmkeeper logs SERVICE|STACK`: a service's or a whole stack's logs, merged across
//! replicas, each line led by its task's name.

use std::collections::HashMap;

use clap::Args;
use futures_util::StreamExt;
use jiff::Timestamp;
use regex::Regex;
use swarmkeeper_engine::{is_logs_unreadable, Engine, EngineError, LogOptions, LogStream};
use swarmkeeper_gc::parse_duration;

use crate::exit::{block_on, CmdResult, Failure};

/// The log drivers the engine can read back (as of Engine API 1.41, with dual logging off).
const READABLE_DRIVERS: &[&str] = &["local", "json-file", "journald"];

#[derive(Args)]
pub struct LogsArgs {
    /// A service name, or a stack name for all of its services.
    target: String,
    /// Keep printing new lines.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only lines since this long ago (`10m`) or this time (`2026-01-01T00:00:00Z`).
    #[arg(long, value_name = "DURATION|TIME")]
    since: Option<String>,
    /// Only the last N lines of each task.
    #[arg(long, value_name = "N")]
    tail: Option<u64>,
    /// Only lines that match this regular expression.
    #[arg(long, value_name = "REGEX")]
    grep: Option<String>,
    /// Show each line's time.
    #[arg(short = 't', long)]
    timestamps: bool,
}

fn since(text: &str) -> Result<Timestamp, Failure> {
    if let Ok(time) = text.parse::<Timestamp>() {
        return Ok(time);
    }
    let ago = parse_duration(text).map_err(|e| Failure::Usage(format!("--since {text}: {e}")))?;
    Timestamp::now()
        .checked_sub(jiff::SignedDuration::try_from(ago).unwrap_or_default())
        .map_err(|e| Failure::Usage(format!("--since {text}: {e}")))
}

pub fn run(args: LogsArgs) -> CmdResult {
    let grep = match &args.grep {
        Some(pattern) => {
            Some(Regex::new(pattern).map_err(|e| Failure::Usage(format!("--grep: {e}")))?)
        }
        None => None,
    };
    let options = LogOptions {
        follow: args.follow,
        since: args.since.as_deref().map(since).transpose()?,
        tail: args.tail,
        timestamps: args.timestamps,
    };
    let engine = Engine::from_env()?;
    block_on(async {
        let services = match engine.inspect_service(&args.target).await {
            Ok(service) => vec![service],
            Err(e) if e.is_not_found() => engine.list_services(Some(&args.target)).await?,
            Err(e) => return Err(e.into()),
        };
        if services.is_empty() {
            return Err(Failure::Usage(format!(
                "no service or stack named {}",
                args.target
            )));
        }
        let mut streams = Vec::new();
        let mut unreadable = Vec::new();
        for service in &services {
            // The engine answers an empty stream for these; only the driver's name tells.
            let driver = service
                .spec
                .pointer("/TaskTemplate/LogDriver/Name")
                .and_then(|d| d.as_str())
                .unwrap_or_default();
            if !driver.is_empty() && !READABLE_DRIVERS.contains(&driver) {
                unreadable.push(format!("{} (log driver {driver})", service.name));
                continue;
            }
            match engine.service_logs(&service.id, &options).await {
                Ok(stream) => {
                    let name = service.name.clone();
                    streams.push(stream.map(move |line| (name.clone(), line)).boxed())
                }
                Err(e) if is_logs_unreadable(&e) => unreadable.push(service.name.clone()),
                Err(e) => return Err(e.into()),
            }
        }
        let mut names: HashMap<String, String> = HashMap::new();
        let mut merged = futures_util::stream::select_all(streams);
        while let Some((service, line)) = merged.next().await {
            let line = match line {
                Ok(line) => line,
                Err(e) if is_logs_unreadable(&e) => {
                    unreadable.push(service);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(grep) = &grep {
                if !grep.is_match(&line.text) {
                    continue;
                }
            }
            let task = match &line.task_id {
                Some(id) => task_name(&engine, &mut names, &service, id).await?,
                None => service.clone(),
            };
            let time = line
                .timestamp
                .as_deref()
                .map(|t| format!("{t} "))
                .unwrap_or_default();
            match line.stream {
                LogStream::Stdout => println!("{time}{task} | {}", line.text),
                LogStream::Stderr => eprintln!("{time}{task} | {}", line.text),
            }
        }
        if !unreadable.is_empty() {
            unreadable.sort();
            unreadable.dedup();
            return Err(Failure::Failed(format!(
                "the logs of {} cannot be read: {}. Fix: give the service a log driver that \
                 keeps logs, e.g. `logging: {{driver: local, options: {{max-size: 20m}}}}` \
                 (swarmkeeper deploy does this by default), and redeploy",
                unreadable.join(", "),
                swarmkeeper_engine::LOGS_UNREADABLE
            )));
        }
        Ok(())
    })
}

/// `service.slot.taskid` like the docker CLI (`service.nodeid.taskid` for global services).
async fn task_name(
    engine: &Engine,
    names: &mut HashMap<String, String>,
    service: &str,
    task_id: &str,
) -> Result<String, EngineError> {
    if let Some(name) = names.get(task_id) {
        return Ok(name.clone());
    }
    for task in engine.list_tasks(service).await? {
        let slot = task
            .slot
            .map(|s| s.to_string())
            .unwrap_or_else(|| task.node_id.clone());
        names.insert(
            task.id.clone(),
            format!("{service}.{slot}.{}", &task.id[..task.id.len().min(12)]),
        );
    }
    Ok(names
        .entry(task_id.to_string())
        .or_insert_with(|| format!("{service}.{}", &task_id[..task_id.len().min(12)]))
        .clone())
}
