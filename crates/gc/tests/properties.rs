//! Property tests: random snapshots and policies never make the planner panic or plan to delete
//! an image that must stay.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use swarmkeeper_gc::{
    plan, Accounting, Container, ContainerState, DeletionReason, Filesystem, Image, KeepReason,
    Layer, PlanMode, Policy, PolicySettings, PullHeadroom, Snapshot, LABEL_SERVICE_NAME,
    LABEL_TASK_ID, LABEL_TASK_NAME,
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
            // Younger than min-age only when superseded: past some service's rollback reserve
            // and in none's.
            let reserve = p.rollback_reserve();
            let superseded = s.service_image_history.values().all(|h| !h.iter().take(reserve).any(|x| x == d.id))
                && s.service_image_history.values().any(|h| h.iter().skip(reserve).any(|x| x == d.id));
            prop_assert!(superseded || age >= SignedDuration::try_from(p.min_age()).unwrap(), "deletes too young {}", d.id);
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

/// The planner written the straightforward way, without the index tables, bit sets and sorted
/// keys of `plan`: every question answered by scanning. What `plan` gives must be exactly this
/// (deletions with their reasons and bytes in order, kept images with their reasons in order).
mod reference {
    use std::collections::{BTreeMap, HashSet};
    use std::time::Duration;

    use swarmkeeper_gc::{
        plan_containers, pull_headroom, space_need, usage_percent, DeletionReason, Image,
        KeepReason, PlanMode, Policy, Snapshot, AUTO_HEADROOM_VERSIONS,
    };

    pub struct Expected {
        pub delete: Vec<(String, DeletionReason, u64)>,
        pub keep: Vec<(String, KeepReason)>,
        pub planned_free_bytes: u64,
        pub shortfall_bytes: u64,
    }

    fn age(s: &Snapshot, then: jiff::Timestamp) -> Duration {
        if s.taken_at <= then {
            Duration::ZERO
        } else {
            s.taken_at.duration_since(then).unsigned_abs()
        }
    }

    /// Bytes of the layers that only images in `deleted` hold (a digest's size is that of
    /// its first listing). Without layers on every image: the bound from sizes.
    fn freed(s: &Snapshot, deleted: &[usize]) -> u64 {
        if s.images.iter().any(|i| i.layers.is_none()) {
            let unique: u64 = deleted.iter().map(|&i| s.images[i].unique_bytes()).sum();
            let max_shared = deleted
                .iter()
                .map(|&i| s.images[i].shared_bytes)
                .max()
                .unwrap_or(0);
            let survivors: u64 = (0..s.images.len())
                .filter(|i| !deleted.contains(i))
                .map(|i| s.images[i].shared_bytes)
                .sum();
            return unique + max_shared.saturating_sub(survivors);
        }
        let mut sizes = BTreeMap::new();
        for image in &s.images {
            for layer in image.layers.iter().flatten() {
                sizes.entry(layer.digest()).or_insert(layer.size_bytes());
            }
        }
        sizes
            .iter()
            .filter(|(digest, _)| {
                (0..s.images.len()).all(|i| {
                    deleted.contains(&i)
                        || !s.images[i]
                            .layers
                            .iter()
                            .flatten()
                            .any(|l| l.digest() == **digest)
                })
            })
            .map(|(_, size)| size)
            .sum()
    }

    fn lru_key(i: &Image) -> (bool, Option<jiff::Timestamp>, jiff::Timestamp, &str) {
        (
            i.last_used.is_some(),
            i.last_used,
            i.first_seen,
            i.id.as_str(),
        )
    }

    pub fn plan(s: &Snapshot, p: &Policy, mode: PlanMode) -> Expected {
        let fs = &s.filesystem;
        let depth_in = |id: &str, within: usize| {
            s.service_image_history
                .values()
                .filter_map(|h| h.iter().take(within).position(|x| x == id))
                .min()
        };
        let reserve_depth = |id: &str| depth_in(id, p.rollback_reserve());
        let superseded = |id: &str| {
            reserve_depth(id).is_none()
                && s.service_image_history
                    .values()
                    .any(|h| h.iter().skip(p.rollback_reserve()).any(|x| x == id))
        };
        let largest_recent = s
            .images
            .iter()
            .filter(|i| depth_in(&i.id, AUTO_HEADROOM_VERSIONS).is_some())
            .map(|i| i.size_bytes)
            .max()
            .unwrap_or(0);
        let headroom = pull_headroom(p, largest_recent, fs.capacity_bytes);
        let need = space_need(
            fs,
            p.high_threshold_percent(),
            p.low_threshold_percent(),
            headroom,
            mode == PlanMode::Continue,
        );
        let needed = need.bytes_to_free();
        let removed: HashSet<&str> =
            plan_containers(&s.containers, p, s.taken_at, need.trigger.is_some())
                .iter()
                .map(|r| r.id)
                .collect();
        let in_use = |id: &str| {
            s.containers
                .iter()
                .any(|c| c.image_id == id && !removed.contains(c.id.as_str()))
        };

        let mut keep = Vec::new();
        let mut ordinary = Vec::new();
        let mut reserve = Vec::new();
        for (index, image) in s.images.iter().enumerate() {
            let held = if in_use(&image.id) {
                Some(KeepReason::InUse)
            } else if image.pinned || p.pins_any(&image.repo_tags, &image.repo_digests) {
                Some(KeepReason::Pinned)
            } else if age(s, image.first_seen) < p.min_age() && !superseded(&image.id) {
                Some(KeepReason::TooYoung)
            } else {
                None
            };
            match (held, reserve_depth(&image.id)) {
                (Some(reason), _) => keep.push((image.id.clone(), reason)),
                (None, Some(depth)) => reserve.push((depth, index)),
                (None, None) => ordinary.push(index),
            }
        }
        ordinary.sort_by(|&a, &b| lru_key(&s.images[a]).cmp(&lru_key(&s.images[b])));
        reserve.sort_by(|(da, a), (db, b)| {
            db.cmp(da)
                .then_with(|| lru_key(&s.images[*a]).cmp(&lru_key(&s.images[*b])))
        });

        let mut deleted: Vec<usize> = Vec::new();
        let mut delete = Vec::new();
        let mut take = |index: usize, reason: DeletionReason, deleted: &mut Vec<usize>| {
            let before = freed(s, deleted);
            deleted.push(index);
            let bytes = freed(s, deleted) - before;
            delete.push((index, reason, bytes));
        };
        let mut remaining = Vec::new();
        for index in ordinary {
            let image = &s.images[index];
            if !p.max_age().is_zero() && age(s, image.last_activity()) > p.max_age() {
                take(index, DeletionReason::MaxAge, &mut deleted);
            } else {
                remaining.push(index);
            }
        }
        let mut not_needed = Vec::new();
        for index in remaining {
            if freed(s, &deleted) < needed {
                take(index, DeletionReason::Space, &mut deleted);
            } else {
                not_needed.push(index);
            }
        }
        let mut reserve_kept = Vec::new();
        for (_, index) in reserve {
            let total = freed(s, &deleted);
            let above_high = usage_percent(fs.capacity_bytes, fs.available_bytes + total)
                >= p.high_threshold_percent();
            if total < needed && above_high {
                take(index, DeletionReason::SpaceReserve, &mut deleted);
            } else {
                reserve_kept.push(index);
            }
        }
        let planned_free_bytes = freed(s, &deleted);

        // A space deletion none of whose layers is freed in the end is left out.
        let with_layers = s.images.iter().all(|i| i.layers.is_some());
        let useless = |index: usize, reason: DeletionReason| {
            with_layers
                && reason != DeletionReason::MaxAge
                && s.images[index].layers.iter().flatten().all(|l| {
                    (0..s.images.len()).any(|i| {
                        !deleted.contains(&i)
                            && s.images[i]
                                .layers
                                .iter()
                                .flatten()
                                .any(|m| m.digest() == l.digest())
                    })
                })
        };
        let (useless, delete): (Vec<_>, Vec<_>) = delete
            .into_iter()
            .partition(|&(index, reason, _)| useless(index, reason));
        for (index, reason, _) in useless {
            let reason = match reason {
                DeletionReason::SpaceReserve => KeepReason::RollbackReserve,
                _ => KeepReason::NotNeeded,
            };
            keep.push((s.images[index].id.clone(), reason));
        }
        let id = |i: usize| s.images[i].id.clone();
        keep.extend(
            not_needed
                .into_iter()
                .map(|i| (id(i), KeepReason::NotNeeded)),
        );
        keep.extend(
            reserve_kept
                .into_iter()
                .map(|i| (id(i), KeepReason::RollbackReserve)),
        );
        Expected {
            delete: delete
                .into_iter()
                .map(|(i, reason, bytes)| (id(i), reason, bytes))
                .collect(),
            keep,
            planned_free_bytes,
            shortfall_bytes: needed.saturating_sub(planned_free_bytes),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The planner gives exactly what the straightforward version gives: the same deletions in
    /// the same order with the same bytes, the same kept images for the same reasons.
    #[test]
    fn the_plan_is_that_of_the_straightforward_planner(s in snapshot(), p in policy(), continue_mode in any::<bool>()) {
        let mode = if continue_mode { PlanMode::Continue } else { PlanMode::Threshold };
        let result = plan(&s, &p, mode);
        let expected = reference::plan(&s, &p, mode);
        let delete: Vec<(String, DeletionReason, u64)> = result
            .delete
            .iter()
            .map(|d| (d.id.to_string(), d.reason, d.bytes))
            .collect();
        prop_assert_eq!(delete, expected.delete);
        let keep: Vec<(String, KeepReason)> =
            result.keep.iter().map(|k| (k.id.to_string(), k.reason)).collect();
        prop_assert_eq!(keep, expected.keep);
        prop_assert_eq!(result.planned_free_bytes, expected.planned_free_bytes);
        prop_assert_eq!(result.shortfall_bytes, expected.shortfall_bytes);
    }
}

/// A glob of pin-like pieces: literal text and every kind of globset syntax.
fn pin_pattern() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("reg"),
        Just("app"),
        Just("/"),
        Just(":"),
        Just("."),
        Just("*"),
        Just("**"),
        Just("/**"),
        Just("**/"),
        Just("?"),
        Just("[ab]"),
        Just("[!a]"),
        Just("{app,reg}"),
        Just("\\*"),
        Just(","),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

fn reference_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("reg"),
        Just("app"),
        Just("a"),
        Just("b"),
        Just("/"),
        Just(":"),
        Just("."),
        Just("*"),
        Just(","),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Pins rule out references by their patterns' literal starts before matching: never one
    /// that the glob set would match, as a tag or as the repository of a repo digest.
    #[test]
    fn pins_match_what_the_glob_set_matches(
        patterns in prop::collection::vec(pin_pattern(), 1..3),
        text in reference_text(),
    ) {
        let Ok(p) = Policy::new(PolicySettings { pins: patterns.clone(), ..PolicySettings::default() }) else {
            return Ok(());
        };
        let mut set = globset::GlobSetBuilder::new();
        for pattern in &patterns {
            set.add(globset::Glob::new(pattern).unwrap());
        }
        let set = set.build().unwrap();
        prop_assert_eq!(p.pins_any(std::slice::from_ref(&text), &[]), set.is_match(&text));
        let digest = format!("{text}@sha256:{}", "a".repeat(64));
        prop_assert_eq!(p.pins_any(&[], &[digest]), set.is_match(&text));
    }
}
