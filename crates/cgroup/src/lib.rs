//! Resource figures from the kernel, without the engine: each container's CPU time, memory
//! (usage, working set, limit, OOM kills), network and block I/O from its cgroup files, and
//! the node's CPU, memory and load from `/proc`. The engine's `/containers/{id}/stats` gives
//! the same figures at one slow API call per container; these are a few small file reads.
//!
//! [`parse`] holds the pure parsers of the kernel's files; [`Reader`] finds each container's
//! cgroup (cgroup v1 or v2, detected; Docker's cgroupfs and systemd layouts and any
//! `--cgroup-parent`) and reads them.

pub mod parse;
mod read;

pub use parse::{BlockIo, Network, ParseError};
pub use read::{ContainerStats, Hierarchy, NodeStats, ReadError, Reader};
