//! Disk accounting: where a node's image filesystem goes, from the engine's `/system/df` figures.

use serde::{Deserialize, Serialize};

use crate::{usage_percent, Filesystem};

/// What the engine and the filesystem report, reduced to the figures the report needs.
#[derive(Debug, Clone, Default)]
pub struct DiskUsageInput {
    /// Bytes of all image layers on disk, each layer counted once (`LayersSize`).
    pub layers_bytes: u64,
    /// `(size, shared)` of each image.
    pub images: Vec<(u64, u64)>,
    /// Writable-layer size of each container.
    pub container_rw_bytes: Vec<u64>,
    /// Size of each volume; `None` where the engine could not tell (a remote volume driver).
    pub volume_bytes: Vec<Option<u64>>,
    pub build_cache_bytes: Vec<u64>,
    /// Total size of container log files; `None` when the data root is not readable here.
    pub log_bytes: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskReport {
    pub filesystem: Filesystem,
    pub usage_percent: u8,
    pub used_bytes: u64,
    pub image_count: usize,
    /// Bytes that deleting images one by one would give back.
    pub images_unique_bytes: u64,
    /// Bytes in layers shared between images: freed only when every image using them goes.
    pub images_shared_bytes: u64,
    pub container_count: usize,
    pub containers_bytes: u64,
    pub logs_bytes: Option<u64>,
    pub volume_count: usize,
    pub volumes_bytes: u64,
    pub build_cache_bytes: u64,
    /// Used bytes that none of the above explains (other files on the same filesystem).
    pub other_bytes: u64,
}

impl DiskReport {
    pub fn new(filesystem: Filesystem, input: &DiskUsageInput) -> DiskReport {
        let images_unique_bytes: u64 = input
            .images
            .iter()
            .map(|(size, shared)| size.saturating_sub(*shared))
            .sum();
        let images_shared_bytes = input.layers_bytes.saturating_sub(images_unique_bytes);
        let containers_bytes = input.container_rw_bytes.iter().sum();
        let volumes_bytes = input.volume_bytes.iter().flatten().sum();
        let build_cache_bytes = input.build_cache_bytes.iter().sum();
        let used_bytes = filesystem
            .capacity_bytes
            .saturating_sub(filesystem.available_bytes);
        let explained = [
            images_unique_bytes,
            images_shared_bytes,
            containers_bytes,
            input.log_bytes.unwrap_or(0),
            volumes_bytes,
            build_cache_bytes,
        ]
        .iter()
        .fold(0u64, |a, b| a.saturating_add(*b));
        DiskReport {
            usage_percent: usage_percent(filesystem.capacity_bytes, filesystem.available_bytes),
            used_bytes,
            image_count: input.images.len(),
            images_unique_bytes,
            images_shared_bytes,
            container_count: input.container_rw_bytes.len(),
            containers_bytes,
            logs_bytes: input.log_bytes,
            volume_count: input.volume_bytes.len(),
            volumes_bytes,
            build_cache_bytes,
            other_bytes: used_bytes.saturating_sub(explained),
            filesystem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_unique_and_shared_image_bytes() {
        let fs = Filesystem {
            path: "/var/lib/docker".into(),
            capacity_bytes: 10_000,
            available_bytes: 4_000,
        };
        // Two images of 1000 bytes sharing a 600-byte base: 1400 bytes of layers on disk.
        let input = DiskUsageInput {
            layers_bytes: 1_400,
            images: vec![(1_000, 600), (1_000, 600)],
            container_rw_bytes: vec![10, 20],
            volume_bytes: vec![Some(100), None],
            build_cache_bytes: vec![50],
            log_bytes: Some(5),
        };
        let r = DiskReport::new(fs, &input);
        assert_eq!((r.images_unique_bytes, r.images_shared_bytes), (800, 600));
        assert_eq!(
            (r.containers_bytes, r.volumes_bytes, r.volume_count),
            (30, 100, 2)
        );
        assert_eq!(r.used_bytes, 6_000);
        assert_eq!(r.other_bytes, 6_000 - 800 - 600 - 30 - 5 - 100 - 50);
        assert_eq!(r.usage_percent, 60);
    }
}
