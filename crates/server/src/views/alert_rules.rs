//! The alert rules as a form: a fieldset per rule (on or off, and each figure with its unit),
//! and the form read back into [`AlertRules`]. The fields are the rules' JSON fields, named by
//! their dotted path (`node_down.for`, `memory_near_limit.percent`, `repeat_interval`), so the
//! form, the JSON twin (`PUT /api/alerts/rules`) and the errors of
//! [`AlertRules::validate`] name a figure the same way, and a figure added to the rules
//! appears in the form without a change here (a duration, a count or a switch, as its JSON
//! value is a string, a number or a boolean).
//!
//! Reading is all or nothing: every field is checked, each error is kept next to its field,
//! and rules come out only when there is none.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};
use swarmkeeper_alerts::{AlertRules, RuleId, RulesError};

/// The rules form: one group per rule, then the repeat interval.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RulesForm {
    pub groups: Vec<RuleGroup>,
    /// How many fields are refused.
    pub errors: usize,
}

/// One rule's fieldset.
#[derive(Clone, Debug, Serialize)]
pub struct RuleGroup {
    /// The rule's id (`node-down`), or `general` for the repeat interval.
    pub id: String,
    /// What the rule watches, in a sentence.
    pub about: &'static str,
    pub fields: Vec<RuleField>,
}

/// One input.
#[derive(Clone, Debug, Serialize)]
pub struct RuleField {
    /// The form field: the figure's dotted JSON path.
    pub name: String,
    pub label: &'static str,
    /// What the value is written in: `duration (90s, 5m, 1h30m; 0: at once)`, `%`, `count`.
    pub unit: &'static str,
    /// A switch (a checkbox) rather than a text input.
    pub switch: bool,
    pub number: bool,
    /// The value as shown (as posted, when the form comes back refused).
    pub value: String,
    pub checked: bool,
    pub error: Option<String>,
}

/// The field that holds the repeat interval.
const REPEAT: &str = "repeat_interval";

fn about(rule: RuleId) -> &'static str {
    match rule {
        RuleId::DiskGcShortfall => {
            "a disk at or above the GC high threshold after a GC pass that could not free enough"
        }
        RuleId::DiskFullForecast => "a disk predicted full from the trend of its recent samples",
        RuleId::NodeDown => "Swarm reports a node down",
        RuleId::AgentSilent => "a node's agent stopped reporting",
        RuleId::ServiceNotConverged => "a service whose tasks do not all run its current spec",
        RuleId::RolledBack => "a service's last update was rolled back",
        RuleId::RestartLoop => "a service's tasks keep being restarted",
        RuleId::OomKill => "the kernel's OOM killer killed a process of a task",
        RuleId::MemoryNearLimit => "a task's memory near its limit",
        RuleId::AlertChannelUnusable => {
            "an alert channel whose settings the server cannot open (its key changed): \
             told to the channels that work"
        }
        RuleId::Test => "",
    }
}

/// Label and unit of a figure, by its JSON name (and rule, where one name means two things).
fn describe(group: &str, key: &str) -> (&'static str, &'static str) {
    const DURATION: &str = "duration: 90s, 5m, 1h30m";
    match (group, key) {
        (_, "enabled") => ("on", ""),
        ("disk_full_forecast", "for") => (
            "for at most",
            "duration: 90s, 5m, 1h30m; a quarter of the time left when that is shorter",
        ),
        (_, "for") => ("for", "duration: 90s, 5m, 1h30m; 0 fires at once"),
        ("disk_full_forecast", "within") => ("predicted full within", DURATION),
        ("disk_full_forecast", "window") => ("trend of the last", DURATION),
        ("disk_full_forecast", "min_samples") => ("at least this many samples", "count"),
        ("disk_full_forecast", "min_span") => (
            "spanning at most",
            "duration: 90s, 5m, 1h30m; a quarter of the time left when that is shorter",
        ),
        ("restart_loop", "restarts") => ("restarts", "count"),
        ("restart_loop", "within") => ("within", DURATION),
        ("oom_kill", "keep_firing_for") => ("keep firing after the last kill for", DURATION),
        (_, "keep_firing_for") => (
            "keep firing after the condition ends for",
            "duration: 90s, 5m, 1h30m; 0 resolves at once",
        ),
        ("memory_near_limit", "percent") => ("at or above", "% of the limit"),
        (_, REPEAT) => (
            "send a firing alert again every",
            "duration: 90s, 5m, 4h; 0 sends it once",
        ),
        _ => ("", ""),
    }
}

fn field(group: &str, key: &str, value: &Value) -> RuleField {
    let (label, unit) = describe(group, key);
    let name = if group.is_empty() {
        key.to_string()
    } else {
        format!("{group}.{key}")
    };
    RuleField {
        name,
        label,
        unit,
        switch: value.is_boolean(),
        number: value.is_number(),
        value: match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        },
        checked: value.as_bool().unwrap_or(false),
        error: None,
    }
}

/// The form showing `rules`.
pub fn form(rules: &AlertRules) -> RulesForm {
    let json = serde_json::to_value(rules).expect("rules serialise");
    let mut groups = Vec::new();
    for rule in RuleId::ALL {
        let key = rule.as_str().replace('-', "_");
        let Some(Value::Object(figures)) = json.get(&key) else {
            continue;
        };
        // The switch first, then the figures.
        let fields: Vec<RuleField> = figures
            .iter()
            .filter(|(k, _)| *k == "enabled")
            .chain(figures.iter().filter(|(k, _)| *k != "enabled"))
            .map(|(k, v)| field(&key, k, v))
            .collect();
        groups.push(RuleGroup {
            id: rule.as_str().to_string(),
            about: about(rule),
            fields,
        });
    }
    groups.push(RuleGroup {
        id: "general".to_string(),
        about: "every rule",
        fields: vec![field("", REPEAT, &json[REPEAT])],
    });
    RulesForm { groups, errors: 0 }
}

/// The rules a posted form gives (each field by its dotted name; a switch not posted is off;
/// other names, such as the CSRF token, ignored), or the form again with the posted values and
/// every error next to its field.
pub fn read(posted: &BTreeMap<String, String>) -> Result<AlertRules, RulesForm> {
    let mut shown = form(&AlertRules::default());
    let mut json = Map::new();
    for group in &mut shown.groups {
        for f in &mut group.fields {
            let text = posted.get(&f.name).map(|s| s.trim()).unwrap_or("");
            let value = if f.switch {
                f.checked = posted.contains_key(&f.name);
                Value::Bool(f.checked)
            } else {
                f.value = text.to_string();
                if f.number {
                    match text.parse::<u64>() {
                        Ok(n) => Value::from(n),
                        Err(_) => {
                            f.error = Some(format!("{text:?} is not a whole number"));
                            continue;
                        }
                    }
                } else {
                    match swarmkeeper_units::parse_duration(text) {
                        Ok(_) => Value::from(text),
                        Err(e) => {
                            f.error = Some(e);
                            continue;
                        }
                    }
                }
            };
            match f.name.split_once('.') {
                Some((rule, key)) => {
                    let rule = json
                        .entry(rule)
                        .or_insert_with(|| Value::Object(Map::new()));
                    rule[key] = value;
                }
                None => {
                    json.insert(f.name.clone(), value);
                }
            }
        }
    }
    let refuse = |mut shown: RulesForm, name: &str, error: String| {
        for f in shown.groups.iter_mut().flat_map(|g| g.fields.iter_mut()) {
            if f.name == name {
                f.error = Some(error.clone());
            }
        }
        shown
    };
    shown.errors = count_errors(&shown);
    if shown.errors > 0 {
        return Err(shown);
    }
    let rules = match AlertRules::from_json(&Value::Object(json).to_string()) {
        Ok(rules) => rules,
        Err(RulesError::Invalid { field, reason }) => {
            let mut shown = refuse(shown, field, reason);
            shown.errors = count_errors(&shown).max(1);
            return Err(shown);
        }
        // A number too large for its figure (a percent over 255): serde quotes it.
        Err(RulesError::Syntax { message, .. }) => {
            let name = shown
                .groups
                .iter()
                .flat_map(|g| &g.fields)
                .find(|f| f.number && message.contains(&format!("`{}`", f.value)))
                .map(|f| f.name.clone())
                .unwrap_or_default();
            let mut shown = refuse(shown, &name, "out of range".to_string());
            shown.errors = count_errors(&shown).max(1);
            return Err(shown);
        }
    };
    Ok(rules)
}

fn count_errors(form: &RulesForm) -> usize {
    form.groups
        .iter()
        .flat_map(|g| &g.fields)
        .filter(|f| f.error.is_some())
        .count()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The form as a browser posts it: every text field, and the switches that are on.
    fn posted(form: &RulesForm) -> BTreeMap<String, String> {
        form.groups
            .iter()
            .flat_map(|g| &g.fields)
            .filter(|f| !f.switch || f.checked)
            .map(|f| (f.name.clone(), f.value.clone()))
            .chain([("csrf_token".to_string(), "x".to_string())])
            .collect()
    }

    fn error_of<'a>(form: &'a RulesForm, name: &str) -> Option<&'a str> {
        form.groups
            .iter()
            .flat_map(|g| &g.fields)
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no field {name}"))
            .error
            .as_deref()
    }

    #[test]
    fn every_rule_and_figure_has_a_labelled_field() {
        let form = form(&AlertRules::default());
        let ids: Vec<&str> = form.groups.iter().map(|g| g.id.as_str()).collect();
        let mut want: Vec<&str> = RuleId::ALL.iter().map(|r| r.as_str()).collect();
        want.push("general");
        assert_eq!(ids, want);
        for g in &form.groups {
            for f in &g.fields {
                assert!(!f.label.is_empty(), "{} has no label", f.name);
                assert!(f.switch || !f.unit.is_empty(), "{} has no unit", f.name);
            }
        }
        assert_eq!(form.groups[0].fields[0].name, "disk_gc_shortfall.enabled");
    }

    #[test]
    fn the_defaults_posted_back_are_the_defaults() {
        let form = form(&AlertRules::default());
        assert_eq!(read(&posted(&form)).unwrap(), AlertRules::default());
    }

    #[test]
    fn changed_figures_and_a_switch_turned_off_are_read() {
        let mut fields = posted(&form(&AlertRules::default()));
        fields.remove("node_down.enabled");
        fields.insert("node_down.for".into(), "5m".into());
        fields.insert("memory_near_limit.percent".into(), "80".into());
        fields.insert("repeat_interval".into(), "0".into());
        let rules = read(&fields).unwrap();
        assert!(!rules.node_down.enabled);
        assert_eq!(rules.node_down.for_duration, Duration::from_secs(300));
        assert_eq!(rules.memory_near_limit.percent, 80);
        assert_eq!(rules.repeat_interval, Duration::ZERO);
        assert!(rules.oom_kill.enabled);
    }

    #[test]
    fn every_bad_field_is_refused_next_to_itself_keeping_what_was_typed() {
        let mut fields = posted(&form(&AlertRules::default()));
        fields.insert("node_down.for".into(), "soon".into());
        fields.insert("restart_loop.restarts".into(), "five".into());
        let refused = read(&fields).unwrap_err();
        assert_eq!(refused.errors, 2);
        let e = error_of(&refused, "node_down.for").unwrap();
        assert!(e.contains("like 90s, 2m or 1h30m"), "{e}");
        assert_eq!(
            error_of(&refused, "restart_loop.restarts"),
            Some("\"five\" is not a whole number")
        );
        let typed = refused
            .groups
            .iter()
            .flat_map(|g| &g.fields)
            .find(|f| f.name == "node_down.for")
            .unwrap();
        assert_eq!(typed.value, "soon");
        assert_eq!(error_of(&refused, "node_down.enabled"), None);
    }

    /// Issue 15: every rule has a `keep_firing_for` field, read in the units' grammar and
    /// refused next to itself.
    #[test]
    fn keep_firing_for_is_a_field_of_every_rule_refused_next_to_itself() {
        let shown = form(&AlertRules::default());
        for rule in RuleId::ALL {
            let name = format!("{}.keep_firing_for", rule.as_str().replace('-', "_"));
            let field = shown
                .groups
                .iter()
                .flat_map(|g| &g.fields)
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("no field {name}"));
            assert!(!field.label.is_empty() && !field.unit.is_empty(), "{name}");
        }
        let mut fields = posted(&shown);
        fields.insert(
            "memory_near_limit.keep_firing_for".into(),
            "10 minutes".into(),
        );
        let refused = read(&fields).unwrap_err();
        assert_eq!(refused.errors, 1);
        let e = error_of(&refused, "memory_near_limit.keep_firing_for").unwrap();
        assert_eq!(
            e,
            "invalid duration \"10 minutes\": unknown unit \" minutes\", expected ns, us, ms, \
             s, m or h"
        );
        fields.insert("memory_near_limit.keep_firing_for".into(), "10m".into());
        let rules = read(&fields).unwrap();
        assert_eq!(
            rules.memory_near_limit.keep_firing_for,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn a_figure_out_of_range_is_refused_at_its_field() {
        for (name, value) in [
            ("memory_near_limit.percent", "0"),
            ("memory_near_limit.percent", "101"),
            ("memory_near_limit.percent", "300"),
            ("disk_full_forecast.window", "30s"),
            ("disk_full_forecast.min_samples", "1"),
        ] {
            let mut fields = posted(&form(&AlertRules::default()));
            fields.insert(name.into(), value.into());
            let refused = read(&fields).unwrap_err();
            assert_eq!(refused.errors, 1, "{name}={value}");
            assert!(error_of(&refused, name).is_some(), "{name}={value}");
        }
    }
}
