//! `swarmkeeper lint -c FILE… [--format table|json|sarif]`: load stack files as
//! `docker stack deploy` would, and report the settings that make deploys unsafe.

use std::collections::BTreeSet;

use clap::{Args, ValueEnum};
use serde::Serialize;
use serde_json::{json, Value};
use swarmkeeper_lint::{has_errors, lint, rule, Finding, Severity, RULES};

use super::{load_stack_files, ComposeFiles, StackFiles};
use crate::exit::{CmdResult, Failure};
use crate::format;

#[derive(Args)]
pub struct LintArgs {
    #[command(flatten)]
    compose: ComposeFiles,
    /// How to print the findings.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    /// A table for people, with why and how to fix each rule found.
    Table,
    /// One JSON object with a `findings` list.
    Json,
    /// SARIF 2.1.0, for code-scanning views.
    Sarif,
}

pub fn run(args: LintArgs) -> CmdResult {
    let StackFiles { names, stack, .. } = load_stack_files(&args.compose.files)?;
    let findings = lint(&stack);
    match args.format {
        OutputFormat::Table => print_table(&findings, names.len()),
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&JsonReport {
                findings: &findings
            })
            .expect("findings serialise")
        ),
        OutputFormat::Sarif => println!("{}", pretty(&sarif_report(&findings))),
    }
    if has_errors(&findings) {
        return Err(Failure::Failed(format!("lint: {}", counts(&findings))));
    }
    Ok(())
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("a JSON value serialises")
}

/// `1 error, 2 warnings, 0 notes`.
fn counts(findings: &[Finding]) -> String {
    let count = |severity| findings.iter().filter(|f| f.severity == severity).count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}, {}",
        plural(count(Severity::Error), "error"),
        plural(count(Severity::Warning), "warning"),
        plural(count(Severity::Info), "note"),
    )
}

fn print_table(findings: &[Finding], file_count: usize) {
    if findings.is_empty() {
        println!("no findings in {file_count} file(s)");
        return;
    }
    let mut table = format::table();
    table.set_header(["LOCATION", "SEVERITY", "RULE", "SERVICE", "FINDING"]);
    for f in findings {
        table.add_row([
            format!("{}:{}:{}", f.file, f.line, f.column),
            f.severity.as_str().to_string(),
            f.rule.to_string(),
            f.service.clone(),
            f.message.clone(),
        ]);
    }
    println!("{table}");
    // Each rule found is explained once, in id order, rather than on every row.
    let found: BTreeSet<&str> = findings.iter().map(|f| f.rule).collect();
    for id in found {
        let rule = rule(id).expect("findings come from known rules");
        println!(
            "\n{} {}: {}\n  why: {}\n  fix: {}",
            rule.id, rule.name, rule.summary, rule.why, rule.fix
        );
    }
    println!("\n{}", counts(findings));
}

/// The `--format json` document; a struct so that finding fields keep their order.
#[derive(Serialize)]
struct JsonReport<'a> {
    findings: &'a [Finding],
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn sarif_report(findings: &[Finding]) -> Value {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|rule| {
            json!({
                "id": rule.id,
                "name": rule.name,
                "shortDescription": { "text": rule.summary },
                "fullDescription": { "text": rule.why },
                "help": { "text": format!("{}.\n\nFix: {}.", rule.why, rule.fix) },
                "defaultConfiguration": { "level": sarif_level(rule.severity) },
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule),
                "level": sarif_level(f.severity),
                "message": { "text": format!("{} (service {}). Fix: {}", f.message, f.service, f.fix) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": f.file },
                        "region": { "startLine": f.line, "startColumn": f.column },
                    }
                }],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "swarmkeeper",
                    "version": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "results": results,
        }],
    })
}
