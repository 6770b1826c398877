//! Exit codes, the same for every command: 0 success, 1 the operation ran and failed, 2 bad
//! input or usage, 3 the Docker Engine could not be reached or refused the request.

use std::process::ExitCode;

use swarmkeeper_agent::AgentError;
use swarmkeeper_engine::EngineError;

#[derive(Debug)]
pub enum Failure {
    /// The operation ran and did not achieve its goal; it already printed why.
    Failed(String),
    Usage(String),
    Engine(String),
    /// Stopped by a signal: exits as a shell reports a process the signal ended (128 + its
    /// number: 130 for SIGINT, 143 for SIGTERM); the message says what was left how.
    Interrupted {
        code: u8,
        message: String,
    },
}

pub type CmdResult = Result<(), Failure>;

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure::Engine(e.to_string())
    }
}

impl From<AgentError> for Failure {
    fn from(e: AgentError) -> Self {
        match e {
            AgentError::Engine(e) => e.into(),
            other => Failure::Usage(other.to_string()),
        }
    }
}

pub fn report(result: CmdResult) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Failed(message)) => {
            eprintln!("swarmkeeper: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Usage(message)) => {
            eprintln!("swarmkeeper: error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Engine(message)) => {
            eprintln!("swarmkeeper: {message}");
            ExitCode::from(3)
        }
        Err(Failure::Interrupted { code, message }) => {
            eprintln!("swarmkeeper: {message}");
            ExitCode::from(code)
        }
    }
}

/// The exit status of a command whose output pipe was closed: a Unix tool killed by SIGPIPE
/// reports 128 + 13 to the shell.
pub const CLOSED_PIPE: i32 = 141;

/// Makes a closed standard output or error (`swarmkeeper lint … | head -1`, `| grep -q`) end
/// the command quietly with [`CLOSED_PIPE`], as it ends a Unix tool, instead of a panic.
///
/// Rust ignores SIGPIPE, so such a write fails with EPIPE and `println!` panics ("failed
/// printing to stdout"); this catches exactly that panic. SIGPIPE itself stays ignored: the
/// engine's socket or an HTTP peer closing must remain an error the code handles, not a
/// signal that kills a deploy or the agent halfway.
pub fn end_quietly_on_closed_pipe() {
    let epipe = format!("(os error {})", rustix::io::Errno::PIPE.raw_os_error());
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let printing = message.starts_with("failed printing to stdout")
            || message.starts_with("failed printing to stderr");
        if printing && message.ends_with(&epipe) {
            std::process::exit(CLOSED_PIPE);
        }
        default(info);
    }));
}

/// A single-threaded runtime: the commands wait on one engine, and a small agent stays small.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime always builds")
        .block_on(future)
}

pub fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWARMKEEPER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
