//! `swarmkeeper logs SERVICE|STACK`: a service's or a whole stack's logs through the engine's
//! one log path ([`swarmkeeper_engine::logs`], which the dashboard's live logs read too): the
//! current tasks (`--all-tasks` for the others), `--tail` lines of each, merged by time, each
//! line led by its task's name.

use std::io::Write;

use clap::Args;
use jiff::Timestamp;
use regex::Regex;
use swarmkeeper_engine::logs::{cached_note, DriverVerdict, LogItem, LogsRequest, NamedLine};
use swarmkeeper_engine::{Engine, LogStream};
use swarmkeeper_units::parse_duration;

use crate::exit::{block_on, CmdResult, Failure};

#[derive(Args)]
pub struct LogsArgs {
    /// A service name, or a stack name for all of its services.
    target: String,
    /// Keep printing new lines, of tasks that start meanwhile too.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Only lines since this long ago (`10m`) or this time (`2026-01-01T00:00:00Z`).
    #[arg(long, value_name = "DURATION|TIME")]
    since: Option<String>,
    /// Only the last N lines of each task (`all`, the default: every line).
    #[arg(long, value_name = "N|all", value_parser = parse_tail)]
    tail: Option<Tail>,
    /// Only lines that match this regular expression.
    #[arg(long, value_name = "REGEX")]
    grep: Option<String>,
    /// Show each line's time.
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Also the tasks Swarm replaced or that ended, as long as it lists them (by default only
    /// the tasks it runs now, or a slot's last task when none runs).
    #[arg(long)]
    all_tasks: bool,
}

/// `--tail`: a count of lines, or `all` as the docker CLI takes it.
#[derive(Clone, Copy)]
struct Tail(Option<u64>);

fn parse_tail(text: &str) -> Result<Tail, String> {
    if text.eq_ignore_ascii_case("all") {
        return Ok(Tail(None));
    }
    text.parse()
        .map(|n| Tail(Some(n)))
        .map_err(|_| format!("{text:?} is not a number of lines (or `all`)"))
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
    let request = LogsRequest {
        follow: args.follow,
        since: args.since.as_deref().map(since).transpose()?,
        tail: args.tail.and_then(|Tail(n)| n),
        all_tasks: args.all_tasks,
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
        for service in &services {
            if let DriverVerdict::Cached(driver) = DriverVerdict::of_service(service) {
                eprintln!("swarmkeeper: {}: {}", service.name, cached_note(&driver));
            }
        }
        let mut logs = engine.logs(&services, &request).await?;
        if logs.hidden_tasks() > 0 {
            eprintln!(
                "swarmkeeper: {} earlier task(s) not shown; --all-tasks shows their lines too",
                logs.hidden_tasks()
            );
        }
        let mut unreadable = Vec::new();
        while let Some(item) = logs.next().await {
            match item? {
                LogItem::Lines(lines) => match print(&lines, grep.as_ref(), args.timestamps) {
                    Ok(()) => {}
                    // The reader went away (`| head`): done, like any other filter.
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    Err(e) => return Err(Failure::Failed(format!("cannot write the logs: {e}"))),
                },
                LogItem::Unreadable { message, .. } => unreadable.push(message),
            }
        }
        if unreadable.is_empty() {
            Ok(())
        } else {
            Err(Failure::Failed(unreadable.join("\n")))
        }
    })
}

/// `[TIME ]TASK | TEXT`, stdout lines on stdout and stderr lines on stderr, a batch at a time.
fn print(lines: &[NamedLine], grep: Option<&Regex>, timestamps: bool) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    for named in lines {
        let line = &named.line;
        if grep.is_some_and(|grep| !grep.is_match(&line.text)) {
            continue;
        }
        let out: &mut dyn Write = match line.stream {
            LogStream::Stdout => &mut stdout,
            LogStream::Stderr => &mut stderr,
        };
        if let (true, Some(time)) = (timestamps, &line.timestamp) {
            write!(out, "{time} ")?;
        }
        writeln!(out, "{} | {}", named.task, line.text)?;
    }
    stdout.flush()?;
    stderr.flush()
}
