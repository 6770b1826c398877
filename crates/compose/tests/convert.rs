//! The mapping to Engine API objects, compared with what `docker stack deploy` sends.

mod support;

use serde_json::json;
use swarmkeeper_compose::{stack_spec, Stack};

fn load_one(text: &str) -> Stack {
    support::load_in("/srv/shop", &[("stack.yml", text)], &[], &[]).unwrap()
}

const SHOP: &str = r#"
services:
  web:
    image: registry.example/shop/web:2.3.1
    command: ["serve", "--port", "8080"]
    environment:
      DATABASE_HOST: db
      LOG_LEVEL: info
    labels: [com.example.tier=front]
    ports: ["80:8080"]
    networks:
      front:
      back:
        aliases: [shop-web]
    secrets:
      - source: db_password
        target: /run/secrets/db
        mode: 0400
    configs: [nginx_conf]
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://localhost:8080/health"]
      interval: 10s
      timeout: 3s
      retries: 3
      start_period: 20s
    logging:
      driver: local
      options: {max-size: 10m}
    stop_grace_period: 30s
    deploy:
      replicas: 3
      labels: {com.example.owner: shop}
      placement:
        constraints: [node.role == worker]
        preferences: [{spread: node.labels.zone}]
        max_replicas_per_node: 2
      resources:
        limits: {cpus: "0.5", memory: 512M}
        reservations: {memory: 128M}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}
      update_config: {parallelism: 1, delay: 10s, failure_action: rollback, monitor: 1m, order: start-first}
      rollback_config: {parallelism: 0, order: stop-first}
  db:
    image: postgres:16.2
    volumes: ["pgdata:/var/lib/postgresql/data", "./initdb:/docker-entrypoint-initdb.d:ro"]
    networks: [back]
    deploy:
      endpoint_mode: dnsrr
  agent:
    image: monitor/agent:1.0
    ports:
      - {target: 9100, published: 9100, mode: host}
    deploy: {mode: global}
networks:
  front: {}
  back: {driver: overlay, attachable: true}
volumes:
  pgdata: {driver: local, labels: {backup: daily}}
secrets:
  db_password: {file: ./secrets/db_password.txt}
configs:
  nginx_conf: {external: true, name: nginx-v3}
"#;

#[test]
fn maps_services_like_docker_stack_deploy() {
    let spec = stack_spec("shop", &load_one(SHOP)).unwrap();
    let web = serde_json::to_value(&spec.services["web"]).unwrap();
    let expected = json!({
        "Name": "shop_web",
        "Labels": {
            "com.docker.stack.image": "registry.example/shop/web:2.3.1",
            "com.docker.stack.namespace": "shop",
            "com.example.owner": "shop"
        },
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": "registry.example/shop/web:2.3.1",
                "Labels": {"com.docker.stack.namespace": "shop", "com.example.tier": "front"},
                "Args": ["serve", "--port", "8080"],
                "Env": ["DATABASE_HOST=db", "LOG_LEVEL=info"],
                "StopGracePeriod": 30_000_000_000u64,
                "Healthcheck": {
                    "Test": ["CMD", "wget", "-qO-", "http://localhost:8080/health"],
                    "Interval": 10_000_000_000u64,
                    "Timeout": 3_000_000_000u64,
                    "StartPeriod": 20_000_000_000u64,
                    "Retries": 3
                },
                "Secrets": [{
                    "File": {"Name": "/run/secrets/db", "UID": "0", "GID": "0", "Mode": 256},
                    "SecretID": "",
                    "SecretName": "shop_db_password"
                }],
                "Configs": [{
                    "File": {"Name": "nginx_conf", "UID": "0", "GID": "0", "Mode": 292},
                    "ConfigID": "",
                    "ConfigName": "nginx-v3"
                }]
            },
            "Resources": {
                "Limits": {"NanoCPUs": 500_000_000u64, "MemoryBytes": 536_870_912u64},
                "Reservations": {"MemoryBytes": 134_217_728u64}
            },
            "RestartPolicy": {
                "Condition": "on-failure",
                "Delay": 5_000_000_000u64,
                "MaxAttempts": 3,
                "Window": 120_000_000_000u64
            },
            "Placement": {
                "Constraints": ["node.role == worker"],
                "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                "MaxReplicas": 2
            },
            "Networks": [
                {"Target": "shop_back", "Aliases": ["shop-web", "web"]},
                {"Target": "shop_front", "Aliases": ["web"]}
            ],
            "LogDriver": {"Name": "local", "Options": {"max-size": "10m"}}
        },
        "Mode": {"Replicated": {"Replicas": 3}},
        "UpdateConfig": {
            "Parallelism": 1,
            "Delay": 10_000_000_000u64,
            "FailureAction": "rollback",
            "Monitor": 60_000_000_000u64,
            "MaxFailureRatio": 0.0,
            "Order": "start-first"
        },
        "RollbackConfig": {"Parallelism": 0, "FailureAction": "pause", "MaxFailureRatio": 0.0, "Order": "stop-first"},
        "EndpointSpec": {
            "Ports": [{"Protocol": "tcp", "TargetPort": 8080, "PublishedPort": 80, "PublishMode": "ingress"}]
        }
    });
    assert_eq!(
        web,
        expected,
        "got {}",
        serde_json::to_string_pretty(&web).unwrap()
    );
}

#[test]
fn maps_mounts_modes_and_endpoints() {
    let spec = stack_spec("shop", &load_one(SHOP)).unwrap();
    let db = serde_json::to_value(&spec.services["db"]).unwrap();
    assert_eq!(
        db["TaskTemplate"]["ContainerSpec"]["Mounts"],
        json!([
            {
                "Type": "volume",
                "Source": "shop_pgdata",
                "Target": "/var/lib/postgresql/data",
                "VolumeOptions": {
                    "Labels": {"backup": "daily", "com.docker.stack.namespace": "shop"},
                    "DriverConfig": {"Name": "local"}
                }
            },
            {"Type": "bind", "Source": "/srv/shop/initdb", "Target": "/docker-entrypoint-initdb.d", "ReadOnly": true}
        ])
    );
    assert_eq!(db["EndpointSpec"], json!({"Mode": "dnsrr"}));
    assert_eq!(db["Mode"], json!({"Replicated": {}}));
    assert_eq!(
        db["TaskTemplate"]["Networks"],
        json!([{"Target": "shop_back", "Aliases": ["db"]}])
    );

    let agent = serde_json::to_value(&spec.services["agent"]).unwrap();
    assert_eq!(agent["Mode"], json!({"Global": {}}));
    assert_eq!(
        agent["EndpointSpec"]["Ports"],
        json!([{"Protocol": "tcp", "TargetPort": 9100, "PublishedPort": 9100, "PublishMode": "host"}])
    );
    assert_eq!(
        agent["TaskTemplate"]["Networks"],
        json!([{"Target": "shop_default", "Aliases": ["agent"]}])
    );
}

#[test]
fn lists_the_stack_objects_to_create() {
    let spec = stack_spec("shop", &load_one(SHOP)).unwrap();
    let networks = serde_json::to_value(&spec.networks).unwrap();
    assert_eq!(
        networks,
        json!([
            {"Name": "shop_back", "Driver": "overlay", "Labels": {"com.docker.stack.namespace": "shop"}, "Attachable": true},
            {"Name": "shop_default", "Driver": "overlay", "Labels": {"com.docker.stack.namespace": "shop"}},
            {"Name": "shop_front", "Driver": "overlay", "Labels": {"com.docker.stack.namespace": "shop"}}
        ])
    );
    assert!(spec.external_networks.is_empty());
    assert_eq!(spec.secrets.len(), 1);
    assert_eq!(spec.secrets[0].name, "shop_db_password");
    assert_eq!(spec.secrets[0].file, "/srv/shop/secrets/db_password.txt");
    assert!(spec.configs.is_empty(), "an external config is not created");
}
