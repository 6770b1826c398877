//! The kubelet's disk arithmetic, reproduced exactly so plans compare with it.

/// `100 - floor(available * 100 / capacity)`; an empty or unknown filesystem counts as 0% used.
pub fn usage_percent(capacity_bytes: u64, available_bytes: u64) -> u8 {
    if capacity_bytes == 0 {
        return 0;
    }
    let available = available_bytes.min(capacity_bytes) as u128;
    let free_percent = available * 100 / capacity_bytes as u128;
    (100 - free_percent) as u8
}

/// `floor(capacity * (100 - low) / 100) - available`, never below zero: the bytes to delete to
/// bring usage down to the low threshold.
pub fn bytes_to_free(capacity_bytes: u64, available_bytes: u64, low_threshold_percent: u8) -> u64 {
    let low = u128::from(low_threshold_percent.min(100));
    let target_available = (capacity_bytes as u128 * (100 - low) / 100) as u64;
    target_available.saturating_sub(available_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_kubelet_formula() {
        assert_eq!(usage_percent(1000, 50), 95);
        assert_eq!(usage_percent(1000, 151), 85);
        assert_eq!(usage_percent(1000, 159), 85);
        assert_eq!(usage_percent(1000, 1000), 0);
        assert_eq!(usage_percent(1000, 0), 100);
        assert_eq!(bytes_to_free(1000, 50, 80), 150);
        assert_eq!(bytes_to_free(1000, 300, 80), 0);
    }

    #[test]
    fn edge_values_do_not_overflow() {
        assert_eq!(usage_percent(0, 10), 0);
        assert_eq!(usage_percent(u64::MAX, 0), 100);
        assert_eq!(usage_percent(10, u64::MAX), 0);
        assert_eq!(bytes_to_free(u64::MAX, 0, 0), u64::MAX);
    }
}
