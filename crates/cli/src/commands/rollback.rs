//! `swarmkeeper rollback STACK [--to REV]`: re-apply a recorded revision, with the same
//! progress and stack-wide safety as a deploy.

use clap::Args;
use swarmkeeper_deploy::Request;
use swarmkeeper_engine::Engine;

use super::deploy::{conclude, stop_on_signals, who, RolloutArgs, View};
use crate::exit::{block_on, CmdResult};

#[derive(Args)]
pub struct RollbackArgs {
    #[arg(value_parser = super::stack_name)]
    stack: String,
    /// The revision to go back to (see `swarmkeeper history`) [default: the newest succeeded
    /// revision whose specs are not what runs now].
    #[arg(long, value_name = "REV")]
    to: Option<u64>,
    #[command(flatten)]
    common: RolloutArgs,
}

pub fn run(args: RollbackArgs) -> CmdResult {
    let engine = Engine::from_env()?;
    let request = Request {
        stack: args.stack.clone(),
        by: who(&args.common.by),
        action: None,
        files: Vec::new(),
        registry_auth: args.common.registry.registry_auth()?,
    };
    let options = args.common.options();
    let mut view = View::new(args.common.progress);
    let result = block_on(async {
        stop_on_signals(&options.stop);
        let history = args.common.history(&engine).await;
        swarmkeeper_deploy::rollback(&engine, &history, &request, args.to, &options, &mut |p| {
            view.show(p)
        })
        .await
    });
    view.finish();
    conclude(&args.stack, "rollback", result)
}
