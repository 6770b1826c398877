//! How much space GC must free: the kubelet's thresholds, plus room for the next pull.
//!
//! A percentage alone does not leave room for a pull: at 84 % of a 256 MiB disk, under the
//! kubelet's 85 %, a 30 MB image no longer fits, because a pull holds the download and the
//! unpacked layers at once. So besides the thresholds GC keeps `pull headroom` bytes available:
//! space GC runs when usage reaches the high threshold **or** available bytes fall below the
//! headroom, and then frees down to the low threshold (the kubelet's `bytes_to_free`) and up to
//! the headroom, whichever asks more.

use serde::Serialize;

use crate::{bytes_to_free, usage_percent, Filesystem, Policy, PullHeadroom};

/// With [`PullHeadroom::Auto`], the headroom is this many times the largest recent service
/// image: room for its download and its unpacked layers.
pub const AUTO_HEADROOM_FACTOR: u64 = 2;

/// "Recently" for [`PullHeadroom::Auto`]: each service's newest this many images.
pub const AUTO_HEADROOM_VERSIONS: usize = 3;

/// [`PullHeadroom::Auto`] never asks for more than this share of the disk (in percent): an
/// image of half the disk would otherwise make GC delete everything it may, for a headroom it
/// can never reach.
pub const AUTO_HEADROOM_MAX_PERCENT: u64 = 50;

/// Why a plan frees space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpaceTrigger {
    /// Usage is at or above the high threshold (the kubelet's trigger).
    HighThreshold,
    /// Fewer bytes are available than the pull headroom.
    PullHeadroom,
    /// A round after one whose re-measured disk was not yet back at the target.
    Continue,
}

impl SpaceTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceTrigger::HighThreshold => "high-threshold",
            SpaceTrigger::PullHeadroom => "pull-headroom",
            SpaceTrigger::Continue => "continue",
        }
    }
}

/// The space a node must get back, given its filesystem and the headroom in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceNeed {
    pub usage_percent: u8,
    /// `None`: no space GC now.
    pub trigger: Option<SpaceTrigger>,
    /// The kubelet's `floor(capacity × (100 − low) / 100) − available` when triggered, else 0.
    pub threshold_bytes: u64,
    /// `headroom − available` when triggered, else 0.
    pub headroom_bytes: u64,
}

impl SpaceNeed {
    /// What space GC must free: the larger of the two.
    pub fn bytes_to_free(&self) -> u64 {
        self.threshold_bytes.max(self.headroom_bytes)
    }
}

/// What `fs` must free under the thresholds and `headroom_bytes` (0: no headroom). With
/// `continuing`, space is freed whatever triggered the round before.
pub fn space_need(
    fs: &Filesystem,
    high_threshold_percent: u8,
    low_threshold_percent: u8,
    headroom_bytes: u64,
    continuing: bool,
) -> SpaceNeed {
    let usage = usage_percent(fs.capacity_bytes, fs.available_bytes);
    let trigger = if continuing {
        Some(SpaceTrigger::Continue)
    } else if usage >= high_threshold_percent {
        Some(SpaceTrigger::HighThreshold)
    } else if fs.available_bytes < headroom_bytes {
        Some(SpaceTrigger::PullHeadroom)
    } else {
        None
    };
    let (threshold_bytes, headroom_bytes) = match trigger {
        None => (0, 0),
        Some(_) => (
            bytes_to_free(fs.capacity_bytes, fs.available_bytes, low_threshold_percent),
            headroom_bytes.saturating_sub(fs.available_bytes),
        ),
    };
    SpaceNeed {
        usage_percent: usage,
        trigger,
        threshold_bytes,
        headroom_bytes,
    }
}

/// The pull headroom the policy asks for on a node, in bytes. [`PullHeadroom::Auto`] is
/// [`AUTO_HEADROOM_FACTOR`] times `largest_recent`, the largest image among each Swarm
/// service's newest [`AUTO_HEADROOM_VERSIONS`] images still on the node (the agent learns them
/// from task containers: `service_image_history`), at most [`AUTO_HEADROOM_MAX_PERCENT`] of
/// the capacity; 0 on a node that has run no service yet.
///
/// A new version of a service is the next pull to expect, and it is about as large as the
/// ones before it. Images count whole (shared layers included): a pull that shares layers
/// needs less, which leaves a margin.
pub fn pull_headroom(policy: &Policy, largest_recent: u64, capacity_bytes: u64) -> u64 {
    match policy.pull_headroom() {
        PullHeadroom::Off => 0,
        PullHeadroom::Bytes(n) => n,
        PullHeadroom::Auto => {
            let cap =
                (u128::from(capacity_bytes) * u128::from(AUTO_HEADROOM_MAX_PERCENT) / 100) as u64;
            largest_recent.saturating_mul(AUTO_HEADROOM_FACTOR).min(cap)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(capacity: u64, available: u64) -> Filesystem {
        Filesystem {
            path: "/var/lib/docker".into(),
            capacity_bytes: capacity,
            available_bytes: available,
        }
    }

    #[test]
    fn without_headroom_it_is_the_kubelets_arithmetic() {
        let need = space_need(&fs(1000, 50), 85, 80, 0, false);
        assert_eq!(need.usage_percent, 95);
        assert_eq!(need.trigger, Some(SpaceTrigger::HighThreshold));
        assert_eq!((need.threshold_bytes, need.headroom_bytes), (150, 0));
        assert_eq!(need.bytes_to_free(), 150);
        assert_eq!(space_need(&fs(1000, 160), 85, 80, 0, false).trigger, None);
    }

    #[test]
    fn the_headroom_triggers_below_the_high_threshold() {
        // 84 % used of 256 MiB: under 85 %, but 41 MiB free is less than a 64 MiB headroom.
        let mib = 1 << 20;
        let need = space_need(&fs(256 * mib, 41 * mib), 85, 80, 64 * mib, false);
        assert_eq!(need.usage_percent, 84);
        assert_eq!(need.trigger, Some(SpaceTrigger::PullHeadroom));
        // Down to 80 % would need 10 MiB; the headroom needs 23 MiB.
        assert_eq!(need.threshold_bytes, 10 * mib + 209_715);
        assert_eq!(need.bytes_to_free(), 23 * mib);
        // Enough room: nothing to do.
        let need = space_need(&fs(256 * mib, 64 * mib), 85, 80, 64 * mib, false);
        assert_eq!((need.trigger, need.bytes_to_free()), (None, 0));
    }

    #[test]
    fn the_larger_of_the_two_targets_wins() {
        // Above high: the low threshold asks 150, the headroom 250.
        let need = space_need(&fs(1000, 50), 85, 80, 300, false);
        assert_eq!(need.trigger, Some(SpaceTrigger::HighThreshold));
        assert_eq!((need.threshold_bytes, need.bytes_to_free()), (150, 250));
        let need = space_need(&fs(1000, 50), 85, 80, 100, false);
        assert_eq!(need.bytes_to_free(), 150);
    }

    #[test]
    fn auto_is_twice_the_largest_recent_image_at_most_half_the_disk() {
        let auto = Policy::default();
        assert_eq!(pull_headroom(&auto, 31, 1000), 62);
        assert_eq!(pull_headroom(&auto, 300, 1000), 500);
        assert_eq!(pull_headroom(&auto, 0, 1000), 0);
        let fixed = Policy::new(crate::PolicySettings {
            pull_headroom: PullHeadroom::Bytes(7),
            ..crate::PolicySettings::default()
        })
        .unwrap();
        assert_eq!(pull_headroom(&fixed, 300, 1000), 7);
    }

    #[test]
    fn a_continued_round_frees_down_to_the_target_whatever_the_usage() {
        let need = space_need(&fs(1000, 180), 85, 80, 0, true);
        assert_eq!(need.trigger, Some(SpaceTrigger::Continue));
        assert_eq!(need.bytes_to_free(), 20);
    }
}
