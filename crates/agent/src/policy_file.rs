//! How `gc plan` and `gc run` on a node use the policy of the agent that runs there.
//!
//! The agent writes the policy it runs with into its state directory ([`POLICY_FILE`]) when it
//! starts. A one-shot command finds that directory: the one it is given, else the state
//! directory of the running agent container (labelled [`AGENT_LABEL`]), through the container's
//! mounts, else the default. It reads the policy there and the agent's memory (first seen,
//! last used, service history) with it, so its plan is the agent's.

use std::path::{Path, PathBuf};

use swarmkeeper_engine::{Engine, EngineError};
use swarmkeeper_gc::PolicySettings;

/// The file, in the agent's state directory, that holds the policy it runs with (JSON,
/// [`PolicySettings`]).
pub const POLICY_FILE: &str = "agent-policy.json";

/// The container label that marks an agent (`deploy/swarmkeeper.yml` sets it).
pub const AGENT_LABEL: &str = "swarmkeeper.agent";

/// The state directory an agent in a container uses unless told otherwise.
const AGENT_STATE_DIR: &str = "/var/lib/swarmkeeper";

/// Writes the agent's policy into its state directory, replacing the file whole.
pub fn write_policy(state_dir: &Path, settings: &PolicySettings) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(settings).expect("settings always serialise") + "\n";
    let temporary = state_dir.join(format!("{POLICY_FILE}.tmp"));
    std::fs::write(&temporary, text)?;
    std::fs::rename(temporary, state_dir.join(POLICY_FILE))
}

/// The policy an agent wrote into `state_dir`; `Ok(None)` when there is none.
pub fn read_policy(state_dir: &Path) -> Result<Option<PolicySettings>, String> {
    let path = state_dir.join(POLICY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// The state directory, on this host, of the agent container running on `engine`: the host
/// side of the mount that holds its `SWARMKEEPER_STATE_DIR`. `None` when no agent container
/// runs there or its state is not on a mount.
pub async fn find_agent_state_dir(engine: &Engine) -> Result<Option<PathBuf>, EngineError> {
    let agents = engine.running_containers_labelled(AGENT_LABEL).await?;
    let Some(agent) = agents.first() else {
        return Ok(None);
    };
    let inspect = engine.container_mounts(&agent.id).await?;
    let state_dir = inspect
        .env
        .iter()
        .filter_map(|e| e.strip_prefix("SWARMKEEPER_STATE_DIR="))
        .next_back()
        .filter(|dir| !dir.is_empty())
        .unwrap_or(AGENT_STATE_DIR);
    let state_dir = Path::new(state_dir);
    Ok(inspect
        .mounts
        .iter()
        .filter(|m| state_dir.starts_with(&m.destination))
        .max_by_key(|m| m.destination.components().count())
        .and_then(|m| Some(m.source.join(state_dir.strip_prefix(&m.destination).ok()?))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("swarmkeeper-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(read_policy(&dir), Ok(None));
        let settings = PolicySettings {
            high_threshold_percent: 70,
            ..PolicySettings::default()
        };
        write_policy(&dir, &settings).unwrap();
        assert_eq!(read_policy(&dir), Ok(Some(settings)));
        std::fs::write(dir.join(POLICY_FILE), "{oops").unwrap();
        assert!(read_policy(&dir).unwrap_err().contains(POLICY_FILE));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
