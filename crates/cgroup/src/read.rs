//! Reading the files: the thin part. Finds each container's cgroup once, then reads a few
//! small files per container into one reused buffer.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::parse::{self, BlockIo, Network, ParseError};

/// Which cgroup layout the node has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hierarchy {
    /// One mount per controller (`<root>/memory`, `<root>/cpuacct`, `<root>/blkio`), as with
    /// Debian's Docker 20.10 here; a hybrid host whose controllers are on v1 (a
    /// `<root>/unified` without them) counts as v1.
    V1,
    /// The unified hierarchy: `<root>/cgroup.controllers` exists.
    V2,
}

/// One container's counters at one moment. Counters are cumulative since the container
/// started; rates are the caller's differences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContainerStats {
    /// CPU time of all its processes: v1 `cpuacct.usage`, v2 `cpu.stat` `usage_usec`.
    pub cpu_nanoseconds: u64,
    /// v1 `memory.usage_in_bytes`, v2 `memory.current`: page cache included.
    pub memory_usage_bytes: u64,
    /// Usage less inactive file cache (v1 `total_inactive_file`, v2 `inactive_file` of
    /// `memory.stat`), at least 0: what the kubelet and `docker stats` count against the limit,
    /// and what the kernel cannot simply drop before it OOM-kills.
    pub memory_working_set_bytes: u64,
    /// v1 `memory.limit_in_bytes`, v2 `memory.max`; `None` without a limit.
    pub memory_limit_bytes: Option<u64>,
    /// Processes the kernel's OOM killer killed in the container: the `oom_kill` line of v1
    /// `memory.oom_control` (Linux 4.13 and later) or of v2 `memory.events`. `None` on a kernel
    /// that does not count them.
    pub oom_kills: Option<u64>,
    /// Times usage hit the limit and the kernel had to reclaim (v1 `memory.failcnt`, v2
    /// `memory.events` `max`): pressure, not kills.
    pub memory_limit_hits: u64,
    /// Summed over the interfaces of the container's network namespace but `lo`, from
    /// `/proc/<pid>/net/dev` of a process in its cgroup. `None` when it has no process, or
    /// shares the node's network namespace (`network_mode: host`: its traffic is the node's).
    pub network: Option<Network>,
    /// v1 `blkio.throttle.io_service_bytes_recursive` (every I/O scheduler counts there), v2
    /// `io.stat`; `None` when the controller is not enabled for the container.
    pub block_io: Option<BlockIo>,
}

impl ContainerStats {
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_nanoseconds as f64 / 1e9
    }
}

/// The node's own figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeStats {
    /// CPU time spent busy by all CPUs since boot (user, nice, system, irq, softirq, steal).
    pub cpu_busy_seconds: f64,
    /// Busy plus idle and iowait: busy / total over an interval is the node's utilisation.
    pub cpu_total_seconds: f64,
    pub cpus: u32,
    pub memory_total_bytes: u64,
    /// `MemAvailable`.
    pub memory_available_bytes: u64,
    /// 1, 5 and 15 minute load averages.
    pub load: [f64; 3],
}

/// What went wrong reading a container's or the node's figures.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No cgroup folder for the container: it is not running (or not on this node).
    #[error("no cgroup for container {id} under {root} (tried {tried})")]
    NotFound {
        id: String,
        root: PathBuf,
        tried: String,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {source}", path.display())]
    Parse { path: PathBuf, source: ParseError },
    /// Neither layout was found under the cgroup root.
    #[error("{}: neither cgroup v2 (cgroup.controllers) nor v1 (memory/) is mounted there", root.display())]
    NoHierarchy { root: PathBuf },
}

/// How deep below the hierarchy's root a container's folder is searched for: Docker's
/// layouts are 1 to 3 deep (`docker/<id>`, `a.slice/a-b.slice/docker-<id>.scope`), a
/// `--cgroup-parent` adds its own depth.
const SEARCH_DEPTH: usize = 8;

/// The folder below `root` (relative, without a leading `/`) whose name holds the container
/// id `id` (`<id>`, `docker-<id>.scope`), searched breadth-first at most `depth` deep.
/// Symbolic links are not followed.
fn find_dir(root: &Path, id: &str, depth: usize) -> Option<String> {
    let mut level = vec![String::new()];
    for _ in 0..depth {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let path = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                if name.contains(id) {
                    return Some(path);
                }
                next.push(path);
            }
        }
        if next.is_empty() {
            break;
        }
        level = next;
    }
    None
}

/// Reads containers' and the node's figures. Keeps where each container's cgroup is; call
/// [`Reader::retain`] with the containers still running so that it forgets the others.
pub struct Reader {
    cgroup_root: PathBuf,
    proc_root: PathBuf,
    hierarchy: Hierarchy,
    parents: Vec<String>,
    /// Where containers were found by searching the hierarchy (the text before and after the
    /// id in the folder's path), tried first for the next container: the engine's
    /// `--cgroup-parent`, learnt from the kernel's files rather than configured.
    learnt: Vec<(String, String)>,
    /// Container id → its folder relative to the hierarchy root (see `parse::candidate_dirs`).
    dirs: HashMap<String, String>,
    host_netns: Option<PathBuf>,
    buf: String,
    clock_ticks: f64,
}

impl Reader {
    /// A reader of the cgroup hierarchy mounted at `cgroup_root` (`/sys/fs/cgroup`, or the
    /// host's, bind-mounted into a container) and the proc filesystem at `proc_root` (`/proc`;
    /// in a container, the host's, so that containers' processes are visible). Detects v1 or
    /// v2.
    pub fn new(
        cgroup_root: impl Into<PathBuf>,
        proc_root: impl Into<PathBuf>,
    ) -> Result<Reader, ReadError> {
        let cgroup_root = cgroup_root.into();
        let hierarchy = if cgroup_root.join("cgroup.controllers").exists() {
            Hierarchy::V2
        } else if cgroup_root.join("memory").is_dir() {
            Hierarchy::V1
        } else {
            return Err(ReadError::NoHierarchy { root: cgroup_root });
        };
        Ok(Reader {
            cgroup_root,
            proc_root: proc_root.into(),
            hierarchy,
            parents: Vec::new(),
            learnt: Vec::new(),
            dirs: HashMap::new(),
            host_netns: None,
            buf: String::with_capacity(4096),
            clock_ticks: rustix::param::clock_ticks_per_second() as f64,
        })
    }

    /// Looks for containers under these cgroup parents first (dockerd's `--cgroup-parent`,
    /// e.g. `/swarmkeeper-lab-NAME` or `my.slice`), then under Docker's defaults.
    pub fn with_cgroup_parents(mut self, parents: Vec<String>) -> Reader {
        self.parents = parents;
        self
    }

    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
    }

    /// Forgets the cgroup folders of containers not in `ids`.
    pub fn retain(&mut self, ids: &[&str]) {
        self.dirs.retain(|id, _| ids.contains(&id.as_str()));
    }

    /// The figures of the running container `id` (the full 64-hex id).
    pub fn container(&mut self, id: &str) -> Result<ContainerStats, ReadError> {
        let dir = match self.dirs.get(id) {
            Some(dir) => dir.clone(),
            None => {
                let dir = self.locate(id)?;
                self.dirs.insert(id.to_string(), dir.clone());
                dir
            }
        };
        let result = match self.hierarchy {
            Hierarchy::V1 => self.container_v1(&dir),
            Hierarchy::V2 => self.container_v2(&dir),
        };
        // A container that went away since it was found: forget its folder.
        if let Err(ReadError::Io { source, .. }) = &result {
            if source.kind() == io::ErrorKind::NotFound && !self.probe_root().join(&dir).is_dir() {
                self.dirs.remove(id);
                return Err(self.not_found(id));
            }
        }
        result
    }

    /// The node's CPU, memory and load.
    pub fn node(&mut self) -> Result<NodeStats, ReadError> {
        let stat = self.parse(self.proc_root.join("stat"), parse::proc_stat)?;
        let memory = self.parse(self.proc_root.join("meminfo"), parse::meminfo)?;
        let load = self.parse(self.proc_root.join("loadavg"), parse::loadavg)?;
        Ok(NodeStats {
            cpu_busy_seconds: stat.busy as f64 / self.clock_ticks,
            cpu_total_seconds: stat.total as f64 / self.clock_ticks,
            cpus: stat.cpus,
            memory_total_bytes: memory.total_bytes,
            memory_available_bytes: memory.available_bytes,
            load,
        })
    }

    /// Where container folders are looked for: v1's memory controller, or the v2 root.
    fn probe_root(&self) -> PathBuf {
        match self.hierarchy {
            Hierarchy::V1 => self.cgroup_root.join("memory"),
            Hierarchy::V2 => self.cgroup_root.clone(),
        }
    }

    fn locate(&mut self, id: &str) -> Result<String, ReadError> {
        let probe = self.probe_root();
        let known = self
            .learnt
            .iter()
            .map(|(before, after)| format!("{before}{id}{after}"))
            .chain(parse::candidate_dirs(id, &self.parents))
            .find(|dir| probe.join(dir).is_dir());
        if let Some(dir) = known {
            return Ok(dir);
        }
        // An engine with a `--cgroup-parent` (or a layout not listed): the folder is wherever
        // the kernel has it, so search the hierarchy for it, and learn where that is.
        let dir = find_dir(&probe, id, SEARCH_DEPTH).ok_or_else(|| self.not_found(id))?;
        if let Some(at) = dir.rfind(id) {
            let learnt = (dir[..at].to_string(), dir[at + id.len()..].to_string());
            if !self.learnt.contains(&learnt) {
                self.learnt.push(learnt);
            }
        }
        Ok(dir)
    }

    fn not_found(&self, id: &str) -> ReadError {
        ReadError::NotFound {
            id: id.to_string(),
            root: self.cgroup_root.clone(),
            tried: parse::candidate_dirs(id, &self.parents).join(", ")
                + ", a search of the hierarchy",
        }
    }

    fn container_v1(&mut self, dir: &str) -> Result<ContainerStats, ReadError> {
        let memory = self.cgroup_root.join("memory").join(dir);
        let usage = self.parse(memory.join("memory.usage_in_bytes"), |t| {
            parse::single_u64("memory.usage_in_bytes", t)
        })?;
        let inactive_file = self.parse(memory.join("memory.stat"), |t| {
            parse::keyed("memory.stat", t, "total_inactive_file")
        })?;
        let limit = self.parse(memory.join("memory.limit_in_bytes"), |t| {
            parse::limit_v1("memory.limit_in_bytes", t)
        })?;
        let oom_kills = self.parse(memory.join("memory.oom_control"), |t| {
            parse::keyed("memory.oom_control", t, "oom_kill")
        })?;
        let failcnt = self.parse(memory.join("memory.failcnt"), |t| {
            parse::single_u64("memory.failcnt", t)
        })?;
        let cpu = self.parse(
            self.cgroup_root
                .join("cpuacct")
                .join(dir)
                .join("cpuacct.usage"),
            |t| parse::single_u64("cpuacct.usage", t),
        )?;
        let blkio = self.cgroup_root.join("blkio").join(dir);
        let block_io = match self.parse_if_exists(
            blkio.join("blkio.throttle.io_service_bytes_recursive"),
            parse::blkio_v1,
        )? {
            Some(io) => Some(io),
            None => self.parse_if_exists(
                blkio.join("blkio.throttle.io_service_bytes"),
                parse::blkio_v1,
            )?,
        };
        let network = self.network(&memory.join("cgroup.procs"))?;
        Ok(ContainerStats {
            cpu_nanoseconds: cpu,
            memory_usage_bytes: usage,
            memory_working_set_bytes: usage.saturating_sub(inactive_file.unwrap_or(0)),
            memory_limit_bytes: limit,
            oom_kills,
            memory_limit_hits: failcnt,
            network,
            block_io,
        })
    }

    fn container_v2(&mut self, dir: &str) -> Result<ContainerStats, ReadError> {
        let cg = self.cgroup_root.join(dir);
        let usage = self.parse(cg.join("memory.current"), |t| {
            parse::single_u64("memory.current", t)
        })?;
        let inactive_file = self.parse(cg.join("memory.stat"), |t| {
            parse::keyed("memory.stat", t, "inactive_file")
        })?;
        let limit = self.parse(cg.join("memory.max"), |t| parse::limit_v2("memory.max", t))?;
        let (oom_kills, limit_hits) = self.parse(cg.join("memory.events"), |t| {
            Ok((
                parse::keyed("memory.events", t, "oom_kill")?,
                parse::keyed("memory.events", t, "max")?,
            ))
        })?;
        let usage_usec = self.parse(cg.join("cpu.stat"), |t| {
            parse::keyed("cpu.stat", t, "usage_usec")
        })?;
        let block_io = self.parse_if_exists(cg.join("io.stat"), parse::io_stat_v2)?;
        let network = self.network(&cg.join("cgroup.procs"))?;
        Ok(ContainerStats {
            cpu_nanoseconds: usage_usec.unwrap_or(0).saturating_mul(1000),
            memory_usage_bytes: usage,
            memory_working_set_bytes: usage.saturating_sub(inactive_file.unwrap_or(0)),
            memory_limit_bytes: limit,
            oom_kills,
            memory_limit_hits: limit_hits.unwrap_or(0),
            network,
            block_io,
        })
    }

    /// The network counters of the namespace of the first process in `procs`.
    fn network(&mut self, procs: &Path) -> Result<Option<Network>, ReadError> {
        let Some(pid) = self.parse(procs.to_path_buf(), parse::first_pid)? else {
            return Ok(None);
        };
        let process = self.proc_root.join(pid.to_string());
        let Ok(netns) = std::fs::read_link(process.join("ns/net")) else {
            // The process ended since cgroup.procs was read, or /proc is not the host's.
            return Ok(None);
        };
        if self.host_netns.is_none() {
            self.host_netns = std::fs::read_link(self.proc_root.join("1/ns/net")).ok();
        }
        if self.host_netns.as_ref() == Some(&netns) {
            return Ok(None);
        }
        self.parse_if_exists(process.join("net/dev"), parse::net_dev)
    }

    fn parse<T>(
        &mut self,
        path: PathBuf,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<T, ReadError> {
        match self.parse_if_exists(path.clone(), parse)? {
            Some(value) => Ok(value),
            None => Err(ReadError::Io {
                path,
                source: io::ErrorKind::NotFound.into(),
            }),
        }
    }

    /// `None` when the file does not exist.
    fn parse_if_exists<T>(
        &mut self,
        path: PathBuf,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Result<Option<T>, ReadError> {
        self.buf.clear();
        let read = std::fs::File::open(&path).and_then(|mut f| f.read_to_string(&mut self.buf));
        match read {
            Ok(_) => parse(&self.buf)
                .map(Some)
                .map_err(|source| ReadError::Parse { path, source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ReadError::Io { path, source }),
        }
    }
}
