//! The edits swarmkeeper makes to a raw spec. Everything else in a spec it writes back as the
//! engine or the stack file had it.

use serde_json::{Map, Value};

use swarmkeeper_swarm::{FileKind, ServiceMode};

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

/// The container spec's list a secret or config reference is in, and its reference's field
/// prefix (`Secrets`, `SecretID`).
fn file_field(kind: FileKind) -> (&'static str, &'static str) {
    match kind {
        FileKind::Secret => ("Secrets", "Secret"),
        FileKind::Config => ("Configs", "Config"),
    }
}

/// Points every reference to the secret or config `from_id` at `to` (id, name) instead, like
/// `docker service update --secret-rm old --secret-add source=new,target=…`: the target file,
/// owner and mode stay. Returns how many references moved (0: the spec does not use it).
pub fn swap_file_ref(spec: &mut Value, kind: FileKind, from_id: &str, to: (&str, &str)) -> usize {
    let (list, prefix) = file_field(kind);
    let Some(refs) = spec
        .pointer_mut(&format!("/TaskTemplate/ContainerSpec/{list}"))
        .and_then(Value::as_array_mut)
    else {
        return 0;
    };
    let (id_key, name_key) = (format!("{prefix}ID"), format!("{prefix}Name"));
    let mut moved = 0;
    for reference in refs.iter_mut().filter_map(Value::as_object_mut) {
        if reference.get(&id_key).and_then(Value::as_str) == Some(from_id) {
            reference.insert(id_key.clone(), Value::from(to.0));
            reference.insert(name_key.clone(), Value::from(to.1));
            moved += 1;
        }
    }
    moved
}

/// The fields a service form owns (the dashboard's create and edit form): name, labels,
/// mode, update and rollback configs, published ports; the task's resources, restart policy,
/// placement and log driver; the container's image, command, arguments, environment, mounts,
/// secrets and configs.
const FORM_FIELDS: &[&[&str]] = &[
    &["Name"],
    &["Labels"],
    &["Mode"],
    &["UpdateConfig"],
    &["RollbackConfig"],
    &["EndpointSpec", "Ports"],
    &["TaskTemplate", "Resources"],
    &["TaskTemplate", "RestartPolicy"],
    &["TaskTemplate", "Placement"],
    &["TaskTemplate", "LogDriver"],
    &["TaskTemplate", "ContainerSpec", "Image"],
    &["TaskTemplate", "ContainerSpec", "Command"],
    &["TaskTemplate", "ContainerSpec", "Args"],
    &["TaskTemplate", "ContainerSpec", "Env"],
    &["TaskTemplate", "ContainerSpec", "Mounts"],
    &["TaskTemplate", "ContainerSpec", "Secrets"],
    &["TaskTemplate", "ContainerSpec", "Configs"],
];

/// `current` with the fields a service form owns taken from `form` (a field `form` leaves out
/// is removed): everything else — networks, healthcheck, hostname, fields swarmkeeper does not
/// know — stays as the engine has it, and so do the parts of the form's fields no form holds
/// ([`UNHELD_FIELDS`], a volume mount's labels: see `keep_unheld`) unless `form` gives them.
/// `current` is `{}` for a new service.
pub fn overlay_form_fields(current: &Value, form: &Value) -> Value {
    let mut spec = current.clone();
    for path in FORM_FIELDS {
        let (last, parents) = path.split_last().expect("paths are not empty");
        let wanted = parents
            .iter()
            .try_fold(form, |v, key| v.get(key))
            .and_then(|v| v.get(last))
            .filter(|v| !v.is_null())
            .cloned();
        if !spec.is_object() {
            spec = Value::Object(Map::new());
        }
        let parent = parents.iter().fold(&mut spec, |v, key| {
            let entry = v
                .as_object_mut()
                .expect("made an object")
                .entry(*key)
                .or_insert(Value::Null);
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            entry
        });
        let parent = parent.as_object_mut().expect("made an object above");
        match wanted {
            Some(value) => {
                parent.insert((*last).to_owned(), value);
            }
            None => {
                parent.remove(*last);
            }
        }
    }
    keep_unheld(current, &mut spec);
    spec
}

/// The compose keys of a service that "edit as compose" applies besides the form's fields,
/// with the spec field each one sets (the compose crate's `service_spec` mapping, the one
/// `swarmkeeper deploy` applies). The service form holds none of them; the shown text holds
/// only [`COMPOSE_RENDERED_KEYS`], so a text that leaves out one of the others says nothing
/// about it.
pub const COMPOSE_ONLY_KEYS: &[(&str, &[&str])] = &[
    ("labels", &["TaskTemplate", "ContainerSpec", "Labels"]),
    ("hostname", &["TaskTemplate", "ContainerSpec", "Hostname"]),
    ("working_dir", &["TaskTemplate", "ContainerSpec", "Dir"]),
    ("user", &["TaskTemplate", "ContainerSpec", "User"]),
    (
        "stop_grace_period",
        &["TaskTemplate", "ContainerSpec", "StopGracePeriod"],
    ),
    (
        "stop_signal",
        &["TaskTemplate", "ContainerSpec", "StopSignal"],
    ),
    (
        "healthcheck",
        &["TaskTemplate", "ContainerSpec", "Healthcheck"],
    ),
    ("extra_hosts", &["TaskTemplate", "ContainerSpec", "Hosts"]),
    (
        "dns",
        &["TaskTemplate", "ContainerSpec", "DNSConfig", "Nameservers"],
    ),
    (
        "dns_search",
        &["TaskTemplate", "ContainerSpec", "DNSConfig", "Search"],
    ),
    ("tty", &["TaskTemplate", "ContainerSpec", "TTY"]),
    (
        "stdin_open",
        &["TaskTemplate", "ContainerSpec", "OpenStdin"],
    ),
    ("read_only", &["TaskTemplate", "ContainerSpec", "ReadOnly"]),
    ("init", &["TaskTemplate", "ContainerSpec", "Init"]),
    ("isolation", &["TaskTemplate", "ContainerSpec", "Isolation"]),
    ("sysctls", &["TaskTemplate", "ContainerSpec", "Sysctls"]),
    (
        "cap_add",
        &["TaskTemplate", "ContainerSpec", "CapabilityAdd"],
    ),
    (
        "cap_drop",
        &["TaskTemplate", "ContainerSpec", "CapabilityDrop"],
    ),
    ("ulimits", &["TaskTemplate", "ContainerSpec", "Ulimits"]),
    (
        "oom_score_adj",
        &["TaskTemplate", "ContainerSpec", "OomScoreAdj"],
    ),
    ("networks", &["TaskTemplate", "Networks"]),
    ("deploy.endpoint_mode", &["EndpointSpec", "Mode"]),
];

/// The keys of [`COMPOSE_ONLY_KEYS`] the shown compose text renders whenever the service has
/// them (the server's `compose_of_running`): a text without one says the operator deleted it.
pub const COMPOSE_RENDERED_KEYS: &[&str] = &[
    "user",
    "hostname",
    "working_dir",
    "stop_signal",
    "init",
    "tty",
    "stdin_open",
    "cap_add",
    "cap_drop",
    "dns",
    "dns_search",
    "healthcheck",
    "read_only",
    "stop_grace_period",
];

/// The spec "edit as compose" applies: `current` with the fields of `written` (the text's
/// spec, as the compose mapping and the deploy engine made it) that the text holds, by this
/// rule —
///
/// - the form's fields (what `compose_of` renders) as [`overlay_form_fields`] lays them: each
///   replaced by the text's, removed when the text leaves it out;
/// - each key of [`COMPOSE_RENDERED_KEYS`] the same way: the text shows it whenever the
///   service has it, so a text without it removes it;
/// - each other key of [`COMPOSE_ONLY_KEYS`] the text writes (`keys`, the service's compose
///   keys, `deploy.endpoint_mode` dotted): its field replaced by the text's, removed when the
///   text's spec has none (`dns: []`, `tty: false`);
/// - everything else — another compose-only key the text does not write, fields compose cannot
///   express (`Placement.Platforms`, a volume's stack labels, fields swarmkeeper does not
///   know) — as `current` has it: the text never showed it, so leaving it out removes nothing.
///
/// A text rendered from `current` and read back unchanged therefore changes nothing, and each
/// key added to the text, or a shown one removed from it, changes its field. `current` is `{}`
/// for a new service.
pub fn overlay_compose(current: &Value, written: &Value, keys: &[&str]) -> Value {
    let mut spec = overlay_form_fields(current, written);
    for (key, path) in COMPOSE_ONLY_KEYS {
        if keys.contains(key) || COMPOSE_RENDERED_KEYS.contains(key) {
            set_path(&mut spec, path, written_at(written, path));
        }
    }
    spec
}

/// The value at `path` of `spec`, when it is there and not null.
fn written_at(spec: &Value, path: &[&str]) -> Option<Value> {
    path.iter()
        .try_fold(spec, |v, key| v.get(key))
        .filter(|v| !v.is_null())
        .cloned()
}

/// Sets (`Some`) or removes (`None`) the field at `path` of `spec`, making the objects on the
/// way when it sets one; a removal whose parent is missing changes nothing.
fn set_path(spec: &mut Value, path: &[&str], value: Option<Value>) {
    let (last, parents) = path.split_last().expect("paths are not empty");
    if value.is_none() && written_at(spec, parents).is_none() {
        return;
    }
    if !spec.is_object() {
        *spec = Value::Object(Map::new());
    }
    let mut fields = spec.as_object_mut().expect("made an object above");
    for key in parents {
        let entry = fields
            .entry(*key)
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        fields = entry.as_object_mut().expect("made an object above");
    }
    match value {
        Some(value) => fields.insert((*last).to_owned(), value),
        None => fields.remove(*last),
    };
}

/// The parts of the form's fields that no form holds (and `compose_of` does not render):
/// `Placement.Platforms` (`docker stack deploy` fills it from the image's manifest; without it
/// Swarm may place the task on a node of another architecture), `Placement.MaxReplicas`
/// (`max_replicas_per_node`), `Resources.Limits.Pids` and `Resources.Reservations
/// .GenericResources`.
const UNHELD_FIELDS: &[&[&str]] = &[
    &["TaskTemplate", "Placement", "Platforms"],
    &["TaskTemplate", "Placement", "MaxReplicas"],
    &["TaskTemplate", "Resources", "Limits", "Pids"],
    &[
        "TaskTemplate",
        "Resources",
        "Reservations",
        "GenericResources",
    ],
];

/// Puts back the parts of the form's fields that no form holds, so an edit keeps them:
/// [`UNHELD_FIELDS`], and a volume mount's `VolumeOptions.Labels` (the stack's
/// `com.docker.stack.namespace`, which ties a volume made on another node to its stack), found
/// by the mount's `Target`. A form (or compose text) that gives one wins.
fn keep_unheld(current: &Value, spec: &mut Value) {
    for path in UNHELD_FIELDS {
        if written_at(spec, path).is_none() {
            if let Some(kept) = written_at(current, path) {
                set_path(spec, path, Some(kept));
            }
        }
    }
    let Some(mounts) = spec
        .pointer_mut("/TaskTemplate/ContainerSpec/Mounts")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let was = current
        .pointer("/TaskTemplate/ContainerSpec/Mounts")
        .and_then(Value::as_array);
    for mount in mounts.iter_mut().filter_map(Value::as_object_mut) {
        let labels = was.into_iter().flatten().find_map(|old| {
            (old.get("Target") == mount.get("Target") && old.get("Type") == mount.get("Type"))
                .then(|| old.pointer("/VolumeOptions/Labels"))
                .flatten()
        });
        let Some(labels) = labels else { continue };
        let options = mount
            .entry("VolumeOptions")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(options) = options.as_object_mut() {
            options.entry("Labels").or_insert_with(|| labels.clone());
        }
    }
}

/// Points every attachment to the network `from_id` (`TaskTemplate.Networks[].Target`) at
/// `to_id` instead; aliases and driver options stay. Returns how many attachments moved.
pub fn swap_network(spec: &mut Value, from_id: &str, to_id: &str) -> usize {
    let Some(attachments) = spec
        .pointer_mut("/TaskTemplate/Networks")
        .and_then(Value::as_array_mut)
    else {
        return 0;
    };
    let mut moved = 0;
    for attachment in attachments.iter_mut().filter_map(Value::as_object_mut) {
        if attachment.get("Target").and_then(Value::as_str) == Some(from_id) {
            attachment.insert("Target".to_owned(), Value::from(to_id));
            moved += 1;
        }
    }
    moved
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
    fn swap_network_moves_only_that_attachment() {
        let mut spec = json!({"TaskTemplate": {"Networks": [
            {"Target": "old", "Aliases": ["web"]},
            {"Target": "other"}
        ]}});
        assert_eq!(swap_network(&mut spec, "old", "new"), 1);
        assert_eq!(
            spec["TaskTemplate"]["Networks"],
            json!([{"Target": "new", "Aliases": ["web"]}, {"Target": "other"}])
        );
        assert_eq!(swap_network(&mut json!({}), "old", "new"), 0);
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

    #[test]
    fn a_swapped_reference_keeps_its_file() {
        let file = json!({"Name": "db_password", "UID": "0", "GID": "0", "Mode": 292});
        let mut spec = json!({"TaskTemplate": {"ContainerSpec": {"Secrets": [
            {"SecretID": "old", "SecretName": "pw", "File": file},
            {"SecretID": "other", "SecretName": "tls", "File": {"Name": "tls"}},
        ], "Configs": [{"ConfigID": "old", "ConfigName": "pw"}]}}});
        assert_eq!(
            swap_file_ref(&mut spec, FileKind::Secret, "old", ("new", "pw.v2")),
            1
        );
        let secrets = &spec["TaskTemplate"]["ContainerSpec"]["Secrets"];
        assert_eq!(
            secrets[0],
            json!({"SecretID": "new", "SecretName": "pw.v2", "File": file})
        );
        assert_eq!(secrets[1]["SecretID"], "other");
        // A config with the same id is another list: untouched.
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Configs"][0]["ConfigID"],
            "old"
        );
        assert_eq!(
            swap_file_ref(
                &mut json!({"Name": "x"}),
                FileKind::Config,
                "old",
                ("n", "m")
            ),
            0
        );
    }

    #[test]
    fn a_form_replaces_its_fields_and_keeps_the_rest() {
        let current = json!({
            "Name": "web", "Labels": {"a": "1"},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "old", "Env": ["X=1"], "Hostname": "h",
                                  "Healthcheck": {"Test": ["NONE"]}},
                "Networks": [{"Target": "net1"}],
                "ForceUpdate": 2
            },
            "Mode": {"Replicated": {"Replicas": 2}}
        });
        let form = json!({
            "Name": "web", "Labels": {},
            "TaskTemplate": {"ContainerSpec": {"Image": "new"}, "Networks": []},
            "Mode": {"Global": {}}
        });
        let spec = overlay_form_fields(&current, &form);
        assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Image"], "new");
        assert_eq!(spec["TaskTemplate"]["ContainerSpec"].get("Env"), None);
        assert_eq!(spec["TaskTemplate"]["ContainerSpec"]["Hostname"], "h");
        assert_eq!(
            spec["TaskTemplate"]["Networks"],
            json!([{"Target": "net1"}])
        );
        assert_eq!(spec["TaskTemplate"]["ForceUpdate"], 2);
        assert_eq!(spec["Mode"], json!({"Global": {}}));
        assert_eq!(spec["Labels"], json!({}));
        let created = overlay_form_fields(&json!({}), &form);
        assert_eq!(created["TaskTemplate"].get("Networks"), None);
    }

    #[test]
    fn an_edit_keeps_platforms_and_volume_labels_no_form_holds() {
        // What `docker stack deploy` wrote (tryout9 finding 19): one field edited dropped both.
        let namespace = json!({"com.docker.stack.namespace": "sk"});
        let current = json!({
            "Name": "sk_server",
            "TaskTemplate": {
                "ContainerSpec": {"Image": "a:1", "Mounts": [
                    {"Type": "bind", "Source": "/run/docker.sock", "Target": "/s"},
                    {"Type": "volume", "Source": "sk_state", "Target": "/state",
                     "VolumeOptions": {"Labels": namespace}}
                ]},
                "Placement": {"Constraints": ["node.role==manager"],
                              "Platforms": [{"Architecture": "amd64", "OS": "linux"}]},
                "RestartPolicy": {"Delay": 5_000_000_000u64}
            }
        });
        let form = json!({
            "Name": "sk_server",
            "TaskTemplate": {
                "ContainerSpec": {"Image": "a:1", "Mounts": [
                    {"Type": "bind", "Source": "/run/docker.sock", "Target": "/s"},
                    {"Type": "volume", "Source": "sk_state", "Target": "/state",
                     "VolumeOptions": {"NoCopy": true}},
                    {"Type": "volume", "Source": "other", "Target": "/other"}
                ]},
                "Placement": {"Constraints": ["node.role==manager"]},
                "RestartPolicy": {"Delay": 6_000_000_000u64}
            }
        });
        let spec = overlay_form_fields(&current, &form);
        let placement = &spec["TaskTemplate"]["Placement"];
        assert_eq!(
            placement["Platforms"],
            current["TaskTemplate"]["Placement"]["Platforms"]
        );
        assert_eq!(placement["Constraints"], json!(["node.role==manager"]));
        let mounts = &spec["TaskTemplate"]["ContainerSpec"]["Mounts"];
        assert_eq!(mounts[0].get("VolumeOptions"), None, "{mounts}");
        assert_eq!(
            mounts[1]["VolumeOptions"],
            json!({"NoCopy": true, "Labels": namespace}),
            "{mounts}"
        );
        assert_eq!(mounts[2].get("VolumeOptions"), None, "{mounts}");
        assert_eq!(
            spec["TaskTemplate"]["RestartPolicy"]["Delay"],
            6_000_000_000u64
        );
        // A service without constraints: Placement holds only Platforms, the form none.
        let mut bare = form.clone();
        bare["TaskTemplate"]
            .as_object_mut()
            .unwrap()
            .remove("Placement");
        let spec = overlay_form_fields(&current, &bare);
        assert_eq!(
            spec["TaskTemplate"]["Placement"],
            json!({"Platforms": current["TaskTemplate"]["Placement"]["Platforms"]})
        );
        // A form that gives labels or platforms (a stack's compose text) wins.
        let mut given = form.clone();
        given["TaskTemplate"]["ContainerSpec"]["Mounts"][1]["VolumeOptions"]["Labels"] =
            json!({"x": "1"});
        given["TaskTemplate"]["Placement"]["Platforms"] = json!([]);
        let spec = overlay_form_fields(&current, &given);
        assert_eq!(spec["TaskTemplate"]["Placement"]["Platforms"], json!([]));
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Mounts"][1]["VolumeOptions"]["Labels"],
            json!({"x": "1"})
        );
    }

    /// A running spec with the form's fields and some of compose's only fields.
    fn running() -> Value {
        json!({
            "Name": "shop_web", "Labels": {"com.docker.stack.namespace": "shop"},
            "Mode": {"Replicated": {"Replicas": 2}},
            "EndpointSpec": {"Mode": "vip"},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "app:1", "Env": ["A=1"],
                                  "Labels": {"com.docker.stack.namespace": "shop", "x": "1"},
                                  "Hostname": "h", "DNSConfig": {"Search": ["lan"]}},
                "Networks": [{"Target": "id_default", "Aliases": ["web"]}],
                "Placement": {"Platforms": [{"Architecture": "amd64", "OS": "linux"}]},
                "ForceUpdate": 1
            }
        })
    }

    /// What the rendered text of [`running`] reads as: its form's fields, the stack's labels,
    /// the keys the text shows whenever the service has them (`hostname`, `dns_search`).
    fn rendered() -> Value {
        json!({
            "Name": "shop_web", "Labels": {"com.docker.stack.namespace": "shop"},
            "Mode": {"Replicated": {"Replicas": 2}},
            "EndpointSpec": {},
            "TaskTemplate": {
                "ContainerSpec": {"Image": "app:1", "Env": ["A=1"],
                                  "Labels": {"com.docker.stack.namespace": "shop"},
                                  "Hostname": "h", "DNSConfig": {"Search": ["lan"]}},
                "Networks": []
            }
        })
    }

    #[test]
    fn an_edit_keeps_the_placement_and_resource_parts_no_form_holds() {
        let current = json!({"TaskTemplate": {
            "Placement": {"Constraints": ["node.role==worker"], "MaxReplicas": 2},
            "Resources": {"Limits": {"MemoryBytes": 64, "Pids": 100},
                          "Reservations": {"GenericResources": [{"DiscreteResourceSpec":
                              {"Kind": "gpu", "Value": 1}}]}}
        }});
        // A form without constraints or limits: the parts it cannot show stay.
        let spec = overlay_form_fields(&current, &json!({"TaskTemplate": {}}));
        assert_eq!(spec["TaskTemplate"]["Placement"], json!({"MaxReplicas": 2}));
        assert_eq!(
            spec["TaskTemplate"]["Resources"],
            json!({"Limits": {"Pids": 100},
                   "Reservations": current["TaskTemplate"]["Resources"]["Reservations"]})
        );
        // A text that writes them wins.
        let given = json!({"TaskTemplate": {"Placement": {"MaxReplicas": 3},
                                             "Resources": {"Limits": {"Pids": 5}}}});
        let spec = overlay_compose(&current, &given, &[]);
        assert_eq!(spec["TaskTemplate"]["Placement"], json!({"MaxReplicas": 3}));
        assert_eq!(
            spec["TaskTemplate"]["Resources"]["Limits"],
            json!({"Pids": 5})
        );
    }

    #[test]
    fn an_unchanged_compose_text_changes_nothing() {
        assert_eq!(overlay_compose(&running(), &rendered(), &[]), running());
        // Keys of the form the text writes as they are: still nothing.
        let keys = ["image", "environment", "deploy"];
        assert_eq!(overlay_compose(&running(), &rendered(), &keys), running());
    }

    #[test]
    fn each_key_the_text_adds_or_removes_changes_its_field_alone() {
        for (key, path) in COMPOSE_ONLY_KEYS {
            let pointer = format!("/{}", path.join("/"));
            let without = |spec: &Value| {
                let mut spec = spec.clone();
                set_path(&mut spec, path, None);
                spec
            };
            // Added: the text's value, and nothing else moves.
            let mut written = rendered();
            set_path(&mut written, path, Some(json!("given")));
            let spec = overlay_compose(&running(), &written, &[key]);
            assert_eq!(spec.pointer(&pointer), Some(&json!("given")), "{key}");
            assert_eq!(without(&spec), without(&running()), "{key}");
            // The text's spec has none (`read_only: false`): removed, nothing else moves.
            let mut current = running();
            set_path(&mut current, path, Some(json!("was")));
            let spec = overlay_compose(&current, &without(&rendered()), &[key]);
            assert_eq!(spec.pointer(&pointer), None, "{key}: {spec}");
            assert_eq!(spec, without(&current), "{key}");
            // Not written: kept as it is, whatever the text's spec holds there; but a key the
            // text shows whenever the service has it is the text's (deleted when it is not).
            let spec = overlay_compose(&current, &written, &[]);
            match COMPOSE_RENDERED_KEYS.contains(key) {
                true => assert_eq!(spec.pointer(&pointer), Some(&json!("given")), "{key}"),
                false => assert_eq!(spec, current, "{key}"),
            }
            let spec = overlay_compose(&current, &without(&rendered()), &[]);
            match COMPOSE_RENDERED_KEYS.contains(key) {
                true => assert_eq!(spec, without(&current), "{key}"),
                false => assert_eq!(spec, current, "{key}"),
            }
        }
    }

    #[test]
    fn keys_written_together_apply_together() {
        // Every subset of four keys: each written one is the text's, each other the service's.
        let sample = [
            (
                "networks",
                json!([{"Target": "id_other", "Aliases": ["web"]}]),
            ),
            ("extra_hosts", json!(["10.0.0.1 db"])),
            ("sysctls", json!({"net.core.somaxconn": "1024"})),
            (
                "ulimits",
                json!([{"Name": "nofile", "Soft": 1024, "Hard": 2048}]),
            ),
        ];
        let path_of = |key: &str| {
            COMPOSE_ONLY_KEYS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, p)| *p)
                .unwrap()
        };
        let mut written = rendered();
        for (key, value) in &sample {
            set_path(&mut written, path_of(key), Some(value.clone()));
        }
        for mask in 0..1u32 << sample.len() {
            let keys: Vec<&str> = (0..sample.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| sample[i].0)
                .collect();
            let spec = overlay_compose(&running(), &written, &keys);
            for (key, value) in &sample {
                let pointer = format!("/{}", path_of(key).join("/"));
                let wanted = match keys.contains(key) {
                    true => Some(value.clone()),
                    false => running().pointer(&pointer).cloned(),
                };
                assert_eq!(spec.pointer(&pointer).cloned(), wanted, "{key} of {keys:?}");
            }
            assert_eq!(
                spec["TaskTemplate"]["Placement"],
                running()["TaskTemplate"]["Placement"]
            );
        }
    }

    #[test]
    fn dns_servers_and_search_domains_are_the_texts_and_the_options_stay() {
        // The resolver options compose cannot write stay; servers and domains are the text's.
        let mut current = running();
        current["TaskTemplate"]["ContainerSpec"]["DNSConfig"]["Options"] = json!(["ndots:2"]);
        let mut written = rendered();
        written["TaskTemplate"]["ContainerSpec"]["DNSConfig"]["Nameservers"] = json!(["1.1.1.1"]);
        let spec = overlay_compose(&current, &written, &["dns", "dns_search"]);
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["DNSConfig"],
            json!({"Nameservers": ["1.1.1.1"], "Search": ["lan"], "Options": ["ndots:2"]})
        );
        // The domains deleted from the text: gone, the options still there.
        written["TaskTemplate"]["ContainerSpec"]["DNSConfig"] = json!({});
        let spec = overlay_compose(&current, &written, &[]);
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["DNSConfig"],
            json!({"Options": ["ndots:2"]})
        );
        // Removing what a spec lacks makes nothing.
        let spec = overlay_compose(&json!({}), &json!({}), &["dns", "networks"]);
        assert_eq!(spec.pointer("/TaskTemplate/ContainerSpec/DNSConfig"), None);
        assert_eq!(spec.pointer("/TaskTemplate/Networks"), None);
    }
}
