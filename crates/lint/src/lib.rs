//! Lint rules for stack files: the settings that made deploys unsafe (logs that cannot be
//! read, failed updates that leave a service down, rollouts that can never finish), found in a
//! loaded [`Stack`] and reported with the file, line and column to change.
//!
//! Pure: a stack goes in, findings come out, in file and line order. [`lint_running`] applies
//! the same rules to a service as it runs (read typed, `swarmkeeper-swarm`'s `ServiceView`):
//! both read a service's settings into the same facts first, so a file and the service
//! deployed from it cannot disagree.

mod changes;
mod facts;
mod rules;
mod running;

use serde::Serialize;
use swarmkeeper_compose::Stack;

pub use changes::mode_change;
pub use rules::RULES;
pub use running::{lint_running, RunningFinding};

/// How much a finding matters. Errors fail `swarmkeeper lint`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A rule: a stable id to search for and to silence by, and what it protects against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// `SK001`…; never reused for another meaning.
    pub id: &'static str,
    /// A kebab-case name, for tools that show one.
    pub name: &'static str,
    pub severity: Severity,
    /// One line: what the rule finds.
    pub summary: &'static str,
    /// One line: what goes wrong in production.
    pub why: &'static str,
    /// One line: what to write instead.
    pub fix: &'static str,
}

/// One place in a stack file where a rule applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub service: String,
    /// What was found here, with the values involved.
    pub message: String,
    pub why: &'static str,
    pub fix: &'static str,
}

/// Every finding of every rule, ordered by file, line, column and rule.
pub fn lint(stack: &Stack) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (name, service) in &stack.services {
        for (rule, at, message) in rules::check_file_service(service) {
            let at = at.unwrap_or(service.at);
            findings.push(Finding {
                rule: rule.id,
                severity: rule.severity,
                file: stack.file_name(at).to_string(),
                line: at.line,
                column: at.column,
                service: name.clone(),
                message,
                why: rule.why,
                fix: rule.fix,
            });
        }
    }
    findings.sort_by(|a, b| {
        let place = |f: &Finding| {
            (
                stack.files.iter().position(|n| *n == f.file),
                f.line,
                f.column,
                f.rule,
            )
        };
        place(a).cmp(&place(b))
    });
    findings
}

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|rule| rule.id == id)
}

/// True when any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}
