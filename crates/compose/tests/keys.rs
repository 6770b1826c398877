//! Every key of the docker CLI's stack schema, with the decision `KEYS.md` records for it:
//! converted into the spec, accepted and noted as ignored, or refused with a reason.

mod support;

use serde_json::{json, Value};
use swarmkeeper_compose::{stack_spec, ComposeError, Stack};

const EVERY_KEY: &str = include_str!("fixtures/every-key.yml");

fn load_text(text: &str) -> Result<Stack, ComposeError> {
    support::load_in(
        support::WORKING_DIR,
        &[("stack.yml", text)],
        &[],
        &[("/srv/app/web.env", "LEVEL=info\n")],
    )
}

fn web_spec(stack: &Stack) -> Value {
    let spec = stack_spec("demo", stack).unwrap();
    serde_json::to_value(&spec.services["web"]).unwrap()
}

#[test]
fn every_key_of_the_schema_loads() {
    let stack = load_text(EVERY_KEY).unwrap();
    let ignored: Vec<&str> = stack.services["web"]
        .ignored
        .iter()
        .map(|i| i.key.as_str())
        .collect();
    let mut sorted = ignored.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "build",
            "cgroup_parent",
            "cgroupns_mode",
            "container_name",
            "depends_on",
            "devices",
            "domainname",
            "expose",
            "external_links",
            "ipc",
            "links",
            "mac_address",
            "network_mode",
            "networks.front.ipv4_address",
            "networks.front.ipv6_address",
            "pid",
            "privileged",
            "restart",
            "security_opt",
            "shm_size",
            "tmpfs",
            "userns_mode",
        ]
    );
    assert!(stack.ignored.is_empty(), "{:?}", stack.ignored);
}

#[test]
fn converted_keys_reach_the_spec() {
    let spec = web_spec(&load_text(EVERY_KEY).unwrap());
    let container = &spec["TaskTemplate"]["ContainerSpec"];
    assert_eq!(container["Image"], "example/web:latest");
    assert_eq!(container["Command"], json!(["/entrypoint.sh"]));
    assert_eq!(container["Args"], json!(["serve", "--port", "80"]));
    assert_eq!(container["Env"], json!(["LEVEL=info", "MODE=production"]));
    assert_eq!(container["CapabilityAdd"], json!(["CAP_NET_ADMIN"]));
    assert_eq!(container["CapabilityDrop"], json!(["CAP_MKNOD"]));
    assert_eq!(container["Hostname"], "web");
    assert_eq!(container["Dir"], "/srv");
    assert_eq!(container["User"], "1000");
    assert_eq!(container["Init"], true);
    assert_eq!(container["ReadOnly"], true);
    assert_eq!(container["TTY"], true);
    assert_eq!(container["OpenStdin"], true);
    assert_eq!(container["Isolation"], "default");
    assert_eq!(container["StopSignal"], "SIGINT");
    assert_eq!(container["StopGracePeriod"], 30_000_000_000u64);
    assert_eq!(container["OomScoreAdj"], -500);
    assert_eq!(container["Hosts"], json!(["10.0.0.5 db.local"]));
    assert_eq!(
        container["DNSConfig"],
        json!({"Nameservers": ["192.0.2.53"], "Search": ["example.internal"]})
    );
    assert_eq!(container["Sysctls"], json!({"net.core.somaxconn": "1024"}));
    assert_eq!(
        container["Ulimits"],
        json!([
            {"Name": "nofile", "Soft": 1024, "Hard": 2048},
            {"Name": "nproc", "Soft": 512, "Hard": 512}
        ])
    );
    assert_eq!(
        container["Labels"],
        json!({"tier": "front", "com.docker.stack.namespace": "demo"})
    );
    assert_eq!(
        container["Healthcheck"],
        json!({"Test": ["CMD", "/health"], "Interval": 10_000_000_000u64, "Timeout": 2_000_000_000u64,
               "StartPeriod": 5_000_000_000u64, "StartInterval": 1_000_000_000u64, "Retries": 3})
    );
    assert_eq!(
        container["Privileges"],
        json!({"CredentialSpec": {"Config": "web-settings"}})
    );
    let configs: Vec<(Value, Value)> = container["Configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["File"]["Name"].clone(), c["Runtime"].clone()))
        .collect();
    assert_eq!(
        configs,
        [
            (json!("settings"), Value::Null),
            (json!("/etc/settings.conf"), Value::Null),
            (Value::Null, json!({}))
        ]
    );
    assert_eq!(container["Configs"][1]["File"]["Mode"], 0o440);
    assert_eq!(container["Configs"][1]["File"]["UID"], "1000");
    let secrets: Vec<(&str, u64)> = container["Secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["File"]["Name"].as_str().unwrap(),
                s["File"]["Mode"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(secrets, [("token", 0o444), ("/run/secrets/other", 0o400)]);
    assert_eq!(
        container["Mounts"],
        json!([
            {"Type": "volume", "Source": "web-data", "Target": "/data",
             "VolumeOptions": {"Labels": {"purpose": "data", "com.docker.stack.namespace": "demo"},
                               "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}},
            {"Type": "bind", "Source": "/srv/app/static", "Target": "/static", "ReadOnly": true,
             "Consistency": "cached", "BindOptions": {"Propagation": "rprivate"}},
            {"Type": "volume", "Source": "web-data", "Target": "/copy",
             "VolumeOptions": {"NoCopy": true, "Labels": {"purpose": "data", "com.docker.stack.namespace": "demo"},
                               "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}},
            {"Type": "tmpfs", "Target": "/scratch", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1770}}
        ])
    );

    let task = &spec["TaskTemplate"];
    assert_eq!(
        task["LogDriver"],
        json!({"Name": "local", "Options": {"max-size": "10m", "max-file": "3"}})
    );
    assert_eq!(
        task["Resources"],
        json!({"Limits": {"NanoCPUs": 500_000_000u64, "MemoryBytes": 64u64 << 20, "Pids": 100},
               "Reservations": {"NanoCPUs": 250_000_000u64, "MemoryBytes": 16u64 << 20,
                                "GenericResources": [{"DiscreteResourceSpec": {"Kind": "gpu", "Value": 1}}]}})
    );
    // `deploy.restart_policy` wins over `restart`.
    assert_eq!(
        task["RestartPolicy"],
        json!({"Condition": "on-failure", "Delay": 2_000_000_000u64, "MaxAttempts": 3, "Window": 30_000_000_000u64})
    );
    assert_eq!(
        task["Placement"],
        json!({"Constraints": ["node.role == worker"],
               "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
               "MaxReplicas": 1})
    );
    assert_eq!(
        task["Networks"],
        json!([{"Target": "front-net", "Aliases": ["www", "web"],
                "DriverOpts": {"com.docker.network.endpoint.sysctls": "x"}}])
    );
    assert_eq!(spec["Mode"], json!({"Replicated": {"Replicas": 2}}));
    assert_eq!(
        spec["Labels"],
        json!({"team": "web", "com.docker.stack.namespace": "demo", "com.docker.stack.image": "example/web"})
    );
    assert_eq!(
        spec["UpdateConfig"],
        json!({"Parallelism": 1, "Delay": 1_000_000_000u64, "FailureAction": "rollback",
               "Monitor": 5_000_000_000u64, "MaxFailureRatio": 0.1f32, "Order": "start-first"})
    );
    assert_eq!(spec["RollbackConfig"]["MaxFailureRatio"], 0.5);
    assert_eq!(
        spec["EndpointSpec"],
        json!({"Mode": "vip", "Ports": [
            {"Protocol": "tcp", "TargetPort": 80, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
            {"Protocol": "tcp", "TargetPort": 443, "PublishedPort": 8443, "PublishMode": "host"}
        ]})
    );
}

#[test]
fn top_level_definitions_convert() {
    let stack = load_text(EVERY_KEY).unwrap();
    let spec = serde_json::to_value(stack_spec("demo", &stack).unwrap()).unwrap();
    assert_eq!(
        spec["networks"],
        json!([{"Name": "front-net", "Driver": "overlay", "Options": {"encrypted": ""},
                "Labels": {"purpose": "web", "com.docker.stack.namespace": "demo"},
                "Attachable": true,
                "IPAM": {"Driver": "default", "Config": [{"Subnet": "10.10.0.0/24"}]}}])
    );
    let names = |key: &str| -> Vec<String> {
        spec[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["Name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("secrets"), ["web-token", "demo_vault"]);
    assert_eq!(names("configs"), ["web-settings"]);
    assert_eq!(spec["secrets"][0]["Templating"], json!({"Name": "golang"}));
    assert_eq!(
        spec["secrets"][1]["Driver"],
        json!({"Name": "vault", "Options": {"path": "secret/web"}})
    );
}

#[test]
fn keys_the_docker_cli_forbids_are_refused_with_its_reason() {
    for (key, reason) in [
        ("extends", "Support for `extends` is not implemented yet."),
        (
            "volume_driver",
            "define a volume using the top-level `volumes` option",
        ),
        ("volumes_from", "To share a volume between services"),
        ("cpu_quota", "Set resource limits using deploy.resources"),
        ("cpu_shares", "Set resource limits using deploy.resources"),
        ("cpuset", "Set resource limits using deploy.resources"),
        ("mem_limit", "Set resource limits using deploy.resources"),
        (
            "memswap_limit",
            "Set resource limits using deploy.resources",
        ),
    ] {
        let text = format!("services:\n  web:\n    image: a:1\n    {key}: x\n");
        let err = load_text(&text).unwrap_err();
        assert_eq!((err.line, err.column), (4, 5), "{key}");
        assert!(
            err.message
                .starts_with(&format!("`{key}` is not allowed in a stack file: ")),
            "{key}: {}",
            err.message
        );
        assert!(err.message.contains(reason), "{key}: {}", err.message);
    }
}

#[test]
fn keys_outside_the_schema_are_refused_where_the_schema_is_closed() {
    for (text, message) in [
        (
            "services:\n  web:\n    image: a:1\n    deploy: {replica: 2}\n",
            "unknown key `replica` in deploy: did you mean `replicas`?",
        ),
        (
            "services:\n  web:\n    image: a:1\nnetworks:\n  n: {enable_ipv6: true}\n",
            "unknown key `enable_ipv6` in network",
        ),
        (
            "services:\n  web:\n    image: a:1\nconfigs:\n  c: {driver: vault}\n",
            "unknown key `driver` in config",
        ),
        (
            "services:\n  web:\n    image: a:1\nnetworks:\n  n: {ipam: {config: [{subnet: 10.0.0.0/24, gateway: 10.0.0.1}]}}\n",
            "unknown key `gateway` in ipam config",
        ),
        (
            "services:\n  web:\n    image: a:1\n    volumes: [{type: volume, target: /x, image: {subpath: y}}]\n",
            "unknown key `image` in volume mount",
        ),
        (
            "services:\n  web:\n    image: a:1\n    credential_spec: {user: x}\n",
            "unknown key `user` in credential_spec",
        ),
    ] {
        let err = load_text(text).unwrap_err();
        assert!(err.message.starts_with(message), "{text}: {}", err.message);
    }
}

#[test]
fn keys_inside_open_objects_are_accepted_and_noted() {
    let text = "services:
  web:
    image: a:1
    volumes:
      - {type: bind, source: /x, target: /x, bind: {create_host_path: true}}
      - {type: tmpfs, target: /t, tmpfs: {mode: 1777, uid: 1}}
    secrets: [{source: s, rotate: true}]
    ports: ['127.0.0.1:8080:80']
secrets:
  s:
    external: {name: s-v1, note: kept}
";
    let stack = load_text(text).unwrap();
    let ignored: Vec<&str> = stack.services["web"]
        .ignored
        .iter()
        .map(|i| i.key.as_str())
        .collect();
    assert_eq!(
        ignored,
        [
            "volumes.bind.create_host_path",
            "volumes.tmpfs.uid",
            "secrets.rotate",
            "ports.host_ip"
        ]
    );
    assert!(stack.services["web"].ignored[3]
        .reason
        .starts_with("the address 127.0.0.1 in \"127.0.0.1:8080:80\" is ignored"));
    let top: Vec<&str> = stack.ignored.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(top, ["secrets.s.external.note"]);
}

#[test]
fn the_top_level_name_is_noted_and_versions_are_checked() {
    let stack = load_text("name: shop\nservices:\n  web:\n    image: a:1\n").unwrap();
    assert_eq!(stack.ignored[0].key, "name");
    assert_eq!(
        (stack.ignored[0].at.line, stack.ignored[0].at.column),
        (1, 7)
    );
    for version in ["3", "3.0", "\"3.13\"", "3.8"] {
        let text = format!("version: {version}\nservices:\n  web:\n    image: a:1\n");
        assert!(load_text(&text).is_ok(), "{version}");
    }
    for version in ["\"2.4\"", "\"3.14\"", "\"3.05\"", "4"] {
        let text = format!("version: {version}\nservices:\n  web:\n    image: a:1\n");
        let err = load_text(&text).unwrap_err();
        assert_eq!((err.line, err.column), (1, 10), "{version}");
        assert!(
            err.message.starts_with("unsupported compose file version"),
            "{}",
            err.message
        );
    }
}

#[test]
fn mount_options_must_fit_the_mount_type() {
    for (volume, message) in [
        (
            "\"data:/data:rshared\"",
            "bind options cannot be used with a mount of type `volume`",
        ),
        (
            "\"./x:/x:nocopy\"",
            "volume options cannot be used with a mount of type `bind`",
        ),
        (
            "{type: tmpfs, source: x, target: /t}",
            "a tmpfs mount cannot have a `source`",
        ),
        ("{target: /t}", "a volume in long syntax needs a `type`"),
        ("{type: bind, target: /t}", "a bind mount needs a `source`"),
    ] {
        let text = format!(
            "services:\n  web:\n    image: a:1\n    volumes: [{volume}]\nvolumes:\n  data:\n"
        );
        let err = load_text(&text).unwrap_err();
        assert!(
            err.message.starts_with(message),
            "{volume}: {}",
            err.message
        );
    }
}

/// What the engine would refuse only when it creates a task's container (the task rejected,
/// the service down meanwhile) is refused when the file loads, at the mount's line and column.
#[test]
fn mounts_the_engine_refuses_are_refused_at_their_line() {
    for (volume, message) in [
        (
            "{type: volume, target: relative}",
            "mount target `relative` must be an absolute path in the container",
        ),
        ("\"data:relative\"", "mount target `relative` must be"),
        ("{type: tmpfs, target: /}", "a mount's target cannot be `/`"),
        ("\"data:/./\"", "a mount's target cannot be `/`"),
        (
            "{type: volume, target: /a, read_only: true}",
            "an anonymous volume (no `source`) cannot be read-only",
        ),
        (
            "{type: volume, source: data, target: /a, volume: {subpath: ../up}}",
            "volume subpath `../up` must be a relative path inside the volume",
        ),
        (
            "{type: bind, source: /srv, target: /a, bind: {propagation: sideways}}",
            "bind propagation `sideways` is one of private,",
        ),
        (
            "\"data:/a\", \"/srv:/a/\"",
            "service `web` mounts two volumes at the same target `/a`",
        ),
    ] {
        let text = format!(
            "services:\n  web:\n    image: a:1\n    volumes: [{volume}]\nvolumes:\n  data:\n"
        );
        let err = load_text(&text).unwrap_err();
        assert!(
            err.message.starts_with(message),
            "{volume}: {}",
            err.message
        );
        assert_eq!(err.line, 4, "{volume}");
    }
    for fine in [
        "\"data:/data\", \"/srv:/srv:ro\", \"./rel:/rel\"",
        "{type: tmpfs, target: /tmp}",
        "{type: volume, source: data, target: /a, volume: {subpath: sub/dir}}",
        "{type: bind, source: /srv, target: /a, bind: {propagation: rshared}}",
    ] {
        let text = format!(
            "services:\n  web:\n    image: a:1\n    volumes: [{fine}]\nvolumes:\n  data:\n"
        );
        assert!(load_text(&text).is_ok(), "{fine}: {:?}", load_text(&text));
    }
}

#[test]
fn a_tmpfs_mode_is_read_as_yaml_or_octal_text_and_refused_otherwise() {
    for (written, mode) in [
        // A YAML number as YAML reads it (as docker compose does), a string as chmod does.
        ("0o1777", 0o1777),
        ("01777", 0o1777),
        ("511", 0o777),
        ("\"1777\"", 0o1777),
        ("\"0o700\"", 0o700),
        ("0", 0),
    ] {
        let text = format!(
            "services:\n  web:\n    image: a:1\n    volumes:\n      - {{type: tmpfs, target: /t, tmpfs: {{mode: {written}}}}}\n"
        );
        let spec = web_spec(&load_text(&text).unwrap());
        let tmpfs = &spec["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["TmpfsOptions"];
        if mode == 0 {
            assert!(tmpfs.get("Mode").is_none(), "{written}: {tmpfs}");
        } else {
            assert_eq!(tmpfs["Mode"], mode, "{written}: {tmpfs}");
        }
    }
    for bad in ["\"9\"", "\"17777\"", "0o17777", "-1", "rwx", "\"+7\""] {
        let text = format!(
            "services:\n  web:\n    image: a:1\n    volumes:\n      - type: tmpfs\n        target: /t\n        tmpfs:\n          mode: {bad}\n"
        );
        let err = load_text(&text).unwrap_err();
        assert!(
            err.message.contains("not an octal file mode"),
            "{bad}: {}",
            err.message
        );
        assert_eq!(err.line, 8, "{bad}: the error names the mode's line");
    }
}
