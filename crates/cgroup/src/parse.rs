//! The kernel's text files, parsed: cgroup v1 and v2 controller files, `/proc/<pid>/net/dev`,
//! `/proc/stat`, `/proc/meminfo`, `/proc/loadavg`. Pure functions over the files' contents.
//!
//! Sources: the kernel's Documentation/admin-guide/cgroup-v2.rst and cgroup-v1/memory.rst,
//! blkio-controller.rst, and proc(5).

/// A file's content did not have the shape the kernel gives it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct ParseError {
    /// The file, e.g. `memory.stat`.
    pub what: &'static str,
    pub reason: String,
}

fn err(what: &'static str, reason: impl Into<String>) -> ParseError {
    ParseError {
        what,
        reason: reason.into(),
    }
}

/// One number alone in a file (`memory.usage_in_bytes`, `cpuacct.usage`, `memory.current`).
pub fn single_u64(what: &'static str, text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    t.parse()
        .map_err(|_| err(what, format!("expected a number, found {t:?}")))
}

/// A v2 limit: a number, or `max` for none (`memory.max`).
pub fn limit_v2(what: &'static str, text: &str) -> Result<Option<u64>, ParseError> {
    match text.trim() {
        "max" => Ok(None),
        _ => single_u64(what, text).map(Some),
    }
}

/// v1 writes "no limit" as the largest page-aligned counter (9223372036854771712 on 4 KiB
/// pages); anything from 2^62 bytes on is no limit a machine could reach.
pub fn limit_v1(what: &'static str, text: &str) -> Result<Option<u64>, ParseError> {
    let value = single_u64(what, text)?;
    Ok((value < 1 << 62).then_some(value))
}

/// The value of `key` in a flat keyed file: lines of `key value` (`memory.stat`, `cpu.stat`,
/// `memory.events`, v1 `memory.oom_control`). `None` when the key is absent (an older kernel).
pub fn keyed(what: &'static str, text: &str, key: &str) -> Result<Option<u64>, ParseError> {
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        if fields.next() == Some(key) {
            let value = fields.next().unwrap_or_default();
            return value
                .parse()
                .map(Some)
                .map_err(|_| err(what, format!("{key}: expected a number, found {value:?}")));
        }
    }
    Ok(None)
}

/// Bytes read and written by block devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockIo {
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// v1 `blkio.throttle.io_service_bytes[_recursive]`: lines `MAJ:MIN Read N`, `MAJ:MIN Write
/// N`, … and a last `Total N`; summed over devices.
pub fn blkio_v1(text: &str) -> Result<BlockIo, ParseError> {
    const WHAT: &str = "blkio.throttle.io_service_bytes";
    let mut io = BlockIo::default();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let [_device, op, value] = fields[..] else {
            continue;
        };
        let value: u64 = value
            .parse()
            .map_err(|_| err(WHAT, format!("expected a number in {line:?}")))?;
        match op {
            "Read" => io.read_bytes += value,
            "Write" => io.write_bytes += value,
            _ => {}
        }
    }
    Ok(io)
}

/// v2 `io.stat`: lines `MAJ:MIN rbytes=N wbytes=N rios=N …`; summed over devices.
pub fn io_stat_v2(text: &str) -> Result<BlockIo, ParseError> {
    let mut io = BlockIo::default();
    for field in text.split_ascii_whitespace() {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let slot = match key {
            "rbytes" => &mut io.read_bytes,
            "wbytes" => &mut io.write_bytes,
            _ => continue,
        };
        *slot += value
            .parse::<u64>()
            .map_err(|_| err("io.stat", format!("expected a number in {field:?}")))?;
    }
    Ok(io)
}

/// Bytes received and sent over a network namespace's interfaces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Network {
    pub receive_bytes: u64,
    pub transmit_bytes: u64,
}

/// `/proc/<pid>/net/dev`: two header lines, then `iface: rx_bytes rx_packets … (8 receive
/// fields) tx_bytes …`; summed over every interface but `lo` (traffic within the container).
pub fn net_dev(text: &str) -> Result<Network, ParseError> {
    let mut net = Network::default();
    for line in text.lines().skip(2) {
        let Some((iface, counters)) = line.split_once(':') else {
            return Err(err("net/dev", format!("no interface name in {line:?}")));
        };
        if iface.trim() == "lo" {
            continue;
        }
        let fields: Vec<&str> = counters.split_ascii_whitespace().collect();
        let (Some(rx), Some(tx)) = (fields.first(), fields.get(8)) else {
            return Err(err("net/dev", format!("too few fields in {line:?}")));
        };
        let number = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| err("net/dev", format!("expected a number in {line:?}")))
        };
        net.receive_bytes += number(rx)?;
        net.transmit_bytes += number(tx)?;
    }
    Ok(net)
}

/// The first pid in `cgroup.procs` (one pid a line); `None` for an empty cgroup.
pub fn first_pid(text: &str) -> Result<Option<u32>, ParseError> {
    match text.split_ascii_whitespace().next() {
        None => Ok(None),
        Some(pid) => pid
            .parse()
            .map(Some)
            .map_err(|_| err("cgroup.procs", format!("expected a pid, found {pid:?}"))),
    }
}

/// The node's CPU time from the `cpu` line of `/proc/stat`, in clock ticks (USER_HZ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// user + nice + system + irq + softirq + steal.
    pub busy: u64,
    /// busy + idle + iowait.
    pub total: u64,
    /// The `cpuN` lines: logical CPUs online.
    pub cpus: u32,
}

/// `/proc/stat`.
pub fn proc_stat(text: &str) -> Result<CpuTicks, ParseError> {
    let mut ticks = CpuTicks::default();
    let mut seen = false;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        match fields.next() {
            Some("cpu") => {
                let values = fields
                    .map(|f| f.parse::<u64>())
                    .collect::<Result<Vec<u64>, _>>()
                    .map_err(|_| err("/proc/stat", format!("expected numbers in {line:?}")))?;
                let v = |i: usize| values.get(i).copied().unwrap_or(0);
                if values.len() < 4 {
                    return Err(err("/proc/stat", format!("too few fields in {line:?}")));
                }
                // user nice system idle iowait irq softirq steal (guest is within user).
                ticks.busy = v(0) + v(1) + v(2) + v(5) + v(6) + v(7);
                ticks.total = ticks.busy + v(3) + v(4);
                seen = true;
            }
            Some(name) if name.starts_with("cpu") => ticks.cpus += 1,
            _ => {}
        }
    }
    if !seen {
        return Err(err("/proc/stat", "no cpu line"));
    }
    Ok(ticks)
}

/// The node's memory from `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub total_bytes: u64,
    /// `MemAvailable`: what can be had without swapping.
    pub available_bytes: u64,
}

/// `/proc/meminfo` (`MemTotal:  16000000 kB`).
pub fn meminfo(text: &str) -> Result<Memory, ParseError> {
    let kib = |key: &str| -> Result<u64, ParseError> {
        let line = text
            .lines()
            .find(|l| l.split(':').next() == Some(key))
            .ok_or_else(|| err("/proc/meminfo", format!("no {key}")))?;
        let value = line[key.len() + 1..].trim().trim_end_matches("kB").trim();
        value
            .parse::<u64>()
            .map(|v| v * 1024)
            .map_err(|_| err("/proc/meminfo", format!("expected a number in {line:?}")))
    };
    Ok(Memory {
        total_bytes: kib("MemTotal")?,
        available_bytes: kib("MemAvailable")?,
    })
}

/// `/proc/loadavg`: the 1, 5 and 15 minute load averages.
pub fn loadavg(text: &str) -> Result<[f64; 3], ParseError> {
    let mut fields = text.split_ascii_whitespace();
    let mut next = || -> Result<f64, ParseError> {
        let f = fields.next().unwrap_or_default();
        f.parse()
            .map_err(|_| err("/proc/loadavg", format!("expected a number, found {f:?}")))
    };
    Ok([next()?, next()?, next()?])
}

/// The candidate cgroup folders of container `id`, relative to a hierarchy's root (v1: each
/// controller's mount; v2: the unified mount), in the order to try them:
///
/// - for each configured cgroup parent (dockerd's `--cgroup-parent`, a container's own): a
///   systemd slice `a-b.slice` gives `a.slice/a-b.slice/docker-<id>.scope` (the systemd
///   driver), anything else `<parent>/<id>` (the cgroupfs driver);
/// - the defaults: `docker/<id>` (cgroupfs driver) and `system.slice/docker-<id>.scope`
///   (systemd driver).
pub fn candidate_dirs(id: &str, parents: &[String]) -> Vec<String> {
    let mut dirs: Vec<String> = parents
        .iter()
        .map(|parent| {
            let parent = parent.trim_matches('/');
            match parent.strip_suffix(".slice") {
                Some(slice) if !parent.contains('/') => {
                    let mut path = String::new();
                    let parts: Vec<&str> = slice.split('-').collect();
                    for n in 1..=parts.len() {
                        path.push_str(&parts[..n].join("-"));
                        path.push_str(".slice/");
                    }
                    format!("{path}docker-{id}.scope")
                }
                _ => format!("{parent}/{id}"),
            }
        })
        .collect();
    dirs.push(format!("docker/{id}"));
    dirs.push(format!("system.slice/docker-{id}.scope"));
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_in_both_versions() {
        assert_eq!(limit_v2("memory.max", "max\n"), Ok(None));
        assert_eq!(limit_v2("memory.max", "16777216\n"), Ok(Some(16 << 20)));
        assert_eq!(limit_v1("l", "9223372036854771712\n"), Ok(None));
        assert_eq!(limit_v1("l", "33554432\n"), Ok(Some(32 << 20)));
        let e = single_u64("memory.current", "lots").unwrap_err();
        assert_eq!(
            e.to_string(),
            "memory.current: expected a number, found \"lots\""
        );
    }

    #[test]
    fn keyed_files() {
        // v1 memory.oom_control on Linux 4.13 and later.
        let oom = "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n";
        assert_eq!(keyed("memory.oom_control", oom, "oom_kill"), Ok(Some(1)));
        // Before 4.13 there is no oom_kill line.
        assert_eq!(
            keyed(
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\n",
                "oom_kill"
            ),
            Ok(None)
        );
        let events = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed("memory.events", events, "max"), Ok(Some(12)));
        let stat = "cache 1101824\nrss 53248\ntotal_inactive_file 647168\n";
        assert_eq!(
            keyed("memory.stat", stat, "total_inactive_file"),
            Ok(Some(647168))
        );
        assert!(keyed("memory.stat", "rss x\n", "rss").is_err());
    }

    #[test]
    fn block_io() {
        let v1 = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n\
                  8:0 Total 12288\n8:16 Read 1\n8:16 Write 2\nTotal 12291\n";
        assert_eq!(
            blkio_v1(v1),
            Ok(BlockIo {
                read_bytes: 4097,
                write_bytes: 8194
            })
        );
        assert_eq!(blkio_v1("Total 0\n"), Ok(BlockIo::default()));
        let v2 = "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
                  253:0 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n";
        assert_eq!(
            io_stat_v2(v2),
            Ok(BlockIo {
                read_bytes: 4097,
                write_bytes: 8194
            })
        );
    }

    #[test]
    fn network_leaves_out_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
            face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
            lo:     500       5    0    0    0     0          0         0      500       5    0    0    0     0       0          0\n  \
            eth0:     736       8    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  \
            eth1:      64       1    0    0    0     0          0         0       50       1    0    0    0     0       0          0\n";
        assert_eq!(
            net_dev(text),
            Ok(Network {
                receive_bytes: 800,
                transmit_bytes: 150
            })
        );
    }

    #[test]
    fn procs() {
        assert_eq!(first_pid("19604\n19700\n"), Ok(Some(19604)));
        assert_eq!(first_pid(""), Ok(None));
    }

    #[test]
    fn node_files() {
        let stat = "cpu  100 10 50 1000 20 5 5 1 30 0\ncpu0 50 5 25 500 10 2 3 1 15 0\n\
                    cpu1 50 5 25 500 10 3 2 0 15 0\nintr 1 2 3\n";
        assert_eq!(
            proc_stat(stat),
            Ok(CpuTicks {
                busy: 171,
                total: 1191,
                cpus: 2
            })
        );
        let mem = "MemTotal:       24684000 kB\nMemFree:          657000 kB\n\
                   MemAvailable:   23423000 kB\n";
        assert_eq!(
            meminfo(mem),
            Ok(Memory {
                total_bytes: 24684000 * 1024,
                available_bytes: 23423000 * 1024
            })
        );
        assert_eq!(
            loadavg("0.52 0.58 0.59 2/345 12345\n"),
            Ok([0.52, 0.58, 0.59])
        );
        assert!(loadavg("").is_err());
    }

    #[test]
    fn candidate_dirs_cover_both_drivers_and_parents() {
        let id = "abc";
        assert_eq!(
            candidate_dirs(id, &[]),
            ["docker/abc", "system.slice/docker-abc.scope"]
        );
        assert_eq!(
            candidate_dirs(id, &["/swarmkeeper-lab-x".into(), "my-app.slice".into()])[..2],
            [
                "swarmkeeper-lab-x/abc".to_string(),
                "my.slice/my-app.slice/docker-abc.scope".to_string()
            ]
        );
    }
}
