//! One module per subcommand, plus the setup they share.

pub mod agent;
pub mod deploy;
pub mod diff;
pub mod disk;
pub mod gc;
pub mod healthcheck;
pub mod history;
pub mod lint;
pub mod logs;
pub mod outdated;
pub mod registry;
pub mod rollback;
pub mod server;
pub mod volume;

use std::path::PathBuf;

use clap::Args;
use swarmkeeper_agent::Node;
use swarmkeeper_engine::Engine;
use swarmkeeper_store::Store;

use crate::exit::Failure;

/// The `STACK` argument of `deploy`, `diff`, `history`, `rollback` and `outdated`, checked
/// before anything reaches the engine ([`swarmkeeper_engine::check_stack_name`]): a usage
/// error, exit 2.
fn stack_name(text: &str) -> Result<String, String> {
    swarmkeeper_engine::check_stack_name(text).map(|()| text.to_owned())
}

/// The default state directory of a node.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/swarmkeeper";

/// Where a node command finds the engine's filesystem and the agent's memory.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// The agent's state directory (first-seen and last-used times, GC history, the agent's
    /// policy) [default: that of the agent container running on this engine, else
    /// /var/lib/swarmkeeper].
    #[arg(long, env = "SWARMKEEPER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Measure this filesystem instead of the engine's data root (an agent in a container
    /// mounts the data root here).
    #[arg(long, env = "SWARMKEEPER_FS_PATH", value_name = "PATH")]
    pub fs_path: Option<PathBuf>,
}

impl NodeArgs {
    /// Connects to the engine and opens the state database. Without `--state-dir`: the state
    /// directory of the agent container running on this engine
    /// ([`swarmkeeper_agent::find_agent_state_dir`]), else the default; one this user cannot
    /// write means a memory-only database: the command still works, it just cannot remember.
    /// The command's commits stay in the database's write-ahead log when it exits
    /// ([`Store::skip_checkpoint_on_close`]).
    pub async fn node(&self) -> Result<Node, Failure> {
        let engine = Engine::from_env()?;
        let info = engine.info().await?;
        let store = match &self.state_dir {
            Some(dir) => {
                Store::open(dir).map_err(|e| Failure::Usage(format!("--state-dir: {e}")))?
            }
            None => {
                let agent = swarmkeeper_agent::find_agent_state_dir(&engine).await?;
                agent
                    .and_then(|dir| {
                        Store::open(&dir)
                            .inspect_err(
                                |e| tracing::warn!(error = %e, "cannot open the agent's state"),
                            )
                            .ok()
                    })
                    .map_or_else(|| Store::open(DEFAULT_STATE_DIR.as_ref()), Ok)
                    .or_else(|e| {
                        tracing::warn!(error = %e, "using a memory-only state database");
                        Store::in_memory()
                    })
                    .map_err(|e| Failure::Usage(e.to_string()))?
            }
        };
        if let Err(e) = store.skip_checkpoint_on_close() {
            tracing::debug!(error = %e, "the state database checkpoints when it closes");
        }
        let fs_path = self
            .fs_path
            .clone()
            .unwrap_or_else(|| info.root_dir.clone());
        Ok(Node::new(engine, store, fs_path, info.root_dir))
    }
}

/// The `-c FILE…` of `deploy` and `lint`.
#[derive(Args, Debug, Clone)]
pub struct ComposeFiles {
    /// A compose file; repeat to merge several in order, as with `docker stack deploy -c`.
    #[arg(
        short = 'c',
        long = "compose-file",
        value_name = "FILE",
        required = true
    )]
    pub files: Vec<PathBuf>,
}

/// The stack files of `-c FILE…`, read and parsed as the docker CLI would: merged in order,
/// `${VAR}` from this process's environment, relative paths from the first file's directory.
pub struct StackFiles {
    pub names: Vec<String>,
    pub stack: swarmkeeper_compose::Stack,
    /// Each file's SHA-256 and text, for the deploy history.
    pub digests: Vec<swarmkeeper_store::FileDigest>,
}

pub fn load_stack_files(files: &[PathBuf]) -> Result<StackFiles, Failure> {
    let mut texts = Vec::with_capacity(files.len());
    let mut digests = Vec::with_capacity(files.len());
    for path in files {
        let bytes =
            std::fs::read(path).map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
        let sha256 = swarmkeeper_deploy::sha256_hex(&bytes);
        let text = String::from_utf8(bytes)
            .map_err(|_| Failure::Usage(format!("{}: not UTF-8 text", path.display())))?;
        digests.push(swarmkeeper_store::FileDigest {
            path: path.display().to_string(),
            sha256,
            text: Some(text.clone()),
        });
        texts.push(text);
    }
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let sources: Vec<swarmkeeper_compose::SourceFile> = names
        .iter()
        .zip(&texts)
        .map(|(name, text)| swarmkeeper_compose::SourceFile { name, text })
        .collect();
    let variables: std::collections::HashMap<String, String> = std::env::vars().collect();
    // The docker CLI resolves relative paths against the first file's absolute directory, so
    // a relative bind mount reaches the engine as an absolute path.
    let first_dir = files
        .first()
        .and_then(|f| f.parent())
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let working_dir = std::path::absolute(first_dir).unwrap_or_else(|_| first_dir.to_path_buf());
    let working_dir = working_dir.as_path();
    let read_file = |path: &str| std::fs::read_to_string(path);
    let environment = swarmkeeper_compose::Environment {
        variables: &variables,
        working_dir,
        read_file: &read_file,
    };
    let stack = swarmkeeper_compose::load(&sources, &environment)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(StackFiles {
        names,
        stack,
        digests,
    })
}

/// The content of each secret and config the stack takes from a file, by the (resolved) path
/// the spec names: the loader reads them, so that a deploy reads nothing itself.
pub fn read_object_files(
    spec: &swarmkeeper_compose::StackSpec,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>, Failure> {
    let mut files = std::collections::BTreeMap::new();
    let objects = spec
        .secrets
        .iter()
        .map(|o| ("secret", o))
        .chain(spec.configs.iter().map(|o| ("config", o)));
    for (word, object) in objects.filter(|(_, o)| !o.file.is_empty()) {
        if files.contains_key(&object.file) {
            continue;
        }
        let data = std::fs::read(&object.file)
            .map_err(|e| Failure::Usage(format!("{word} {}: {}: {e}", object.name, object.file)))?;
        files.insert(object.file.clone(), data);
    }
    Ok(files)
}

/// A shared secret from a file (a Swarm secret), read the way agents read it
/// (`swarmkeeper_report::secret_from_file_content`) so both ends agree. An empty or unreadable
/// file is a usage error naming the flag.
pub fn read_secret_file(flag: &str, path: &std::path::Path) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Usage(format!("{flag} {}: {e}", path.display())))?;
    let secret = swarmkeeper_report::secret_from_file_content(&text);
    if secret.is_empty() {
        return Err(Failure::Usage(format!(
            "{flag} {}: the file is empty",
            path.display()
        )));
    }
    Ok(secret.to_owned())
}
