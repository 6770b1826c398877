//! Property tests: random snapshots and policies never make the planner panic or plan to delete
//! an image that must stay.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use swarmkeeper_gc::{
    plan, Container, ContainerState, DeletionReason, Filesystem, Image, PlanMode, Policy, Snapshot,
    LABEL_SERVICE_NAME, LABEL_TASK_ID, LABEL_TASK_NAME,
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
    (0u64..100_000, 0u64..120_000, images, containers, histories).prop_map(
        |(capacity, available, images, containers, histories)| {
            let images: Vec<Image> = images
                .into_iter()
                .enumerate()
                .map(|(i, (size, shared, seen, used, pinned, stable))| Image {
                    id: format!("sha256:{i:04}"),
                    repo_tags: if stable {
                        vec![format!("app:stable-{i}")]
                    } else {
                        vec![]
                    },
                    repo_digests: vec![],
                    size_bytes: size,
                    shared_bytes: shared,
                    first_seen: at(seen),
                    last_used: used.map(at),
                    pinned,
                })
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
    )
        .prop_filter_map(
            "valid policy",
            |(high, low, min_age, max_age, reserve, container_age, prune, pin_stable)| {
                let pins = if pin_stable {
                    vec!["*:stable-1*".to_string()]
                } else {
                    vec![]
                };
                Policy::new(
                    high,
                    low,
                    Duration::from_secs(min_age),
                    Duration::from_secs(max_age),
                    &pins,
                    reserve,
                    Duration::from_secs(container_age),
                    prune,
                )
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
            prop_assert!(!image.pinned && !p.pins_any(&image.repo_tags), "deletes pinned {}", d.id);
            let age = s.taken_at.duration_since(image.first_seen);
            prop_assert!(age >= SignedDuration::try_from(p.min_age).unwrap(), "deletes too young {}", d.id);
            prop_assert_eq!(d.bytes, image.unique_bytes());
        }

        // Every image is either deleted or kept, exactly once.
        let mut seen = HashSet::new();
        for id in result.delete.iter().map(|d| &d.id).chain(result.keep.iter().map(|k| &k.id)) {
            prop_assert!(seen.insert(*id), "{} listed twice", id);
        }
        prop_assert_eq!(seen.len(), s.images.len());

        let total: u64 = result.delete.iter().map(|d| d.bytes).sum();
        prop_assert_eq!(total, result.planned_free_bytes);
        prop_assert_eq!(result.shortfall_bytes, result.bytes_to_free.saturating_sub(total));

        // Space deletions come in least-recently-used order.
        let space: Vec<&Image> = result.delete.iter()
            .filter(|d| d.reason == DeletionReason::Space)
            .map(|d| s.images.iter().find(|i| i.id == d.id).unwrap())
            .collect();
        for pair in space.windows(2) {
            let key = |i: &Image| (i.last_used.is_some(), i.last_used, i.first_seen, i.id.clone());
            prop_assert!(key(pair[0]) <= key(pair[1]));
        }
        // Below the high threshold, in threshold mode, only max-age deletes.
        if mode == PlanMode::Threshold && result.usage_percent < p.high_threshold_percent {
            prop_assert!(result.delete.iter().all(|d| d.reason == DeletionReason::MaxAge));
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
