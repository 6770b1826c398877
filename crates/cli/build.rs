//! Lays the agent's functions out together in release builds.
//!
//! The agent runs under 3 MiB of the binary's 12 MB of code, spread over most of it. Where the
//! agent cannot register its code with a userfaultfd (a container under Docker's default
//! seccomp profile, `crates/agent/src/advice.rs`), the kernel maps its code 64 KiB around each
//! page that faults, so the agent's resident code is most of those 12 MB. `agent-code-order.txt`
//! lists the functions an agent ran (by mangled name, written by `bench/agent-code-order.sh`);
//! lld's `--symbol-ordering-file` puts them first and together, so the 64 KiB windows around
//! them hold the agent's code rather than the server's (docs/benchmarks.md, "Agent code laid
//! out together").
//!
//! A function missing from the list (new, renamed) is only placed elsewhere: the binary is the
//! same but for where its functions lie. The option is lld's, the linker rustc uses by default
//! on x86_64 Linux since 1.90; with an older rustc, another target or a linker chosen by hand
//! the list is not used.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let order = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
        .join("agent-code-order.txt");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let target = std::env::var("TARGET").unwrap_or_default();
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if release
        && target == "x86_64-unknown-linux-gnu"
        && !flags.contains("linker")
        && rustc_links_with_lld()
    {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        // Functions of the list that this build does not have are expected (see above).
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether this rustc links x86_64 Linux binaries with its own lld by default (1.90 and later).
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut version = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (version.next().unwrap_or(0), version.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
