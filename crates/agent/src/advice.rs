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
//!
//! So, before that advice, these mappings are registered with a `userfaultfd` in asynchronous
//! write-protect mode (`UFFD_FEATURE_WP_ASYNC`, Linux 6.7): the kernel does no fault-around in
//! a mapping registered with a userfaultfd (`should_fault_around`, mm/memory.c) and maps one
//! page per fault there, so what is resident of the code is the pages the agent ran, whatever
//! the page cache holds. Nothing ever writes these mappings, so the write protection never
//! acts (and in the asynchronous mode a write would be resolved by the kernel, no handler
//! needed); only faults in user mode are asked for (`UFFD_USER_MODE_ONLY`), which needs no
//! privilege. The descriptor stays open for the life of the process (closing it unregisters).
//! Where the kernel or a seccomp profile refuses (Docker's default profile refuses the
//! `userfaultfd` call), the rest of the advice still applies.

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
    let mappings: Vec<Mapping> = parse_smaps(&smaps)
        .into_iter()
        .filter(|m| m.path == own && !m.writable && m.anonymous_kib == 0)
        .collect();
    if let Err(e) = map_one_page_per_fault(&mappings) {
        tracing::debug!(error = %e, "the binary's pages stay mapped 64 KiB around each fault");
    }
    for mapping in mappings {
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

/// `struct uffdio_api` of <linux/userfaultfd.h>.
#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

/// `struct uffdio_register` of <linux/userfaultfd.h>.
#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

/// Registers `mappings` with a new userfaultfd in asynchronous write-protect mode, which turns
/// fault-around off in them (module docs), and keeps the descriptor open for good.
fn map_one_page_per_fault(mappings: &[Mapping]) -> std::io::Result<()> {
    use rustix::ioctl::{ioctl, opcode, Updater};
    use std::os::fd::IntoRawFd;
    // <linux/userfaultfd.h>
    const UFFD_USER_MODE_ONLY: u32 = 1;
    const UFFD_API: u64 = 0xaa;
    const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
    const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
    const UFFDIO_API: rustix::ioctl::Opcode = opcode::read_write::<UffdioApi>(0xaa, 0x3f);
    const UFFDIO_REGISTER: rustix::ioctl::Opcode = opcode::read_write::<UffdioRegister>(0xaa, 0x00);
    if mappings.is_empty() {
        return Ok(());
    }
    let flags = rustix::mm::UserfaultfdFlags::CLOEXEC
        | rustix::mm::UserfaultfdFlags::from_bits_retain(UFFD_USER_MODE_ONLY);
    // SAFETY: the descriptor is only used below to register write protection of mappings that
    // nothing writes; it hands no memory to anyone.
    let uffd = unsafe { rustix::mm::userfaultfd(flags) }?;
    let mut api = UffdioApi {
        api: UFFD_API,
        features: UFFD_FEATURE_WP_ASYNC,
        ioctls: 0,
    };
    // SAFETY: UFFDIO_API reads and writes a `struct uffdio_api`, which `UffdioApi` lays out.
    unsafe { ioctl(&uffd, Updater::<UFFDIO_API, UffdioApi>::new(&mut api)) }?;
    for mapping in mappings {
        let mut register = UffdioRegister {
            start: mapping.start as u64,
            len: (mapping.end - mapping.start) as u64,
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER reads and writes a `struct uffdio_register` (its `range` is
        // `start` and `len`), which `UffdioRegister` lays out. Write protection is never
        // armed on these pages (no UFFDIO_WRITEPROTECT), and in the asynchronous mode the
        // kernel would resolve a write itself, so no access can wait for a handler.
        unsafe {
            ioctl(
                &uffd,
                Updater::<UFFDIO_REGISTER, UffdioRegister>::new(&mut register),
            )
        }?;
    }
    // Closing it would unregister the mappings; it is the process's for good.
    let _ = uffd.into_raw_fd();
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

    /// Resident KiB of the mapping that starts at `start`, from `/proc/self/smaps`.
    fn resident_kib(start: usize) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let header = format!("{start:x}-");
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&header));
        lines
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("the mapping's Rss")
    }

    /// Maps 1 MiB of a file whose pages are all in the page cache (just written), reads one
    /// byte every 256 KiB, and returns the mapping's resident KiB.
    fn touch_four_pages(register: bool) -> std::io::Result<u64> {
        use rustix::mm::{mmap, munmap, MapFlags, ProtFlags};
        const LEN: usize = 1 << 20;
        let path = std::env::temp_dir().join(format!("advice-{}-{register}", std::process::id()));
        std::fs::write(&path, vec![7u8; LEN])?;
        let file = File::open(&path)?;
        std::fs::remove_file(&path)?;
        // SAFETY: a new private read-only mapping of a file nobody else knows of; it is read
        // only through `bytes` below and unmapped before returning.
        let addr = unsafe {
            mmap(
                std::ptr::null_mut(),
                LEN,
                ProtFlags::READ,
                MapFlags::PRIVATE,
                &file,
                0,
            )
        }?;
        let mapping = Mapping {
            start: addr as usize,
            end: addr as usize + LEN,
            writable: false,
            path: String::new(),
            anonymous_kib: 0,
        };
        let registered = if register {
            map_one_page_per_fault(std::slice::from_ref(&mapping))
        } else {
            Ok(())
        };
        // SAFETY: `addr` is the start of the LEN-byte readable mapping made above.
        let bytes = unsafe { std::slice::from_raw_parts(addr.cast::<u8>(), LEN) };
        let sum: u32 = (0..LEN)
            .step_by(256 << 10)
            .map(|i| u32::from(std::hint::black_box(bytes[i])))
            .sum();
        assert_eq!(sum, 4 * 7);
        let kib = resident_kib(mapping.start);
        // SAFETY: the mapping made above, no longer used.
        unsafe { munmap(addr, LEN) }?;
        registered.map(|()| kib)
    }

    /// What the userfaultfd is for: without it a read maps 64 KiB of cached pages around the
    /// fault (fault-around, `/sys/kernel/mm/.../fault_around_bytes` is 64 KiB by default);
    /// registered, each read maps its own page only. A kernel older than 6.7 (no
    /// `UFFD_FEATURE_WP_ASYNC`) or a seccomp profile refuses the registration, which the agent
    /// then goes without: that refusal must be an error, never a half-registered mapping.
    #[test]
    fn a_registered_mapping_maps_one_page_per_fault() {
        let page_kib = rustix::param::page_size() as u64 / 1024;
        let around = touch_four_pages(false).expect("plain mapping");
        assert!(
            around > 4 * page_kib,
            "fault-around mapped only {around} KiB"
        );
        match touch_four_pages(true) {
            Ok(kib) => assert_eq!(kib, 4 * page_kib, "one page per fault"),
            Err(e) => {
                let refused = [
                    rustix::io::Errno::INVAL,
                    rustix::io::Errno::PERM,
                    rustix::io::Errno::NOSYS,
                ]
                .iter()
                .any(|errno| e.raw_os_error() == Some(errno.raw_os_error()));
                assert!(refused, "unexpected failure: {e}");
                eprintln!("this kernel refuses the registration ({e}); the agent goes without it");
            }
        }
    }

    /// The advice leaves the process working: its code and read-only data fault back in.
    #[test]
    fn trimming_this_test_binary_keeps_it_running() {
        trim(Path::new("/proc/self/exe")).expect("advice applied");
        let words: Vec<String> = "still running".split(' ').map(str::to_owned).collect();
        assert_eq!(words.join("-"), "still-running");
    }
}
