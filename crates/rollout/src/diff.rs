//! Whether a spec would change anything: the engine's spec against the one a deploy wants,
//! with the fields the engine fills in by itself taken as equal to their absence.

use serde_json::Value;

/// Whether the engine's spec `current` already is `desired`: every field of `desired` equals
/// the engine's, and every field only one side has is empty or a value the engine fills in
/// by itself (`Isolation: default`, `Runtime: container`, `Mode: vip`, …). Numbers compare by
/// value, lists in order.
pub fn spec_matches(desired: &Value, current: &Value) -> bool {
    match (desired, current) {
        (Value::Object(d), Value::Object(c)) => {
            d.iter().all(|(key, dv)| match c.get(key) {
                Some(cv) => spec_matches(dv, cv),
                None => is_default(key, dv),
            }) && c
                .iter()
                .all(|(key, cv)| d.contains_key(key) || is_default(key, cv))
        }
        (Value::Array(d), Value::Array(c)) => {
            d.len() == c.len() && d.iter().zip(c).all(|(d, c)| spec_matches(d, c))
        }
        (Value::Number(d), Value::Number(c)) => d.as_f64() == c.as_f64(),
        (Value::Null, other) | (other, Value::Null) => is_default("", other),
        (d, c) => d == c,
    }
}

/// Where `desired` and `current` first differ, as a path like `TaskTemplate.ContainerSpec.Env`;
/// `None` when [`spec_matches`] holds.
pub fn first_difference(desired: &Value, current: &Value) -> Option<String> {
    match (desired, current) {
        (Value::Object(d), Value::Object(c)) => {
            for key in d.keys().chain(c.keys()) {
                let (dv, cv) = (d.get(key), c.get(key));
                let differs = match (dv, cv) {
                    (Some(dv), Some(cv)) => {
                        if let Some(inner) = first_difference(dv, cv) {
                            return Some(if inner.is_empty() {
                                key.clone()
                            } else {
                                format!("{key}.{inner}")
                            });
                        }
                        false
                    }
                    (Some(v), None) | (None, Some(v)) => !is_default(key, v),
                    (None, None) => false,
                };
                if differs {
                    return Some(key.clone());
                }
            }
            None
        }
        _ => (!spec_matches(desired, current)).then(String::new),
    }
}

/// Whether a task runs the service's current `TaskTemplate`
/// ([`swarmkeeper_swarm::Service::task_template`]): its spec is a copy of the template made when
/// it was created (the engine leaves `Runtime` out of the task's copy).
pub fn task_is_current(task_spec: &Value, template: &Value) -> bool {
    let (Some(task), Some(template)) = (task_spec.as_object(), template.as_object()) else {
        return task_spec == template;
    };
    task.keys()
        .chain(template.keys())
        .filter(|key| key.as_str() != "Runtime")
        .all(|key| {
            let (task, template) = (task.get(key), template.get(key));
            // Most parts of a current task's copy are equal to the letter: check that first.
            task == template
                || spec_matches(
                    task.unwrap_or(&Value::Null),
                    template.unwrap_or(&Value::Null),
                )
        })
}

/// A value the engine writes when the spec says nothing, or the absence of one.
fn is_default(key: &str, value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        // A replicated service without `Replicas` runs one.
        Value::Number(n) => n.as_f64() == Some(0.0) || (key == "Replicas" && n.as_u64() == Some(1)),
        Value::String(s) => {
            s.is_empty()
                || matches!(
                    (key, s.as_str()),
                    ("Isolation", "default")
                        | ("Runtime", "container")
                        | ("Mode", "vip")
                        | ("Condition", "any")
                )
        }
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.iter().all(|(k, v)| is_default(k, v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_engine_s_own_fields_do_not_make_a_difference() {
        let desired = json!({
            "Name": "s_web",
            "TaskTemplate": {"ContainerSpec": {"Image": "a:1", "Labels": {"x": "y"}}, "Resources": {}, "Placement": {}},
            "Mode": {"Replicated": {"Replicas": 1}},
            "EndpointSpec": {}
        });
        let current = json!({
            "Name": "s_web",
            "TaskTemplate": {"ContainerSpec": {"Image": "a:1", "Labels": {"x": "y"},
                "Privileges": {"CredentialSpec": null, "SELinuxContext": null}, "Isolation": "default"},
                "Resources": {}, "Placement": {}, "ForceUpdate": 0, "Runtime": "container"},
            "Mode": {"Replicated": {"Replicas": 1}},
            "EndpointSpec": {"Mode": "vip"}
        });
        assert!(spec_matches(&desired, &current));
        let mut changed = current.clone();
        changed["TaskTemplate"]["ContainerSpec"]["Image"] = json!("a:2");
        assert!(!spec_matches(&desired, &changed));
        let mut more = current.clone();
        more["TaskTemplate"]["ContainerSpec"]["Env"] = json!(["A=1"]);
        assert!(
            !spec_matches(&desired, &more),
            "a field removed from the file is a change"
        );
        assert_eq!(first_difference(&desired, &current), None);
        assert_eq!(
            first_difference(&desired, &changed).as_deref(),
            Some("TaskTemplate.ContainerSpec.Image")
        );
        assert_eq!(
            first_difference(&desired, &more).as_deref(),
            Some("TaskTemplate.ContainerSpec.Env")
        );
    }

    #[test]
    fn task_currency_ignores_the_runtime() {
        let template =
            json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 0, "Runtime": "container"});
        assert!(task_is_current(
            &json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 0}),
            &template
        ));
        assert!(!task_is_current(
            &json!({"ContainerSpec": {"Image": "b"}, "ForceUpdate": 0}),
            &template
        ));
        assert!(!task_is_current(
            &json!({"ContainerSpec": {"Image": "a"}, "ForceUpdate": 1}),
            &template
        ));
    }
}
