//! Keeps the binary's own pages resident only where the agent uses them.
//!
//! The agent is one subcommand of a 15 MB binary. The kernel maps a file's pages 64 KiB around
//! each page that faults (fault-around, of the pages already in the page cache) and, on a miss,
//! reads ahead around the fault into the page cache (read-around); right after `docker pull`
//! extracted the image, or a build wrote the binary, the whole file is in the page cache. So
//! the agent ends up with much more of the binary resident than it runs
//! (docs/benchmarks.md, "Agent memory with layers").
//!
//! At start, on the binary's mappings that nothing writes (code, read-only data):
//! `MADV_RANDOM` (no read-around on a miss: the fault reads the page it needs), then
//! `MADV_DONTNEED` (what start-up and argument parsing mapped is unmapped; it faults back from
//! the file when it runs again, since these mappings hold no page of their own), then
//! `POSIX_FADV_DONTNEED` on the file (its cached pages that no process maps are dropped; pages
//! another process maps stay, so nobody loses what it uses). Measured, this takes the
//! read-only data from 1.5 to 0.6 MiB, the agent's peak from 12.6 to 11.6 MiB. For the code it
//! does less (0.2 MiB): since Linux 6.16 a miss in an executable mapping reads ahead whatever
//! `MADV_RANDOM` says (the read-ahead size of the disk, 8 MiB on the machine measured), so the
//! code is soon all cached again and fault-around maps it 64 KiB at a time.

use std::fs::File;
use std::path::Path;

/// Applies the advice to this process's own executable. Failures change nothing but the
/// agent's resident size, so they are logged at debug level and otherwise ignored.
pub(crate) fn trim_own_pages() {
    if let Err(e) = trim(Path::new("/proc/self/exe")) {
        tracing::debug!(error = %e, "left the binary's pages as they were");
    }
}

/// A mapping of `/proc/self/smaps` and what decides whether it may be advised.
#[derive(Debug, PartialEq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    path: String,
    /// Private pages of its own (a copy made on write); unmapping them would lose them.
    anonymous_kib: u64,
}

fn trim(exe: &Path) -> std::io::Result<()> {
    let path = std::fs::read_link(exe)?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let own = path.to_string_lossy();
    for mapping in parse_smaps(&smaps)
        .into_iter()
        .filter(|m| m.path == own && !m.writable && m.anonymous_kib == 0)
    {
        let len = mapping.end - mapping.start;
        let addr = mapping.start as *mut std::ffi::c_void;
        // SAFETY: the range is one of this process's file mappings, not writable and without a
        // page of its own (`anonymous_kib == 0`, and only a write could add one): `MADV_RANDOM`
        // only changes read-ahead, and `MADV_DONTNEED` on such a mapping unmaps pages that the
        // next access maps again from the unchanged file, so no content changes.
        unsafe {
            rustix::mm::madvise(addr, len, rustix::mm::Advice::Random)?;
            rustix::mm::madvise(addr, len, rustix::mm::Advice::LinuxDontNeed)?;
        }
    }
    let file = File::open(exe)?;
    rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)?;
    Ok(())
}

/// Reads `/proc/PID/smaps`: a header line per mapping (`start-end perms offset dev inode path`)
/// followed by `Key: value kB` lines. Mappings without a path are kept with an empty one.
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                continue;
            };
            let perms = fields.next().unwrap_or_default();
            // offset, device, inode, then the path (which may hold spaces).
            let rest = line
                .splitn(6, char::is_whitespace)
                .nth(5)
                .unwrap_or_default()
                .trim_start();
            mappings.push(Mapping {
                start,
                end,
                writable: perms.contains('w'),
                path: rest.to_owned(),
                anonymous_kib: 0,
            });
        } else if first == "Anonymous:" {
            if let (Some(last), Some(kib)) = (mappings.last_mut(), fields.next()) {
                // Unreadable counts as "has pages of its own": such a mapping is left alone.
                last.anonymous_kib = kib.parse().unwrap_or(u64::MAX);
            }
        }
    }
    mappings
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
00400000-00600000 r--p 00000000 fd:01 1234                               /usr/bin/swarm keeper
Size:               2048 kB
Anonymous:             0 kB
00600000-00f00000 r-xp 00200000 fd:01 1234                               /usr/bin/swarm keeper
Size:               9216 kB
Anonymous:             0 kB
00f00000-00f80000 r--p 00b00000 fd:01 1234                               /usr/bin/swarm keeper
Anonymous:           512 kB
00f80000-01000000 rw-p 00b80000 fd:01 1234                               /usr/bin/swarm keeper
Anonymous:            64 kB
01000000-01100000 rw-p 00000000 00:00 0                                  [heap]
Anonymous:           800 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0
Anonymous:             8 kB
VmFlags: rd wr mr mw me gd ac
";

    #[test]
    fn smaps_gives_each_mapping_with_its_path_and_own_pages() {
        let maps = parse_smaps(SMAPS);
        assert_eq!(maps.len(), 6);
        assert_eq!(
            maps[1],
            Mapping {
                start: 0x600000,
                end: 0xf00000,
                writable: false,
                path: "/usr/bin/swarm keeper".into(),
                anonymous_kib: 0,
            }
        );
        assert_eq!(maps[2].anonymous_kib, 512);
        assert!(maps[3].writable);
        assert_eq!(maps[4].path, "[heap]");
        assert_eq!(maps[5].path, "");
    }

    #[test]
    fn an_unreadable_count_of_own_pages_keeps_the_mapping_out() {
        let maps =
            parse_smaps("00400000-00600000 r-xp 00000000 fd:01 1234 /bin/x\nAnonymous: many kB\n");
        assert_eq!(maps[0].anonymous_kib, u64::MAX);
    }

    /// The advice leaves the process working: its code and read-only data fault back in.
    #[test]
    fn trimming_this_test_binary_keeps_it_running() {
        trim(Path::new("/proc/self/exe")).expect("advice applied");
        let words: Vec<String> = "still running".split(' ').map(str::to_owned).collect();
        assert_eq!(words.join("-"), "still-running");
    }
}
