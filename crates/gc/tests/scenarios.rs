//! Kubelet-style scenarios for the image planner, written from the GC semantics: each row is a
//! node, a policy and the plan it must produce.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use swarmkeeper_gc::{
    plan, reclaimable_bytes, Container, ContainerState, DeletionReason, Filesystem, Image,
    KeepReason, PlanMode, Policy, PolicySettings, PullHeadroom, Snapshot, LABEL_SERVICE_NAME,
    LABEL_TASK_ID, LABEL_TASK_NAME,
};

const NOW: &str = "2026-11-26T12:00:00Z";

fn ts(minutes_ago: i64) -> Timestamp {
    let now: Timestamp = NOW.parse().unwrap();
    now - jiff::SignedDuration::from_mins(minutes_ago)
}

struct Node {
    snapshot: Snapshot,
}

impl Node {
    fn new(capacity: u64, available: u64) -> Node {
        Node {
            snapshot: Snapshot {
                version: 1,
                taken_at: NOW.parse().unwrap(),
                filesystem: Filesystem {
                    path: "/var/lib/docker".into(),
                    capacity_bytes: capacity,
                    available_bytes: available,
                },
                images: vec![],
                containers: vec![],
                service_image_history: BTreeMap::new(),
                build_cache: None,
            },
        }
    }

    /// An image first seen `seen` minutes ago and last used `used` minutes ago (None: never).
    fn image(mut self, id: &str, size: u64, seen: i64, used: Option<i64>) -> Node {
        self.snapshot.images.push(Image {
            id: id.into(),
            repo_tags: vec![format!("app:{id}")],
            repo_digests: vec![],
            size_bytes: size,
            shared_bytes: 0,
            first_seen: ts(seen),
            last_used: used.map(ts),
            pinned: false,
            layers: None,
        });
        self
    }

    fn shared(mut self, id: &str, shared: u64) -> Node {
        self.snapshot
            .images
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap()
            .shared_bytes = shared;
        self
    }

    fn labelled_pin(mut self, id: &str) -> Node {
        self.snapshot
            .images
            .iter_mut()
            .find(|i| i.id == id)
            .unwrap()
            .pinned = true;
        self
    }

    fn container(mut self, id: &str, image: &str, state: ContainerState) -> Node {
        self.snapshot.containers.push(Container {
            id: id.into(),
            image_id: image.into(),
            state,
            created: ts(600),
            finished_at: state.is_terminal().then(|| ts(300)),
            labels: BTreeMap::new(),
        });
        self
    }

    fn task(mut self, id: &str, image: &str, slot: &str, finished: i64) -> Node {
        let labels = BTreeMap::from([
            (
                LABEL_SERVICE_NAME.into(),
                slot.split('.').next().unwrap().into(),
            ),
            (LABEL_TASK_ID.into(), id.into()),
            (LABEL_TASK_NAME.into(), format!("{slot}.{id}")),
        ]);
        self.snapshot.containers.push(Container {
            id: id.into(),
            image_id: image.into(),
            state: ContainerState::Exited,
            created: ts(finished + 1),
            finished_at: Some(ts(finished)),
            labels,
        });
        self
    }

    fn history(mut self, service: &str, newest_first: &[&str]) -> Node {
        self.snapshot.service_image_history.insert(
            service.into(),
            newest_first.iter().map(|s| s.to_string()).collect(),
        );
        self
    }
}

/// The kubelet's knobs; no pull headroom, so that these rows are the kubelet's arithmetic.
fn settings(
    high: i64,
    low: i64,
    min_age_min: u64,
    max_age_min: u64,
    pins: &[&str],
) -> PolicySettings {
    PolicySettings {
        high_threshold_percent: high,
        low_threshold_percent: low,
        min_age: Duration::from_secs(min_age_min * 60),
        max_age: Duration::from_secs(max_age_min * 60),
        pins: pins.iter().map(|p| p.to_string()).collect(),
        pull_headroom: PullHeadroom::Off,
        ..PolicySettings::default()
    }
}

fn policy(high: i64, low: i64, min_age_min: u64, max_age_min: u64, pins: &[&str]) -> Policy {
    Policy::new(settings(high, low, min_age_min, max_age_min, pins)).unwrap()
}

fn deleted(node: &Node, policy: &Policy) -> Vec<(String, DeletionReason)> {
    plan(&node.snapshot, policy, PlanMode::Threshold)
        .delete
        .into_iter()
        .map(|d| (d.id.to_string(), d.reason))
        .collect()
}

fn ids(v: &[(String, DeletionReason)]) -> Vec<&str> {
    v.iter().map(|(id, _)| id.as_str()).collect()
}

fn kept_for(node: &Node, policy: &Policy, id: &str) -> KeepReason {
    plan(&node.snapshot, policy, PlanMode::Threshold)
        .keep
        .into_iter()
        .find(|k| k.id == id)
        .unwrap_or_else(|| panic!("{id} not kept"))
        .reason
}

#[test]
fn below_the_high_threshold_nothing_is_deleted() {
    let node = Node::new(1000, 160).image("a", 400, 60, None);
    let p = plan(
        &node.snapshot,
        &policy(85, 80, 2, 0, &[]),
        PlanMode::Threshold,
    );
    assert_eq!(p.usage_percent, 84);
    assert!(p.delete.is_empty());
    assert_eq!(p.bytes_to_free, 0);
    assert_eq!(p.keep[0].reason, KeepReason::NotNeeded);
}

#[test]
fn at_the_high_threshold_gc_runs_down_to_the_low_one() {
    // usage = 100 - floor(150*100/1000) = 85; to free = 200 - 150 = 50.
    let node = Node::new(1000, 150)
        .image("old", 30, 60, Some(50))
        .image("older", 30, 60, Some(55))
        .image("new", 30, 60, Some(1));
    let p = plan(
        &node.snapshot,
        &policy(85, 80, 2, 0, &[]),
        PlanMode::Threshold,
    );
    assert_eq!((p.usage_percent, p.bytes_to_free), (85, 50));
    assert_eq!(
        p.delete.iter().map(|d| d.id).collect::<Vec<_>>(),
        ["older", "old"]
    );
    assert_eq!((p.planned_free_bytes, p.shortfall_bytes), (60, 0));
}

#[test]
fn the_contract_example_frees_150_bytes() {
    let node = Node::new(1000, 50).image("a", 450, 60, None);
    let p = plan(
        &node.snapshot,
        &policy(90, 80, 2, 0, &[]),
        PlanMode::Threshold,
    );
    assert_eq!((p.usage_percent, p.bytes_to_free), (95, 150));
    assert_eq!(p.delete[0].bytes, 450);
    assert_eq!(p.delete[0].reason, DeletionReason::Space);
}

#[test]
fn never_used_images_go_first_then_least_recently_used() {
    let node = Node::new(1000, 0)
        .image("used-long-ago", 10, 500, Some(400))
        .image("never-used-new", 10, 10, None)
        .image("used-recently", 10, 500, Some(5))
        .image("never-used-old", 10, 100, None);
    let d = deleted(&node, &policy(85, 80, 2, 0, &[]));
    assert_eq!(
        ids(&d),
        [
            "never-used-old",
            "never-used-new",
            "used-long-ago",
            "used-recently"
        ]
    );
}

#[test]
fn ties_are_broken_by_first_seen_then_id() {
    let node = Node::new(1000, 0)
        .image("b", 10, 100, Some(10))
        .image("a", 10, 100, Some(10))
        .image("c", 10, 200, Some(10));
    assert_eq!(
        ids(&deleted(&node, &policy(85, 80, 2, 0, &[]))),
        ["c", "a", "b"]
    );
}

#[test]
fn deletion_stops_once_enough_is_freed() {
    let node = Node::new(1000, 100)
        .image("a", 60, 60, Some(40))
        .image("b", 60, 60, Some(30))
        .image("c", 60, 60, Some(20));
    // To free 100: a (60) then b (120 >= 100) and stop.
    assert_eq!(ids(&deleted(&node, &policy(85, 80, 2, 0, &[]))), ["a", "b"]);
}

#[test]
fn images_used_by_any_container_are_kept() {
    let node = Node::new(1000, 0)
        .image("running", 100, 60, Some(0))
        .image("stopped", 100, 60, Some(100))
        .image("created", 100, 60, None)
        .container("c1", "running", ContainerState::Running)
        .container("c2", "stopped", ContainerState::Exited)
        .container("c3", "created", ContainerState::Created);
    let p = policy(85, 80, 2, 0, &[]);
    assert!(deleted(&node, &p).is_empty());
    for id in ["running", "stopped", "created"] {
        assert_eq!(kept_for(&node, &p, id), KeepReason::InUse);
    }
}

#[test]
fn min_age_is_inclusive() {
    let node = Node::new(1000, 0)
        .image("exactly-min-age", 10, 2, None)
        .image("just-younger", 10, 1, None);
    let p = policy(85, 80, 2, 0, &[]);
    assert_eq!(ids(&deleted(&node, &p)), ["exactly-min-age"]);
    assert_eq!(kept_for(&node, &p, "just-younger"), KeepReason::TooYoung);
}

/// Tryout 8 #6: five deploys seconds apart to a small worker. Every unused version was
/// younger than min-age, GC freed nothing and the fifth pull failed for space. Versions a
/// service has moved past beyond its rollback reserve are nobody's next image: min-age does
/// not hold them. An image just pulled for a task that has not started (in no history, or
/// another service's current version) still waits for min-age.
#[test]
fn superseded_versions_are_collected_however_young() {
    let node = Node::new(1000, 0)
        .image("v1", 100, 1, Some(1))
        .image("v2", 100, 1, Some(1))
        .image("v3", 100, 0, Some(0))
        .image("v4", 100, 0, None)
        .image("pulled-for-a-pending-task", 100, 0, None)
        .image("shared-current", 100, 1, Some(1))
        .container("web-v4", "v4", ContainerState::Running)
        .history("web", &["v4", "v3", "v2", "v1", "shared-current"])
        .history("api", &["shared-current"]);
    let p = policy(85, 80, 2, 0, &[]);
    let d = deleted(&node, &p);
    assert_eq!(ids(&d), ["v1", "v2"]);
    assert!(d.iter().all(|(_, r)| *r == DeletionReason::Space));
    assert_eq!(kept_for(&node, &p, "v4"), KeepReason::InUse);
    // The rollback target stays, young or not.
    assert_eq!(kept_for(&node, &p, "v3"), KeepReason::TooYoung);
    assert_eq!(
        kept_for(&node, &p, "pulled-for-a-pending-task"),
        KeepReason::TooYoung
    );
    // Past web's reserve, but api's current version.
    assert_eq!(kept_for(&node, &p, "shared-current"), KeepReason::TooYoung);
}

#[test]
fn max_age_deletes_whatever_the_usage_and_only_strictly_older() {
    let node = Node::new(1000, 900)
        .image("unused-61m", 10, 100, Some(61))
        .image("unused-60m", 10, 100, Some(60))
        .image("never-used-seen-90m", 10, 90, None)
        .image("never-used-seen-5m", 10, 5, None);
    let p = policy(85, 80, 2, 60, &[]);
    let d = deleted(&node, &p);
    assert_eq!(
        d,
        [
            ("never-used-seen-90m".to_string(), DeletionReason::MaxAge),
            ("unused-61m".to_string(), DeletionReason::MaxAge)
        ]
    );
    // Unlike kubelet issue 132403: a freshly pulled, never-used image is not "unused for ages".
    assert_eq!(
        kept_for(&node, &p, "never-used-seen-5m"),
        KeepReason::NotNeeded
    );
}

#[test]
fn max_age_frees_count_towards_the_space_target() {
    let node = Node::new(1000, 100)
        .image("ancient", 100, 1000, Some(900))
        .image("recent", 100, 60, Some(10));
    let d = deleted(&node, &policy(85, 80, 2, 60, &[]));
    assert_eq!(d, [("ancient".to_string(), DeletionReason::MaxAge)]);
}

#[test]
fn pins_by_label_and_by_pattern_are_never_collected() {
    let node = Node::new(1000, 0)
        .image("labelled", 100, 60, None)
        .labelled_pin("labelled")
        .image("base", 100, 60, None)
        .image("other", 100, 60, None);
    let p = policy(85, 80, 2, 0, &["app:base"]);
    assert_eq!(ids(&deleted(&node, &p)), ["other"]);
    assert_eq!(kept_for(&node, &p, "labelled"), KeepReason::Pinned);
    assert_eq!(kept_for(&node, &p, "base"), KeepReason::Pinned);
}

#[test]
fn shared_bytes_count_only_once_no_image_that_stays_can_hold_them() {
    // The kubelet would count 100 bytes per image and stop after one; only 40 are unique.
    // Without layer lists the planner bounds what the pair frees: once both go, no image left
    // has shared bytes, so the 60 they share go too.
    let node = Node::new(1000, 150)
        .image("a", 100, 60, Some(30))
        .shared("a", 60)
        .image("b", 100, 60, Some(20))
        .shared("b", 60);
    let p = plan(
        &node.snapshot,
        &policy(85, 80, 2, 0, &[]),
        PlanMode::Threshold,
    );
    assert_eq!(p.bytes_to_free, 50);
    assert_eq!(
        p.delete.iter().map(|d| d.bytes).collect::<Vec<_>>(),
        [40, 100]
    );
    assert_eq!(p.planned_free_bytes, 140);

    // An image in use with 60 shared bytes may hold the same layers: only unique bytes count.
    let node = node
        .image("running", 100, 60, Some(0))
        .shared("running", 60)
        .container("c", "running", ContainerState::Running);
    let p = plan(
        &node.snapshot,
        &policy(85, 80, 2, 0, &[]),
        PlanMode::Threshold,
    );
    assert_eq!(
        p.delete.iter().map(|d| d.bytes).collect::<Vec<_>>(),
        [40, 40]
    );
}

#[test]
fn rollback_reserve_is_kept_while_ordinary_images_suffice() {
    let node = Node::new(1000, 100)
        .image("web-v3", 100, 60, Some(0))
        .container("web3", "web-v3", ContainerState::Running)
        .image("web-v2", 100, 60, Some(10))
        .image("web-v1", 100, 60, Some(20))
        .image("junk", 100, 60, Some(5))
        .history("web", &["web-v3", "web-v2", "web-v1"]);
    let p = policy(85, 80, 2, 0, &[]);
    // web-v1 is beyond the reserve of 2 and goes first although junk was used less recently.
    assert_eq!(ids(&deleted(&node, &p)), ["web-v1"]);
    assert_eq!(kept_for(&node, &p, "web-v2"), KeepReason::RollbackReserve);
    assert_eq!(kept_for(&node, &p, "web-v3"), KeepReason::InUse);
}

#[test]
fn rollback_reserve_goes_last_and_only_to_leave_the_high_threshold() {
    // usage 95%, high 85: ordinary images free 20 bytes (usage 93%), still above high.
    let node = Node::new(1000, 50)
        .image("junk", 20, 60, Some(5))
        .image("web-v2", 50, 60, Some(10))
        .image("web-v1", 50, 60, Some(30))
        .image("api-v1", 50, 60, Some(15))
        .history("web", &["web-v3", "web-v2", "web-v1"])
        .history("api", &["api-v2", "api-v1"]);
    let p = Policy::new(PolicySettings {
        rollback_reserve: 3,
        ..settings(85, 80, 2, 0, &[])
    })
    .unwrap();
    let d = deleted(&node, &p);
    // Deepest history first (web-v1 is depth 2), then depth 1 by LRU (api-v1 before web-v2).
    assert_eq!(
        d,
        [
            ("junk".to_string(), DeletionReason::Space),
            ("web-v1".to_string(), DeletionReason::SpaceReserve),
            ("api-v1".to_string(), DeletionReason::SpaceReserve),
        ]
    );
    // 50 + 20 + 50 + 50 = 170 available: usage 83% < 85, so web-v2 survives.
    assert_eq!(kept_for(&node, &p, "web-v2"), KeepReason::RollbackReserve);
}

#[test]
fn reserve_images_are_safe_from_max_age() {
    let node = Node::new(1000, 900)
        .image("web-v1", 10, 1000, Some(900))
        .history("web", &["web-v2", "web-v1"]);
    let p = policy(85, 80, 2, 60, &[]);
    assert!(deleted(&node, &p).is_empty());
}

#[test]
fn shortfall_is_reported_when_gc_cannot_free_enough() {
    let node = Node::new(1000, 0)
        .image("in-use", 500, 60, Some(0))
        .container("c", "in-use", ContainerState::Running)
        .image("small", 10, 60, None);
    let p = plan(
        &node.snapshot,
        &policy(85, 80, 2, 0, &[]),
        PlanMode::Threshold,
    );
    assert_eq!(
        (p.bytes_to_free, p.planned_free_bytes, p.shortfall_bytes),
        (200, 10, 190)
    );
}

#[test]
fn dead_task_containers_release_their_images() {
    let node = Node::new(1000, 0)
        .image("v1", 100, 600, Some(300))
        .image("v2", 100, 600, Some(100))
        .task("t1", "v1", "web.1", 300)
        .task("t2", "v2", "web.1", 100);
    let p = plan(
        &node.snapshot,
        &policy(85, 80, 2, 0, &[]),
        PlanMode::Threshold,
    );
    assert_eq!(p.remove_containers.len(), 1);
    assert_eq!(p.remove_containers[0].id, "t1");
    assert_eq!(p.delete.iter().map(|d| d.id).collect::<Vec<_>>(), ["v1"]);
}

#[test]
fn continue_mode_frees_down_to_low_below_the_high_threshold() {
    let node = Node::new(1000, 170).image("a", 100, 60, Some(30));
    let p = policy(85, 80, 2, 0, &[]);
    assert!(plan(&node.snapshot, &p, PlanMode::Threshold)
        .delete
        .is_empty());
    let again = plan(&node.snapshot, &p, PlanMode::Continue);
    assert_eq!((again.bytes_to_free, again.delete.len()), (30, 1));
}

/// What the disk-full forecast counts as free (tryout 8 finding 2): the seed incident at the
/// defaults, a version deployed every minute or so. Whatever the usage, GC could give back
/// the versions the service has moved past beyond its rollback reserve (young as they are,
/// and though a dead task container still names one), never the running version, the one
/// the slot's newest dead task ran, a pinned image, or an image younger than min-age that no
/// task has run yet.
#[test]
fn reclaimable_bytes_are_what_gc_may_delete_once_space_is_needed() {
    let node = Node::new(1000, 900)
        .image("v1", 10, 5, Some(4))
        .image("v2", 20, 4, Some(3))
        .image("v3", 40, 3, Some(1))
        .image("v4", 80, 1, Some(0))
        .image("v5", 160, 0, Some(0))
        .image("pinned", 300, 600, None)
        .labelled_pin("pinned")
        .image("pulled", 500, 0, None)
        .container("c5", "v5", ContainerState::Running)
        .task("t3", "v3", "web.1", 1)
        .task("t4", "v4", "web.1", 0)
        .history("web", &["v5", "v4", "v3", "v2", "v1"]);
    let p = policy(85, 80, 2, 0, &[]);
    // Below the high threshold a pass frees nothing ...
    assert!(plan(&node.snapshot, &p, PlanMode::Threshold)
        .delete
        .is_empty());
    // ... and the three superseded versions are reclaimable all the same.
    assert_eq!(reclaimable_bytes(&node.snapshot, &p), 10 + 20 + 40);
    // Once the reserve's version is older than min-age and no task names it, it goes too
    // (as the reserve goes when the disk stays above the high threshold).
    let older = Node::new(1000, 900)
        .image("v4", 80, 10, Some(5))
        .image("v5", 160, 0, Some(0))
        .container("c5", "v5", ContainerState::Running)
        .history("web", &["v5", "v4"]);
    assert_eq!(reclaimable_bytes(&older.snapshot, &p), 80);
}
