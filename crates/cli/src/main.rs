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
    /// Ask a running agent or server whether it is healthy (for the healthcheck of its container).
    Healthcheck(commands::healthcheck::HealthcheckArgs),
    /// Check stack files for settings that make deploys unsafe, before `docker stack deploy`.
    Lint(commands::lint::LintArgs),
    /// Deploy a stack with safe defaults, live progress and stack-wide rollback on failure.
    Deploy(commands::deploy::DeployArgs),
    /// Show what a deploy of the files would change, service by service and field by field.
    Diff(commands::diff::DiffArgs),
    /// Re-apply a recorded revision of a stack.
    Rollback(commands::rollback::RollbackArgs),
    /// List a stack's recorded deploys.
    History(commands::history::HistoryArgs),
    /// Show a service's or a stack's logs, merged across replicas.
    Logs(commands::logs::LogsArgs),
    /// List the services whose image tag moved in the registry since they were deployed.
    Outdated(commands::outdated::OutdatedArgs),
    /// Serve the web dashboard and JSON API: nodes, disks, services, stacks, live logs,
    /// deploys and rollbacks, users and roles.
    Server(commands::server::ServerArgs),
    /// Remove a volume from this node (what the dashboard's volume removal runs there).
    #[command(subcommand)]
    Volume(commands::volume::VolumeCommand),
}

fn main() -> ExitCode {
    exit::end_quietly_on_closed_pipe();
    ignore_empty_settings();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gc(command) => commands::gc::run(command),
        Command::Disk(args) => commands::disk::run(args),
        Command::Agent(args) => commands::agent::run(args),
        Command::Healthcheck(args) => commands::healthcheck::run(args),
        Command::Lint(args) => commands::lint::run(args),
        Command::Deploy(args) => commands::deploy::run(args),
        Command::Diff(args) => commands::diff::run(args),
        Command::Rollback(args) => commands::rollback::run(args),
        Command::History(args) => commands::history::run(args),
        Command::Logs(args) => commands::logs::run(args),
        Command::Outdated(args) => commands::outdated::run(args),
        Command::Server(args) => commands::server::run(args),
        Command::Volume(command) => commands::volume::run(command),
    };
    exit::report(result)
}

/// An empty `SWARMKEEPER_…` variable counts as unset, so a stack file can pass `${VAR:-}`
/// through. Runs first, before any thread exists.
fn ignore_empty_settings() {
    for (name, value) in std::env::vars_os() {
        if value.is_empty() && name.to_string_lossy().starts_with("SWARMKEEPER_") {
            std::env::remove_var(name);
        }
    }
}
