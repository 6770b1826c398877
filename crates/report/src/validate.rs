//! What the server accepts from an agent. A report comes from any node that holds the shared
//! secret, so it is checked before anything is stored: times not far ahead of the server's
//! clock (a GC run dated next century would stay the node's "last GC" for good and escape
//! every purge), byte counts and counts within bounds that sums cannot overflow, percentages
//! that are percentages, and strings of a printable length. The first problem found is
//! reported with the field's path, e.g. `gc_runs[3].started_at`.

use jiff::{SignedDuration, Timestamp};

use crate::usage::{UsageSample, MAX_USAGE_SAMPLES, MAX_USAGE_TASKS};
use crate::wire::{NodeReport, ReportedImage, ReportedRun, ReportedVolume};

/// How far ahead of the server's clock a reported time may be: node clocks drift, and a
/// broken time zone setting is off by hours, but a day ahead is not a clock any more.
pub const MAX_CLOCK_AHEAD: SignedDuration = SignedDuration::from_hours(24);

/// The largest byte count accepted in any field: 2^53 (8 PiB), which JavaScript also reads
/// exactly; a thousand of them add up within SQLite's signed 64-bit integers. (The server's
/// sums saturate anyway: a node's GC runs are many more than a thousand.)
pub const MAX_REPORTED_BYTES: u64 = 1 << 53;

/// The largest count of things (images, containers, volumes) accepted.
pub const MAX_REPORTED_COUNT: u64 = 10_000_000;

/// The most volumes one report may list.
pub const MAX_REPORTED_VOLUMES: usize = 10_000;

/// The longest agent interval accepted: the server calls a node silent after three, so a
/// larger one would hide a dead agent for days.
pub const MAX_INTERVAL_SECONDS: u64 = 24 * 3600;

/// A field of a report that is out of bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportProblem {
    /// The field's path, e.g. `disk.filesystem.capacity_bytes` or `images[2].id`.
    pub field: String,
    pub why: String,
}

impl std::fmt::Display for ReportProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

impl std::error::Error for ReportProblem {}

/// Checks a report received at `now`; see the module documentation.
pub fn validate_report(report: &NodeReport, now: Timestamp) -> Result<(), ReportProblem> {
    let check = Check { now };
    check.text("node_id", &report.node_id, 128)?;
    check.text("hostname", &report.hostname, 255)?;
    check.text("engine_version", &report.engine_version, 128)?;
    check.text("agent_version", &report.agent_version, 128)?;
    check.time("reported_at", report.reported_at)?;
    if let Some(at) = report.disk_breakdown_at {
        check.time("disk_breakdown_at", at)?;
    }
    if !(1..=MAX_INTERVAL_SECONDS).contains(&report.interval_seconds) {
        return Err(problem(
            "interval_seconds",
            format!("must lie in 1..={MAX_INTERVAL_SECONDS}"),
        ));
    }
    check.percent("high_threshold_percent", report.high_threshold_percent)?;
    check.percent("low_threshold_percent", report.low_threshold_percent)?;

    let disk = &report.disk;
    let fs = &disk.filesystem;
    check.bytes("disk.filesystem.capacity_bytes", fs.capacity_bytes)?;
    check.bytes("disk.filesystem.available_bytes", fs.available_bytes)?;
    if fs.available_bytes > fs.capacity_bytes {
        return Err(problem(
            "disk.filesystem.available_bytes",
            "is more than capacity_bytes".into(),
        ));
    }
    check.text("disk.filesystem.path", &fs.path.to_string_lossy(), 4096)?;
    check.percent("disk.usage_percent", disk.usage_percent)?;
    for (field, bytes) in [
        ("disk.used_bytes", disk.used_bytes),
        ("disk.images_unique_bytes", disk.images_unique_bytes),
        ("disk.images_shared_bytes", disk.images_shared_bytes),
        ("disk.containers_bytes", disk.containers_bytes),
        ("disk.logs_bytes", disk.logs_bytes.unwrap_or(0)),
        ("disk.volumes_bytes", disk.volumes_bytes),
        ("disk.build_cache_bytes", disk.build_cache_bytes),
        ("disk.other_bytes", disk.other_bytes),
    ] {
        check.bytes(field, bytes)?;
    }
    for (field, count) in [
        ("disk.image_count", disk.image_count),
        ("disk.container_count", disk.container_count),
        ("disk.volume_count", disk.volume_count),
    ] {
        check.count(field, count as u64)?;
    }
    for (i, image) in report.images.iter().enumerate() {
        check.image(&format!("images[{i}]"), image)?;
    }
    for (i, run) in report.gc_runs.iter().enumerate() {
        check.run(&format!("gc_runs[{i}]"), run)?;
    }
    check.bytes("pull_headroom_bytes", report.pull_headroom_bytes)?;
    check.text("pull_headroom", &report.pull_headroom, 64)?;
    if let Some(root) = &report.data_root {
        check.text("data_root.path", &root.path.to_string_lossy(), 4096)?;
        check.text(
            "data_root.mount_point",
            &root.mount_point.to_string_lossy(),
            4096,
        )?;
        check.text("data_root.source", &root.source, 4096)?;
        check.text("data_root.fs_type", &root.fs_type, 64)?;
        check.bytes("data_root.size_bytes", root.size_bytes)?;
        check.bytes("data_root.reserved_bytes", root.reserved_bytes)?;
    }
    if let Some(pass) = &report.last_pass {
        check.time("last_pass.started_at", pass.started_at)?;
        if let Some(trigger) = &pass.space_trigger {
            check.text("last_pass.space_trigger", trigger, 64)?;
        }
        check.percent("last_pass.usage_percent_after", pass.usage_percent_after)?;
        check.bytes("last_pass.shortfall_bytes", pass.shortfall_bytes)?;
    }
    for (i, log) in report.unbounded_logs.iter().enumerate() {
        let at = format!("unbounded_logs[{i}]");
        check.text(&format!("{at}.container_id"), &log.container_id, 256)?;
        check.text(&format!("{at}.name"), &log.name, 1024)?;
        if let Some(service) = &log.service {
            check.text(&format!("{at}.service"), service, 1024)?;
        }
        check.bytes(&format!("{at}.size_bytes"), log.size_bytes)?;
    }
    if report.usage.len() > MAX_USAGE_SAMPLES {
        return Err(problem(
            "usage",
            format!(
                "{} samples is more than the {MAX_USAGE_SAMPLES} accepted",
                report.usage.len()
            ),
        ));
    }
    for (i, sample) in report.usage.iter().enumerate() {
        check.usage(&format!("usage[{i}]"), sample)?;
    }
    if let Some(volumes) = &report.volumes {
        if volumes.len() > MAX_REPORTED_VOLUMES {
            return Err(problem(
                "volumes",
                format!(
                    "{} volumes is more than the {MAX_REPORTED_VOLUMES} accepted",
                    volumes.len()
                ),
            ));
        }
        for (i, volume) in volumes.iter().enumerate() {
            check.volume(&format!("volumes[{i}]"), volume)?;
        }
    }
    Ok(())
}

fn problem(field: &str, why: String) -> ReportProblem {
    ReportProblem {
        field: field.to_owned(),
        why,
    }
}

struct Check {
    now: Timestamp,
}

impl Check {
    fn time(&self, field: &str, at: Timestamp) -> Result<(), ReportProblem> {
        let limit = self
            .now
            .checked_add(MAX_CLOCK_AHEAD)
            .unwrap_or(Timestamp::MAX);
        if at > limit {
            return Err(problem(
                field,
                format!(
                    "{at} is more than {}h ahead of the server's clock ({}); check the node's clock",
                    MAX_CLOCK_AHEAD.as_hours(),
                    self.now
                ),
            ));
        }
        Ok(())
    }

    fn bytes(&self, field: &str, bytes: u64) -> Result<(), ReportProblem> {
        if bytes > MAX_REPORTED_BYTES {
            return Err(problem(
                field,
                format!("{bytes} bytes is more than the {MAX_REPORTED_BYTES} accepted"),
            ));
        }
        Ok(())
    }

    fn count(&self, field: &str, count: u64) -> Result<(), ReportProblem> {
        if count > MAX_REPORTED_COUNT {
            return Err(problem(
                field,
                format!("{count} is more than the {MAX_REPORTED_COUNT} accepted"),
            ));
        }
        Ok(())
    }

    fn percent(&self, field: &str, percent: u8) -> Result<(), ReportProblem> {
        if percent > 100 {
            return Err(problem(field, format!("{percent} is not a percentage")));
        }
        Ok(())
    }

    fn text(&self, field: &str, text: &str, max: usize) -> Result<(), ReportProblem> {
        if text.len() > max {
            return Err(problem(
                field,
                format!("{} bytes is longer than the {max} accepted", text.len()),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(problem(field, "holds a control character".into()));
        }
        Ok(())
    }

    fn image(&self, at: &str, image: &ReportedImage) -> Result<(), ReportProblem> {
        let field = |name: &str| format!("{at}.{name}");
        self.text(&field("id"), &image.id, 256)?;
        for (i, tag) in image.repo_tags.iter().enumerate() {
            self.text(&field(&format!("repo_tags[{i}]")), tag, 1024)?;
        }
        for (i, digest) in image.repo_digests.iter().enumerate() {
            self.text(&field(&format!("repo_digests[{i}]")), digest, 1024)?;
        }
        self.text(&field("name"), &image.name, 1024)?;
        self.bytes(&field("size_bytes"), image.size_bytes)?;
        self.bytes(&field("shared_bytes"), image.shared_bytes)?;
        self.time(&field("first_seen"), image.first_seen)?;
        if let Some(at) = image.last_used {
            self.time(&field("last_used"), at)?;
        }
        if let Some(reason) = &image.keep_reason {
            self.text(&field("keep_reason"), reason, 64)?;
        }
        Ok(())
    }

    fn volume(&self, at: &str, volume: &ReportedVolume) -> Result<(), ReportProblem> {
        if volume.name.is_empty() {
            return Err(problem(&format!("{at}.name"), "is empty".into()));
        }
        self.text(&format!("{at}.name"), &volume.name, 255)?;
        self.text(&format!("{at}.driver"), &volume.driver, 255)?;
        self.text(&format!("{at}.mountpoint"), &volume.mountpoint, 4096)?;
        self.bytes(&format!("{at}.size_bytes"), volume.size_bytes.unwrap_or(0))?;
        if volume.labels.len() > 1000 {
            return Err(problem(
                &format!("{at}.labels"),
                "more than 1000 labels".into(),
            ));
        }
        for (key, value) in &volume.labels {
            self.text(&format!("{at}.labels"), key, 1024)?;
            self.text(&format!("{at}.labels[{key}]"), value, 4096)?;
        }
        if volume.containers.len() > 10_000 {
            return Err(problem(
                &format!("{at}.containers"),
                "more than 10000 containers".into(),
            ));
        }
        for (i, container) in volume.containers.iter().enumerate() {
            self.text(&format!("{at}.containers[{i}]"), container, 1024)?;
        }
        Ok(())
    }

    fn usage(&self, at: &str, sample: &UsageSample) -> Result<(), ReportProblem> {
        let field = |name: &str| format!("{at}.{name}");
        self.time(&field("taken_at"), sample.taken_at)?;
        if let Some(node) = &sample.node {
            // Milliseconds of CPU time fit the byte bound: 2^53 ms is 285,000 years.
            self.bytes(&field("node.cpu_busy_ms"), node.cpu_busy_ms)?;
            self.bytes(&field("node.cpu_total_ms"), node.cpu_total_ms)?;
            if node.cpu_busy_ms > node.cpu_total_ms {
                return Err(problem(
                    &field("node.cpu_busy_ms"),
                    "is more than cpu_total_ms".into(),
                ));
            }
            self.count(&field("node.cpus"), node.cpus.into())?;
            self.bytes(&field("node.memory_total_bytes"), node.memory_total_bytes)?;
            self.bytes(
                &field("node.memory_available_bytes"),
                node.memory_available_bytes,
            )?;
        }
        if sample.tasks.len() > MAX_USAGE_TASKS {
            return Err(problem(
                &field("tasks"),
                format!(
                    "{} tasks is more than the {MAX_USAGE_TASKS} accepted",
                    sample.tasks.len()
                ),
            ));
        }
        for (i, task) in sample.tasks.iter().enumerate() {
            let at = field(&format!("tasks[{i}]"));
            self.text(&format!("{at}.task"), &task.task, 128)?;
            self.text(&format!("{at}.service"), &task.service, 255)?;
            self.text(&format!("{at}.stack"), &task.stack, 255)?;
            self.text(&format!("{at}.slot"), &task.slot, 16)?;
            // Nanoseconds of CPU time: 2^63 is 292 years of one core.
            if task.cpu_ns > i64::MAX as u64 {
                return Err(problem(
                    &format!("{at}.cpu_ns"),
                    "is more than 2^63-1".into(),
                ));
            }
            self.bytes(&format!("{at}.memory_bytes"), task.memory_bytes)?;
            if let Some(limit) = task.memory_limit_bytes {
                // The kernel's "no limit" on v1 is about 2^63: the agent reports it as None,
                // and a limit beyond the byte bound is no limit either way.
                self.bytes(&format!("{at}.memory_limit_bytes"), limit)?;
            }
            if let Some(kills) = task.oom_kills {
                self.count(&format!("{at}.oom_kills"), kills)?;
            }
        }
        Ok(())
    }

    fn run(&self, at: &str, run: &ReportedRun) -> Result<(), ReportProblem> {
        let field = |name: &str| format!("{at}.{name}");
        self.time(&field("started_at"), run.started_at)?;
        self.text(&field("trigger"), &run.trigger, 64)?;
        self.text(&field("outcome"), &run.outcome, 64)?;
        self.percent(&field("usage_percent_before"), run.usage_percent_before)?;
        self.percent(&field("usage_percent_after"), run.usage_percent_after)?;
        self.bytes(&field("bytes_freed"), run.bytes_freed)?;
        self.count(&field("containers_removed"), run.containers_removed)?;
        self.bytes(
            &field("build_cache_freed_bytes"),
            run.build_cache_freed_bytes,
        )?;
        self.bytes(&field("pull_headroom_bytes"), run.pull_headroom_bytes)?;
        if let Some(trigger) = &run.space_trigger {
            self.text(&field("space_trigger"), trigger, 64)?;
        }
        for (i, deleted) in run.deleted.iter().enumerate() {
            let at = field(&format!("deleted[{i}]"));
            self.text(&format!("{at}.id"), &deleted.id, 256)?;
            self.text(&format!("{at}.reason"), &deleted.reason, 64)?;
            self.bytes(&format!("{at}.bytes"), deleted.bytes)?;
            for (j, tag) in deleted.repo_tags.iter().enumerate() {
                self.text(&format!("{at}.repo_tags[{j}]"), tag, 1024)?;
            }
            self.text(&format!("{at}.name"), &deleted.name, 1024)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ReportedDeletion;

    fn now() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn report() -> NodeReport {
        NodeReport {
            images: vec![ReportedImage {
                id: "sha256:aa".into(),
                repo_tags: vec!["app:1".into()],
                size_bytes: 100,
                shared_bytes: 0,
                first_seen: "1970-01-01T00:00:00Z".parse().unwrap(),
                last_used: None,
                in_use: false,
                keep_reason: Some("too-young".into()),
                ..ReportedImage::default()
            }],
            gc_runs: vec![ReportedRun {
                started_at: now() - SignedDuration::from_hours(40 * 24),
                trigger: "pull".into(),
                usage_percent_before: 90,
                usage_percent_after: 78,
                bytes_freed: 120,
                deleted: vec![ReportedDeletion {
                    id: "sha256:bb".into(),
                    repo_tags: vec![],
                    reason: "space".into(),
                    bytes: 120,
                    ..ReportedDeletion::default()
                }],
                containers_removed: 1,
                outcome: "ok".into(),
                ..ReportedRun::default()
            }],
            ..crate::wire::tests::report()
        }
    }

    #[test]
    fn volumes_are_bounded_with_their_field() {
        let volume = ReportedVolume {
            name: "db_data".into(),
            driver: "local".into(),
            mountpoint: "/var/lib/docker/volumes/db_data/_data".into(),
            size_bytes: Some(4096),
            labels: [("com.docker.stack.namespace".into(), "db".into())].into(),
            containers: vec!["db.1.x".into()],
        };
        let with = |v: ReportedVolume| NodeReport {
            volumes: Some(vec![volume.clone(), v]),
            ..report()
        };
        assert_eq!(validate_report(&with(volume.clone()), now()), Ok(()));
        let big = ReportedVolume {
            size_bytes: Some(MAX_REPORTED_BYTES + 1),
            ..volume.clone()
        };
        assert_eq!(field_of(&with(big)), "volumes[1].size_bytes");
        let nameless = ReportedVolume {
            name: String::new(),
            ..volume.clone()
        };
        assert_eq!(field_of(&with(nameless)), "volumes[1].name");
        let control = ReportedVolume {
            containers: vec!["a\nb".into()],
            ..volume.clone()
        };
        assert_eq!(field_of(&with(control)), "volumes[1].containers[0]");
        let label = ReportedVolume {
            labels: [("k".into(), "x".repeat(5000))].into(),
            ..volume.clone()
        };
        assert_eq!(field_of(&with(label)), "volumes[1].labels[k]");
        let many = NodeReport {
            volumes: Some(vec![volume; MAX_REPORTED_VOLUMES + 1]),
            ..report()
        };
        assert_eq!(field_of(&many), "volumes");
    }

    fn field_of(report: &NodeReport) -> String {
        validate_report(report, now()).unwrap_err().field
    }

    #[test]
    fn an_ordinary_report_passes_old_times_and_all() {
        assert_eq!(validate_report(&report(), now()), Ok(()));
        // A clock an hour fast is a clock, not an attack.
        let mut fast = report();
        fast.gc_runs[0].started_at = now() + SignedDuration::from_hours(1);
        assert_eq!(validate_report(&fast, now()), Ok(()));
    }

    #[test]
    fn times_far_ahead_are_refused_with_their_field() {
        let mut r = report();
        r.gc_runs[0].started_at = "2126-01-01T00:00:00Z".parse().unwrap();
        let err = validate_report(&r, now()).unwrap_err();
        assert_eq!(err.field, "gc_runs[0].started_at");
        assert_eq!(
            err.to_string(),
            "gc_runs[0].started_at: 2126-01-01T00:00:00Z is more than 24h ahead of the \
             server's clock (2026-11-26T12:00:00Z); check the node's clock"
        );
        let mut r = report();
        r.images[0].last_used = Some(now() + SignedDuration::from_hours(25));
        assert_eq!(field_of(&r), "images[0].last_used");
        let mut r = report();
        r.reported_at = Timestamp::MAX;
        assert_eq!(field_of(&r), "reported_at");
    }

    #[test]
    fn bytes_counts_and_percentages_are_bounded() {
        let mut r = report();
        r.gc_runs[0].bytes_freed = u64::MAX >> 1;
        assert_eq!(field_of(&r), "gc_runs[0].bytes_freed");
        let mut r = report();
        r.gc_runs[0].deleted[0].bytes = MAX_REPORTED_BYTES + 1;
        assert_eq!(field_of(&r), "gc_runs[0].deleted[0].bytes");
        let mut r = report();
        r.disk.filesystem.available_bytes = 2_000;
        assert_eq!(field_of(&r), "disk.filesystem.available_bytes");
        let mut r = report();
        r.disk.usage_percent = 200;
        assert_eq!(field_of(&r), "disk.usage_percent");
        let mut r = report();
        r.disk.image_count = usize::MAX;
        assert_eq!(field_of(&r), "disk.image_count");
        let mut r = report();
        r.interval_seconds = 0;
        assert_eq!(field_of(&r), "interval_seconds");
        r.interval_seconds = 10 * 24 * 3600;
        assert_eq!(field_of(&r), "interval_seconds");
        // The bound keeps sums of a report's byte fields far from overflowing.
        assert!(i64::try_from(MAX_REPORTED_BYTES * 1023).is_ok());
    }

    #[test]
    fn strings_are_bounded_and_printable() {
        let mut r = report();
        r.hostname = "h".repeat(2_000_000);
        assert_eq!(field_of(&r), "hostname");
        let mut r = report();
        r.images[0].repo_tags[0] = "app:\u{1b}[31m".into();
        assert_eq!(field_of(&r), "images[0].repo_tags[0]");
        let mut r = report();
        r.images[0].repo_digests = vec![format!("app@sha256:{}", "a".repeat(2000))];
        assert_eq!(field_of(&r), "images[0].repo_digests[0]");
        let mut r = report();
        r.unbounded_logs = vec![crate::UnboundedLog {
            container_id: "c1".into(),
            name: "web.1\n".into(),
            service: None,
            size_bytes: 1,
        }];
        assert_eq!(field_of(&r), "unbounded_logs[0].name");
    }

    #[test]
    fn the_pass_and_the_data_root_are_bounded_too() {
        let mut r = report();
        r.last_pass = Some(crate::LastPass {
            started_at: now(),
            space_trigger: Some("pull-headroom".into()),
            usage_percent_after: 101,
            shortfall_bytes: 0,
            short_of_low_threshold: false,
            short_of_headroom: false,
        });
        assert_eq!(field_of(&r), "last_pass.usage_percent_after");
        let mut r = report();
        r.data_root = Some(crate::DataRoot {
            path: "/var/lib/docker".into(),
            mount_point: "/".into(),
            source: "/dev/sda1".into(),
            fs_type: "ext4".into(),
            size_bytes: MAX_REPORTED_BYTES + 1,
            reserved_bytes: 0,
        });
        assert_eq!(field_of(&r), "data_root.size_bytes");
        let mut r = report();
        r.gc_runs[0].build_cache_freed_bytes = u64::MAX;
        assert_eq!(field_of(&r), "gc_runs[0].build_cache_freed_bytes");
    }

    fn sample() -> UsageSample {
        UsageSample {
            taken_at: now(),
            node: Some(crate::NodeUsage {
                cpu_busy_ms: 10,
                cpu_total_ms: 40,
                cpus: 2,
                memory_total_bytes: 1 << 30,
                memory_available_bytes: 1 << 29,
            }),
            tasks: vec![crate::TaskUsage {
                task: "k2x9".into(),
                service: "shop_web".into(),
                stack: "shop".into(),
                slot: "1".into(),
                cpu_ns: 1_000_000,
                memory_bytes: 4096,
                memory_limit_bytes: Some(16 << 20),
                oom_kills: Some(1),
            }],
        }
    }

    #[test]
    fn usage_samples_are_bounded_with_their_field() {
        let mut r = report();
        r.usage = vec![sample(); 3];
        assert_eq!(validate_report(&r, now()), Ok(()));

        r.usage[1].taken_at = now() + SignedDuration::from_hours(25);
        assert_eq!(field_of(&r), "usage[1].taken_at");

        let mut r = report();
        r.usage = vec![sample()];
        r.usage[0].node.as_mut().unwrap().cpu_busy_ms = 41;
        assert_eq!(field_of(&r), "usage[0].node.cpu_busy_ms");

        let mut r = report();
        r.usage = vec![sample()];
        r.usage[0].tasks[0].memory_bytes = MAX_REPORTED_BYTES + 1;
        assert_eq!(field_of(&r), "usage[0].tasks[0].memory_bytes");
        r.usage[0].tasks[0].memory_bytes = 1;
        r.usage[0].tasks[0].service = "web\u{7}".into();
        assert_eq!(field_of(&r), "usage[0].tasks[0].service");

        let mut r = report();
        r.usage = vec![sample(); MAX_USAGE_SAMPLES + 1];
        assert_eq!(field_of(&r), "usage");
        let mut r = report();
        let mut big = sample();
        big.tasks = vec![big.tasks[0].clone(); MAX_USAGE_TASKS + 1];
        r.usage = vec![big];
        assert_eq!(field_of(&r), "usage[0].tasks");
    }
}
