//! The same rules applied to a service as the engine runs it (its Engine API spec), for the
//! dashboard: a service deployed by any tool, with any file, still gets its warnings. Only the
//! rules whose setting survives into the spec apply; the rest need the stack file.

use serde::Serialize;
use serde_json::Value;

use crate::rules::{
    FAILURE_ACTION_NOT_ROLLBACK, JSON_FILE_UNBOUNDED, LOGGING_DEFAULT, LOGGING_NONE,
    NO_UPDATE_CONFIG, PARALLELISM_ZERO, RESTART_FOREVER,
};
use crate::{Rule, Severity};

/// A finding on a running service: no file position, the spec is the engine's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunningFinding {
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    pub why: &'static str,
    pub fix: &'static str,
}

fn finding(rule: &Rule, message: impl Into<String>) -> RunningFinding {
    RunningFinding {
        rule: rule.id,
        severity: rule.severity,
        message: message.into(),
        why: rule.why,
        fix: rule.fix,
    }
}

/// The findings for one service spec (`Spec` of `GET /services/{id}`), most severe first.
pub fn lint_running(spec: &Value) -> Vec<RunningFinding> {
    let mut findings = Vec::new();
    match spec.pointer("/TaskTemplate/LogDriver") {
        None => findings.push(finding(
            &LOGGING_DEFAULT,
            "no log driver in the spec: the daemon's default applies",
        )),
        Some(driver) => {
            let name = driver
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let has_max_size = driver.pointer("/Options/max-size").is_some();
            match name {
                "none" => findings.push(finding(&LOGGING_NONE, "logging driver is `none`")),
                "json-file" if !has_max_size => findings.push(finding(
                    &JSON_FILE_UNBOUNDED,
                    "logging driver `json-file` without `max-size`",
                )),
                _ => {}
            }
        }
    }
    match spec.get("UpdateConfig") {
        None => findings.push(finding(&NO_UPDATE_CONFIG, "no update config")),
        Some(update) => {
            let action = update
                .get("FailureAction")
                .and_then(Value::as_str)
                .unwrap_or("pause");
            if action != "rollback" {
                findings.push(finding(
                    &FAILURE_ACTION_NOT_ROLLBACK,
                    format!("update failure action is `{action}`"),
                ));
            }
            if update.get("Parallelism").and_then(Value::as_u64) == Some(0) {
                findings.push(finding(&PARALLELISM_ZERO, "update parallelism is 0"));
            }
        }
    }
    let restart = spec.pointer("/TaskTemplate/RestartPolicy");
    let condition = restart
        .and_then(|r| r.get("Condition"))
        .and_then(Value::as_str)
        .unwrap_or("any");
    let max_attempts = restart
        .and_then(|r| r.get("MaxAttempts"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if condition == "any" && max_attempts == 0 {
        findings.push(finding(
            &RESTART_FOREVER,
            "restart condition `any` without a maximum of attempts",
        ));
    }
    findings.sort_by_key(|f| f.severity);
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(spec: &Value) -> Vec<&'static str> {
        lint_running(spec).into_iter().map(|f| f.rule).collect()
    }

    #[test]
    fn a_bare_spec_gets_the_outage_warnings() {
        let spec = json!({"TaskTemplate": {"ContainerSpec": {"Image": "app:1"}}});
        assert_eq!(rules(&spec), ["SK010", "SK021", "SK003"]);
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
        let spec = json!({
            "TaskTemplate": {
                "LogDriver": {"Name": "json-file", "Options": {"max-size": "10m"}},
                "RestartPolicy": {"Condition": "any", "MaxAttempts": 3}
            },
            "UpdateConfig": {"FailureAction": "rollback", "Parallelism": 1}
        });
        assert!(rules(&spec).is_empty());
    }

    #[test]
    fn unbounded_json_file_and_parallelism_zero_are_found() {
        let spec = json!({
            "TaskTemplate": {"LogDriver": {"Name": "json-file"}, "RestartPolicy": {"Condition": "none"}},
            "UpdateConfig": {"FailureAction": "rollback", "Parallelism": 0}
        });
        assert_eq!(rules(&spec), ["SK002", "SK030"]);
    }
}
