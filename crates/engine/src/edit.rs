//! The edits swarmkeeper makes to a raw spec. Everything else in a spec it writes back as the
//! engine or the stack file had it.

use serde_json::{Map, Value};

use swarmkeeper_swarm::ServiceMode;

/// `value[key]`, made an empty object first when it is missing or not an object; `value`
/// itself becomes an object when it is not one.
fn object_at<'a>(value: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    let entry = value
        .as_object_mut()
        .expect("made an object above")
        .entry(key)
        .or_insert(Value::Null);
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    entry.as_object_mut().expect("made an object above")
}

/// Sets `Mode.Replicated.Replicas`, like `docker service scale`; the rest of the spec stays.
pub fn set_replicas(spec: &mut Value, replicas: u64) {
    let mode = object_at(spec, "Mode");
    let replicated = mode.entry("Replicated").or_insert(Value::Null);
    if !replicated.is_object() {
        *replicated = Value::Object(Map::new());
    }
    replicated
        .as_object_mut()
        .expect("made an object above")
        .insert("Replicas".to_owned(), Value::from(replicas));
}

/// Raises `TaskTemplate.ForceUpdate` by one, like `docker service update --force`: Swarm
/// replaces every task whose template differs from the service's.
pub fn force_update(spec: &mut Value) {
    let template = object_at(spec, "TaskTemplate");
    let force = template
        .get("ForceUpdate")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    template.insert("ForceUpdate".to_owned(), Value::from(force + 1));
}

/// Sets `TaskTemplate.ContainerSpec.Image`, like `docker service update --image`: the rest of
/// the spec stays.
pub fn set_image(spec: &mut Value, image: &str) {
    let template = object_at(spec, "TaskTemplate");
    let container = template.entry("ContainerSpec").or_insert(Value::Null);
    if !container.is_object() {
        *container = Value::Object(Map::new());
    }
    container
        .as_object_mut()
        .expect("made an object above")
        .insert("Image".to_owned(), Value::from(image));
}

/// Sets (`Some`) or removes (`None`) one of the service's own labels (`Spec.Labels`), like
/// `docker service update --label-add` / `--label-rm`: no task is replaced.
pub fn set_label(spec: &mut Value, key: &str, value: Option<&str>) {
    let labels = object_at(spec, "Labels");
    match value {
        Some(value) => {
            labels.insert(key.to_owned(), Value::from(value));
        }
        None => {
            labels.remove(key);
        }
    }
}

/// A replicated spec that does not say how many replicas takes the current service's count,
/// as `docker stack deploy` does: a service scaled by hand keeps its scale across deploys.
pub fn inherit_replicas(desired: &mut Value, current: &ServiceMode) {
    let ServiceMode::Replicated { replicas } = current else {
        return;
    };
    let Some(replicated) = desired
        .as_object_mut()
        .and_then(|spec| spec.get_mut("Mode"))
        .and_then(Value::as_object_mut)
        .and_then(|mode| mode.get_mut("Replicated"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if replicated.get("Replicas").is_none_or(Value::is_null) {
        replicated.insert("Replicas".to_owned(), Value::from(*replicas));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_image_keeps_the_rest_of_the_container_spec() {
        let mut spec = json!({"TaskTemplate": {"ContainerSpec": {"Image": "a:1", "Env": ["X=1"]}, "ForceUpdate": 2}});
        set_image(&mut spec, "a:1@sha256:00");
        assert_eq!(
            spec,
            json!({"TaskTemplate": {"ContainerSpec": {"Image": "a:1@sha256:00", "Env": ["X=1"]}, "ForceUpdate": 2}})
        );
        let mut empty = json!({});
        set_image(&mut empty, "b");
        assert_eq!(empty["TaskTemplate"]["ContainerSpec"]["Image"], "b");
    }

    #[test]
    fn set_label_adds_and_removes_one_label() {
        let mut spec = json!({"Name": "x", "Labels": {"keep": "1"}});
        set_label(&mut spec, "swarmkeeper.autodeploy", Some("true"));
        assert_eq!(
            spec["Labels"],
            json!({"keep": "1", "swarmkeeper.autodeploy": "true"})
        );
        set_label(&mut spec, "swarmkeeper.autodeploy", None);
        assert_eq!(spec["Labels"], json!({"keep": "1"}));
    }

    #[test]
    fn missing_objects_are_made_and_present_ones_kept() {
        let mut spec = json!({"Name": "x", "Mode": {"Replicated": {"Replicas": 1, "Other": true}}});
        set_replicas(&mut spec, 5);
        assert_eq!(
            spec["Mode"]["Replicated"],
            json!({"Replicas": 5, "Other": true})
        );
        let mut bare = json!({"Name": "x", "TaskTemplate": null});
        force_update(&mut bare);
        force_update(&mut bare);
        assert_eq!(
            bare,
            json!({"Name": "x", "TaskTemplate": {"ForceUpdate": 2}})
        );
        let mut none = json!({"Name": "x"});
        set_replicas(&mut none, 2);
        assert_eq!(none["Mode"], json!({"Replicated": {"Replicas": 2}}));
    }

    #[test]
    fn an_unset_replica_count_keeps_the_current_scale() {
        let current = ServiceMode::Replicated { replicas: 5 };
        let mut desired = json!({"Mode": {"Replicated": {}}});
        inherit_replicas(&mut desired, &current);
        assert_eq!(desired, json!({"Mode": {"Replicated": {"Replicas": 5}}}));
        let mut explicit = json!({"Mode": {"Replicated": {"Replicas": 2}}});
        inherit_replicas(&mut explicit, &current);
        assert_eq!(explicit["Mode"]["Replicated"]["Replicas"], 2);
        let mut global = json!({"Mode": {"Global": {}}});
        inherit_replicas(&mut global, &current);
        assert_eq!(global, json!({"Mode": {"Global": {}}}));
        let mut from_global = json!({"Mode": {"Replicated": {}}});
        inherit_replicas(&mut from_global, &ServiceMode::Global);
        assert_eq!(from_global, json!({"Mode": {"Replicated": {}}}));
    }
}
