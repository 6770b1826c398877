//! Property tests: random snapshots and policies never make the planner panic or plan to delete
//! an image that must stay.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use swarmkeeper_gc::{
    plan, Accounting, Container, ContainerState, DeletionReason, Filesystem, Image, Layer,
    PlanMode, Policy, PolicySettings, PullHeadroom, Snapshot, LABEL_SERVICE_NAME, LABEL_TASK_ID,
    LABEL_TASK_NAME,
};

const NOW: i64 = 1_790_000_000;

fn at(secs_ago: i64) -> Timestamp {
    Timestamp::from_second(NOW).unwrap() - SignedDuration::from_secs(secs_ago)
}

fn state() -> impl Strategy<Value = ContainerState> {
    prop_oneof![
        Just(ContainerState::Running),
        Just(ContainerState::Paused),
        Just(ContainerState::Restarting),
        Just(ContainerState::Created),
        Just(ContainerState::Exited),
        Just(ContainerState::Dead),
    ]
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    let images = prop::collection::vec(
        (
            0u64..2_000,
            0u64..2_500,
            -100i64..20_000,
            prop::option::of(-100i64..20_000),
            prop::bool::weighted(0.1),
            prop::bool::weighted(0.2),
            prop::collection::vec(0usize..12, 0..5),
        ),
        0..40,
    );
    let containers = prop::collection::vec(
        (
            0usize..50,
            state(),
            0i64..20_000,
            0usize..4,
            0usize..3,
            any::<bool>(),
        ),
        0..30,
    );
    let histories = prop::collection::vec(prop::collection::vec(0usize..50, 0..5), 0..4);
    (
        0u64..100_000,
        0u64..120_000,
        images,
        containers,
        histories,
        any::<bool>(),
    )
        .prop_map(
            |(capacity, available, images, containers, histories, with_layers)| {
                let images: Vec<Image> = images
                    .into_iter()
                    .enumerate()
                    .map(
                        |(i, (size, shared, seen, used, pinned, stable, layers))| Image {
                            id: format!("sha256:{i:04}"),
                            repo_tags: if stable {
                                vec![format!("app:stable-{i}")]
                            } else {
                                vec![]
                            },
                            // Digest-only images, as Swarm pulls them, half under a pinnable repo.
                            repo_digests: if stable {
                                vec![]
                            } else {
                                vec![format!(
                                    "registry/{}/app@sha256:{i:04}",
                                    if i % 2 == 0 { "base" } else { "team" }
                                )]
                            },
                            size_bytes: size,
                            shared_bytes: shared,
                            first_seen: at(seen),
                            last_used: used.map(at),
                            pinned,
                            // A pool of twelve layers, so images share some; a layer's size is fixed
                            // by its digest.
                            layers: with_layers.then(|| {
                                layers
                                    .iter()
                                    .map(|&l| {
                                        // Real digests and hand-written ones, both kinds.
                                        let digest = if l % 2 == 0 {
                                            format!("sha256:{l:064x}")
                                        } else {
                                            format!("sha256:l{l}")
                                        };
                                        Layer::new(digest, (l as u64 + 1) * 37)
                                    })
                                    .collect()
                            }),
                        },
                    )
                    .collect();
                let containers = containers
                    .into_iter()
                    .enumerate()
                    .map(|(i, (image, state, finished, service, slot, is_task))| {
                        let labels = if is_task {
                            BTreeMap::from([
                                (LABEL_SERVICE_NAME.to_string(), format!("svc{service}")),
                                (LABEL_TASK_ID.to_string(), format!("t{i}")),
                                (
                                    LABEL_TASK_NAME.to_string(),
                                    format!("svc{service}.{slot}.t{i}"),
                                ),
                            ])
                        } else {
                            BTreeMap::new()
                        };
                        Container {
                            id: format!("c{i}"),
                            image_id: format!("sha256:{image:04}"),
                            state,
                            created: at(finished + 10),
                            finished_at: state.is_terminal().then(|| at(finished)),
                            labels,
                        }
                    })
                    .collect();
                let service_image_history = histories
                    .into_iter()
                    .enumerate()
                    .map(|(s, h)| {
                        (
                            format!("svc{s}"),
                            h.into_iter().map(|i| format!("sha256:{i:04}")).collect(),
                        )
                    })
                    .collect();
                Snapshot {
                    version: 1,
                    taken_at: Timestamp::from_second(NOW).unwrap(),
                    filesystem: Filesystem {
                        path: "/var/lib/docker".into(),
                        capacity_bytes: capacity,
                        available_bytes: available,
                    },
                    images,
                    containers,
                    service_image_history,
                    build_cache: None,
                }
            },
        )
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        0i64..=100,
        0i64..=100,
        0u64..5_000,
        0u64..20_000,
        0usize..4,
        0u64..3_000,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![
            Just(PullHeadroom::Off),
            Just(PullHeadroom::Auto),
            (1u64..50_000).prop_map(PullHeadroom::Bytes)
        ],
    )
        .prop_filter_map(
            "valid policy",
            |(high, low, min_age, max_age, reserve, container_age, prune, pin, pull_headroom)| {
                let pins = if pin {
                    vec!["*:stable-1*".to_string(), "registry/base/*".to_string()]
                } else {
                    vec![]
                };
                Policy::new(PolicySettings {
                    high_threshold_percent: high,
                    low_threshold_percent: low,
                    min_age: Duration::from_secs(min_age),
                    max_age: Duration::from_secs(max_age),
                    pins,
                    rollback_reserve: reserve,
                    container_min_age: Duration::from_secs(container_age),
                    prune_standalone_containers: prune,
                    pull_headroom,
                    ..PolicySettings::default()
                })
                .ok()
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn never_deletes_an_image_that_must_stay(s in snapshot(), p in policy(), continue_mode in any::<bool>()) {
        let mode = if continue_mode { PlanMode::Continue } else { PlanMode::Threshold };
        let result = plan(&s, &p, mode);

        let removed: HashSet<&str> = result.remove_containers.iter().map(|r| r.id).collect();
        for c in &result.remove_containers {
            let container = s.containers.iter().find(|x| x.id == c.id).unwrap();
            prop_assert!(container.state.is_terminal(), "removes a live container {}", c.id);
        }
        let in_use: HashSet<&str> = s.containers.iter()
            .filter(|c| !removed.contains(c.id.as_str()))
            .map(|c| c.image_id.as_str())
            .collect();
        for d in &result.delete {
            let image = s.images.iter().find(|i| i.id == d.id).unwrap();
            prop_assert!(!in_use.contains(d.id), "deletes in-use {}", d.id);
            prop_assert!(!image.pinned && !p.pins_any(&image.repo_tags, &image.repo_digests), "deletes pinned {}", d.id);
            prop_assert!(!image.repo_digests.iter().any(|r| r.starts_with("registry/base/")) || p.settings().pins.is_empty(), "deletes pinned {}", d.id);
            // A first sighting in the future (clock skew) counts as age zero.
            let age = s.taken_at.duration_since(image.first_seen).max(SignedDuration::ZERO);
            prop_assert!(age >= SignedDuration::try_from(p.min_age()).unwrap(), "deletes too young {}", d.id);
            prop_assert_eq!(d.name, image.name());
            if result.accounting == Accounting::Sizes {
                // Never less than the image's own bytes.
                prop_assert!(d.bytes >= image.unique_bytes());
            }
        }
        if result.accounting == Accounting::Layers {
            // Exactly the layers no remaining image holds, each counted once.
            let deleted: HashSet<&str> = result.delete.iter().map(|d| d.id).collect();
            let mut held = HashSet::new();
            let mut all = BTreeMap::new();
            for image in &s.images {
                for layer in image.layers.iter().flatten() {
                    all.insert(layer.digest(), layer.size_bytes());
                    if !deleted.contains(image.id.as_str()) {
                        held.insert(layer.digest());
                    }
                }
            }
            let exact: u64 = all.iter().filter(|(d, _)| !held.contains(*d)).map(|(_, size)| size).sum();
            prop_assert_eq!(result.delete.iter().map(|d| d.bytes).sum::<u64>(), exact);
            // A space deletion that frees nothing is left out.
            for d in result.delete.iter().filter(|d| d.reason != DeletionReason::MaxAge) {
                let image = s.images.iter().find(|i| i.id == d.id).unwrap();
                prop_assert!(image.layers.iter().flatten().any(|l| !held.contains(l.digest())), "{} frees nothing", d.id);
            }
        }

        // Every image is either deleted or kept, exactly once.
        let mut seen = HashSet::new();
        for id in result.delete.iter().map(|d| &d.id).chain(result.keep.iter().map(|k| &k.id)) {
            prop_assert!(seen.insert(*id), "{} listed twice", id);
        }
        prop_assert_eq!(seen.len(), s.images.len());

        let total: u64 = result.delete.iter().map(|d| d.bytes).sum();
        prop_assert_eq!(total, result.planned_free_bytes);
        let target = result.bytes_to_free.max(result.headroom_bytes_to_free);
        let total = total + result.prune_build_cache.as_ref().map_or(0, |p| p.bytes);
        prop_assert_eq!(result.shortfall_bytes, target.saturating_sub(total));

        // Space deletions come in least-recently-used order.
        let space: Vec<&Image> = result.delete.iter()
            .filter(|d| d.reason == DeletionReason::Space)
            .map(|d| s.images.iter().find(|i| i.id == d.id).unwrap())
            .collect();
        for pair in space.windows(2) {
            let key = |i: &Image| (i.last_used.is_some(), i.last_used, i.first_seen, i.id.clone());
            prop_assert!(key(pair[0]) <= key(pair[1]));
        }
        // Without a space trigger (below the high threshold and with room for a pull), only
        // max-age deletes.
        if result.space_trigger.is_none() {
            prop_assert_eq!(result.bytes_to_free + result.headroom_bytes_to_free, 0);
            prop_assert!(result.delete.iter().all(|d| d.reason == DeletionReason::MaxAge));
        }
        if mode == PlanMode::Threshold && result.usage_percent < p.high_threshold_percent()
            && s.filesystem.available_bytes >= result.pull_headroom_bytes {
            prop_assert!(result.space_trigger.is_none());
        }
    }

    #[test]
    fn any_text_is_read_or_refused_without_panicking(text in ".{0,400}") {
        let _ = Snapshot::from_json(&text);
    }

    #[test]
    fn a_valid_snapshot_survives_a_json_round_trip(s in snapshot()) {
        prop_assert_eq!(Snapshot::from_json(&s.to_json_pretty()).unwrap(), s);
    }
}
