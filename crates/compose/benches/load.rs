//! Reading stack files: `load` (YAML, interpolation, typed reading, merging, checks) and
//! `stack_spec` (the Engine API specs) for stacks of 50 and 200 services written the way
//! real stacks are (anchors and merge keys, `${VAR:-default}` everywhere, long and short
//! syntaxes). With `COMPOSE_BENCH_OUT=DIR`, the files are also written there, so that
//! `bench/compose-load.sh` can time the docker CLI on the same files.

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use swarmkeeper_compose::{load, stack_spec, Environment, SourceFile};

/// A stack of `services` services, each with ports, mounts, secrets, a healthcheck, logging
/// from an anchor and a full `deploy`.
fn stack_text(services: usize) -> String {
    let mut text = String::from(
        "version: \"3.8\"\n\
         x-logging: &logging\n  driver: local\n  options: {max-size: 10m, max-file: \"3\"}\n\
         x-update: &update\n  parallelism: 1\n  delay: 5s\n  failure_action: rollback\n  monitor: 30s\n  order: start-first\n\
         services:\n",
    );
    for i in 0..services {
        write!(
            text,
            "  svc{i}:
    image: registry.example:5000/team/svc{i}:${{TAG_{i}:-1.4.{i}}}
    command: [\"serve\", \"--port\", \"8080\", \"--name\", \"svc{i}\"]
    environment:
      MODE: ${{MODE:-production}}
      DATABASE_URL: postgres://app:${{DB_PASSWORD:-secret}}@db:5432/app{i}
      LOG_LEVEL: info
      WORKERS: \"4\"
    labels: [com.example.team=team{team}, com.example.service=svc{i}]
    ports:
      - \"{published}:8080\"
      - target: 9100
        published: {metrics}
        mode: host
    volumes:
      - data{i}:/var/lib/app
      - ./config/svc{i}:/etc/app:ro
      - type: tmpfs
        target: /tmp
        tmpfs: {{size: 67108864}}
    networks: [front, back]
    secrets: [{{source: token, target: /run/secrets/token, mode: 0400}}]
    healthcheck:
      test: [\"CMD\", \"/bin/health\", \"--port\", \"8080\"]
      interval: 10s
      timeout: 3s
      retries: 3
      start_period: 20s
    logging: *logging
    stop_grace_period: 30s
    deploy:
      replicas: ${{REPLICAS_{i}:-2}}
      labels: {{com.example.owner: team{team}}}
      placement:
        constraints: [node.role == worker, node.labels.zone == z{zone}]
        max_replicas_per_node: 1
      resources:
        limits: {{cpus: \"0.5\", memory: 256M}}
        reservations: {{memory: 64M}}
      restart_policy: {{condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}}
      update_config: *update
      rollback_config: {{parallelism: 2, order: stop-first}}
",
            team = i % 7,
            zone = i % 3,
            published = 20_000 + i,
            metrics = 30_000 + i,
        )
        .unwrap();
    }
    text.push_str("networks:\n  front:\n  back:\n    attachable: true\nsecrets:\n  token:\n    file: ./token.txt\nvolumes:\n");
    for i in 0..services {
        writeln!(text, "  data{i}:").unwrap();
    }
    text
}

fn bench(c: &mut Criterion) {
    let variables: HashMap<String, String> = HashMap::from([("MODE".into(), "staging".into())]);
    let read = |_: &str| -> std::io::Result<String> { Ok(String::new()) };
    let environment = Environment {
        variables: &variables,
        working_dir: Path::new("/srv/stack"),
        read_file: &read,
    };
    let mut group = c.benchmark_group("compose");
    for services in [50, 200] {
        let text = stack_text(services);
        if let Ok(dir) = std::env::var("COMPOSE_BENCH_OUT") {
            std::fs::write(Path::new(&dir).join(format!("stack-{services}.yml")), &text)
                .expect("write the benchmark's stack file");
        }
        let files = [SourceFile {
            name: "stack.yml",
            text: &text,
        }];
        group.bench_with_input(BenchmarkId::new("load", services), &files, |b, files| {
            b.iter(|| load(files, &environment).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new("load+stack_spec", services),
            &files,
            |b, files| {
                b.iter(|| {
                    let stack = load(files, &environment).unwrap();
                    stack_spec("bench", &stack).unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
