//! `swarmkeeper volume rm NAME`: removes a volume from this node's engine, refused while a
//! container uses it. The dashboard's volume removal runs it as a one-task Swarm job placed on
//! the volume's node (volumes are node-local, and only managers answer the swarm API), in the
//! agent's image, which is on every node already.

use clap::{Args, Subcommand};

use crate::exit::{block_on, init_logging, CmdResult};

#[derive(Subcommand)]
pub enum VolumeCommand {
    /// Remove a volume that no container uses (exit 3 with the engine's refusal otherwise).
    Rm(RmArgs),
}

#[derive(Args)]
pub struct RmArgs {
    /// The volume's name.
    name: String,
}

pub fn run(command: VolumeCommand) -> CmdResult {
    init_logging("warn");
    match command {
        VolumeCommand::Rm(args) => block_on(async {
            let engine = swarmkeeper_engine::Engine::from_env()?;
            engine.remove_volume(&args.name).await?;
            println!("removed volume {}", args.name);
            Ok(())
        }),
    }
}
