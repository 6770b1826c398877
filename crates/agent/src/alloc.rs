//! The allocator's settings for a long-running agent whose budget is 10 MiB resident.
//!
//! glibc's malloc gives every thread that allocates an arena of its own (the blocking threads
//! that read the image store and the logs' sizes here), and keeps freed memory in them; and
//! once a large block was freed it raises its mmap threshold up to 32 MiB, so that the next
//! large bodies (a `/system/df` answer of a node with a thousand images, a snapshot) come
//! from the heap and stay resident after they are freed. The agent allocates little and
//! rarely: one arena, and large blocks always mapped (so given back to the kernel when
//! freed), cost nothing measurable in time and keep its resident memory to what it holds.

/// Applies the settings; call it before the agent allocates much. Settings the C library does
/// not know are left as they are.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn limit() {
    // <malloc.h>
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    const M_ARENA_MAX: i32 = -8;
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    for (param, value) in [
        (M_ARENA_MAX, 1),
        // Setting them fixes them: glibc no longer raises them after a large block is freed.
        (M_MMAP_THRESHOLD, 64 * 1024),
        (M_TRIM_THRESHOLD, 128 * 1024),
    ] {
        // SAFETY: mallopt only changes malloc's tunables, takes two integers and is safe to
        // call at any time from any thread (it takes the arena locks itself).
        if unsafe { mallopt(param, value) } == 0 {
            tracing::debug!(param, value, "the C library refused a malloc setting");
        }
    }
}

/// Other C libraries (musl) have no arenas to limit.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn limit() {}
