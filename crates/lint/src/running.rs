//! The rules applied to a service as the engine runs it, for the dashboard: a service deployed
//! by any tool, with any file, still gets its warnings. The same rule code as for a file runs
//! on the same [`Facts`], so a file and the service `swarmkeeper deploy` made of it get the
//! same findings (those about keys the Engine never sees aside).

use serde::Serialize;
use swarmkeeper_swarm::ServiceView;

use crate::facts::Facts;
use crate::rules::check;
use crate::Severity;

/// A finding on a running service: no file position, the spec is the engine's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunningFinding {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    pub why: &'static str,
    pub fix: &'static str,
}

/// The findings for one running service's spec, read typed, most severe first.
pub fn lint_running(view: &ServiceView) -> Vec<RunningFinding> {
    let mut findings: Vec<RunningFinding> = check(&Facts::of_spec(view))
        .into_iter()
        .map(|(rule, _, message)| RunningFinding {
            rule: rule.id,
            severity: rule.severity,
            message,
            why: rule.why,
            fix: rule.fix,
        })
        .collect();
    findings.sort_by_key(|f| f.severity);
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn rules(spec: &Value) -> Vec<&'static str> {
        lint_running(&ServiceView::read(spec).unwrap())
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    const HEALTHCHECK: &str = r#"{"Test": ["CMD", "/health"], "Interval": 5000000000, "Timeout": 2000000000, "Retries": 3}"#;

    fn healthy(mut spec: Value) -> Value {
        spec["TaskTemplate"]["ContainerSpec"]["Healthcheck"] =
            serde_json::from_str(HEALTHCHECK).unwrap();
        spec
    }

    #[test]
    fn a_bare_spec_gets_the_outage_warnings() {
        let spec = json!({"TaskTemplate": {"ContainerSpec": {"Image": "app:1"}}});
        // Without a restart policy Swarm's default applies, as for a file without one.
        assert_eq!(rules(&spec), ["SK010", "SK003"]);
    }

    #[test]
    fn logging_none_is_an_error_and_comes_first() {
        let spec = json!({
            "TaskTemplate": {"LogDriver": {"Name": "none"}, "RestartPolicy": {"Condition": "on-failure"}},
            "UpdateConfig": {"FailureAction": "pause"}
        });
        assert_eq!(rules(&spec), ["SK001", "SK011"]);
    }

    #[test]
    fn a_safe_spec_has_no_findings() {
        let spec = healthy(json!({
            "TaskTemplate": {
                "ContainerSpec": {"Image": "app:1@sha256:abc"},
                "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m"}},
                "RestartPolicy": {"Condition": "any", "MaxAttempts": 3}
            },
            "UpdateConfig": {"FailureAction": "rollback", "Parallelism": 1, "Monitor": 30_000_000_000i64}
        }));
        assert!(rules(&spec).is_empty(), "{:?}", rules(&spec));
    }

    #[test]
    fn unbounded_json_file_and_parallelism_zero_are_found() {
        let spec = healthy(json!({
            "TaskTemplate": {"LogDriver": {"Name": "json-file"}, "RestartPolicy": {"Condition": "none"}},
            "UpdateConfig": {"FailureAction": "rollback", "Parallelism": 0, "Monitor": 30_000_000_000i64}
        }));
        assert_eq!(rules(&spec), ["SK002", "SK030"]);
    }

    #[test]
    fn a_written_restart_policy_without_a_limit_restarts_forever() {
        let spec = json!({
            "TaskTemplate": {"LogDriver": {"Name": "local"}, "RestartPolicy": {"Condition": "any", "MaxAttempts": 0}},
            "UpdateConfig": {"FailureAction": "pause"}
        });
        assert_eq!(rules(&spec), ["SK011", "SK021"]);
    }

    #[test]
    fn a_job_has_no_rollout_to_protect() {
        let spec = json!({
            "Mode": {"ReplicatedJob": {"MaxConcurrent": 1}},
            "TaskTemplate": {"LogDriver": {"Name": "local"}}
        });
        assert!(rules(&spec).is_empty(), "{:?}", rules(&spec));
    }
}
