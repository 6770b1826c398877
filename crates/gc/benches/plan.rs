//! Planning time for large nodes: 1,000, 10,000 and 100,000 images, one container for every tenth
//! image, 100 services with a history of five versions, and the disk at 95%; without layers
//! (sizes and shared sizes only) and with ten layers per image, five of them shared: each image
//! is built on one of `images / 100` bases of five layers, the bases themselves on one of ten
//! operating-system layers.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use jiff::{SignedDuration, Timestamp};
use swarmkeeper_gc::{
    plan, reclaimable_bytes, Container, ContainerState, Filesystem, Image, Layer, PlanMode, Policy,
    PolicySettings, Snapshot, LABEL_SERVICE_NAME, LABEL_TASK_ID, LABEL_TASK_NAME,
};

/// A digest as random as a real one, the same for the same layer.
fn digest(kind: u64, n: u64) -> String {
    let mut x = kind << 48 ^ n ^ 0x9e37_79b9_7f4a_7c15;
    let mut quarter = || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        x ^ x >> 29
    };
    format!(
        "sha256:{:016x}{:016x}{:016x}{:016x}",
        quarter(),
        quarter(),
        quarter(),
        quarter()
    )
}

/// Ten layers: an OS layer (one of ten), four of a base (one of `images / 100`), five of its
/// own.
fn layers(i: usize, images: usize, next: &mut impl FnMut() -> u64) -> Vec<Layer> {
    let bases = (images / 100).max(1) as u64;
    let base = next() % bases;
    let mut layers = vec![Layer::new(
        digest(1, base % 10),
        5_000_000 + (base % 10) * 1_000,
    )];
    layers.extend((0..4).map(|l| Layer::new(digest(2, base * 4 + l), 1_000_000 + base * 10 + l)));
    layers.extend(
        (0..5).map(|l| Layer::new(digest(3, i as u64 * 5 + l), 100_000 + next() % 10_000_000)),
    );
    layers
}

fn node(images: usize, with_layers: bool) -> Snapshot {
    let now = Timestamp::from_second(1_790_000_000).unwrap();
    // A fixed linear congruential sequence: varied but identical from run to run.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        x >> 33
    };
    let image_list: Vec<Image> = (0..images)
        .map(|i| {
            let layers = with_layers.then(|| layers(i, images, &mut next));
            let size = match &layers {
                Some(layers) => layers.iter().map(|l| l.size_bytes()).sum(),
                None => 1_000_000 + next() % 100_000_000,
            };
            Image {
                id: format!("sha256:{i:064x}"),
                repo_tags: vec![format!("registry.local/team/app{}:{}", i % 100, i)],
                repo_digests: vec![format!(
                    "registry.local/team/app{}@sha256:{i:064x}",
                    i % 100
                )],
                size_bytes: size,
                shared_bytes: size / 4,
                first_seen: now - SignedDuration::from_secs((next() % 1_000_000) as i64 + 3_600),
                last_used: (i % 3 != 0)
                    .then(|| now - SignedDuration::from_secs((next() % 1_000_000) as i64)),
                pinned: i % 97 == 0,
                layers,
            }
        })
        .collect();
    let containers = (0..images / 10)
        .map(|i| Container {
            id: format!("{i:064x}"),
            image_id: image_list[i * 10].id.clone(),
            state: if i % 2 == 0 {
                ContainerState::Running
            } else {
                ContainerState::Exited
            },
            created: now - SignedDuration::from_secs(7_200),
            finished_at: (i % 2 == 1).then(|| now - SignedDuration::from_secs(3_600)),
            labels: BTreeMap::from([
                (LABEL_SERVICE_NAME.to_string(), format!("svc{}", i % 100)),
                (LABEL_TASK_ID.to_string(), format!("task{i}")),
                (
                    LABEL_TASK_NAME.to_string(),
                    format!("svc{}.{}.task{i}", i % 100, i % 7),
                ),
            ]),
        })
        .collect();
    let service_image_history = (0..100)
        .map(|s| {
            let history = (0..5)
                .map(|v| image_list[(s * 5 + v) % images].id.clone())
                .collect();
            (format!("svc{s}"), history)
        })
        .collect();
    let total: u64 = image_list.iter().map(|i| i.size_bytes).sum();
    Snapshot {
        version: 1,
        taken_at: now,
        filesystem: Filesystem {
            path: "/var/lib/docker".into(),
            capacity_bytes: total,
            available_bytes: total / 20,
        },
        images: image_list,
        containers,
        service_image_history,
        build_cache: None,
    }
}

fn planning(c: &mut Criterion) {
    let policy = Policy::new(PolicySettings {
        max_age: Duration::from_secs(30 * 24 * 3600),
        pins: vec!["registry.local/base/*".to_string()],
        ..PolicySettings::default()
    })
    .unwrap();
    for (group_name, with_layers) in [("plan", false), ("plan with layers", true)] {
        let mut group = c.benchmark_group(group_name);
        group.sample_size(20);
        for images in [1_000, 10_000, 100_000] {
            let snapshot = node(images, with_layers);
            group.throughput(Throughput::Elements(images as u64));
            group.bench_with_input(BenchmarkId::from_parameter(images), &snapshot, |b, s| {
                b.iter(|| plan(black_box(s), &policy, PlanMode::Threshold))
            });
        }
        group.finish();
    }

    // The same plans timed by the thread's CPU clock: on a machine shared with other work, wall
    // time grows with the load (waiting for a core), CPU time much less.
    let mut group = c.benchmark_group("plan with layers, thread CPU time");
    group.sample_size(20);
    for images in [10_000, 100_000] {
        let snapshot = node(images, true);
        group.throughput(Throughput::Elements(images as u64));
        group.bench_with_input(BenchmarkId::from_parameter(images), &snapshot, |b, s| {
            b.iter_custom(|iterations| {
                let start = thread_cpu_time();
                for _ in 0..iterations {
                    black_box(plan(black_box(s), &policy, PlanMode::Threshold));
                }
                thread_cpu_time() - start
            })
        });
    }
    group.finish();

    // What the agent adds to each pass since the forecast counts collectable bytes as free: one
    // more planner run with its need unbounded (`reclaimable_bytes`), on the node's snapshot.
    let mut group = c.benchmark_group("reclaimable bytes with layers, thread CPU time");
    group.sample_size(20);
    for images in [1_000, 10_000, 100_000] {
        let snapshot = node(images, true);
        group.throughput(Throughput::Elements(images as u64));
        group.bench_with_input(BenchmarkId::from_parameter(images), &snapshot, |b, s| {
            b.iter_custom(|iterations| {
                let start = thread_cpu_time();
                for _ in 0..iterations {
                    black_box(reclaimable_bytes(black_box(s), &policy));
                }
                thread_cpu_time() - start
            })
        });
    }
    group.finish();

    let text = node(10_000, false).to_json_pretty();
    c.bench_function("parse snapshot json (10,000 images)", |b| {
        b.iter(|| Snapshot::from_json(black_box(&text)).unwrap())
    });
}

fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

criterion_group!(benches, planning);
criterion_main!(benches);
