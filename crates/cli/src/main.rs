//! `swarmkeeper`: one binary, one subcommand per role. This file is the table of contents; each
//! command lives in `commands/`.

mod commands;
mod exit;
mod format;
mod policy_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "swarmkeeper",
    version,
    about = "Keeps a Docker Swarm cluster healthy and safe to deploy to"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect, plan and run image and container garbage collection on this node.
    #[command(subcommand)]
    Gc(commands::gc::GcCommand),
    /// Where this node's disk goes: images (unique and shared), containers, logs, volumes,
    /// build cache.
    Disk(commands::disk::DiskArgs),
    /// Run the node agent: GC on every pull and on a timer, Prometheus metrics.
    Agent(commands::agent::AgentArgs),
    /// Check stack files for settings that make deploys unsafe, before `docker stack deploy`.
    Lint(commands::lint::LintArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gc(command) => commands::gc::run(command),
        Command::Disk(args) => commands::disk::run(args),
        Command::Agent(args) => commands::agent::run(args),
        Command::Lint(args) => commands::lint::run(args),
    };
    exit::report(result)
}
