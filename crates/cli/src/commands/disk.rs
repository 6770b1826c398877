//! `swarmkeeper disk`.

use clap::Args;
use serde::Serialize;
use swarmkeeper_agent::{disk_report, MountInfo};
use swarmkeeper_engine::layout;
use swarmkeeper_gc::DiskReport;

use super::NodeArgs;
use crate::exit::{block_on, init_logging, CmdResult};
use crate::format;

#[derive(Args)]
pub struct DiskArgs {
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    node: NodeArgs,
}

pub fn run(args: DiskArgs) -> CmdResult {
    init_logging("warn");
    block_on(async {
        let engine = swarmkeeper_engine::Engine::from_env()?;
        let info = engine.info().await?;
        let df = engine.system_df().await?;
        let fs_path = args
            .node
            .fs_path
            .clone()
            .unwrap_or_else(|| info.root_dir.clone());
        let filesystem = swarmkeeper_agent::measure_filesystem(&fs_path).map_err(|e| {
            crate::exit::Failure::Usage(format!("cannot measure {}: {e}", fs_path.display()))
        })?;
        let report = disk_report(filesystem, &df, &info.root_dir);
        let usage = swarmkeeper_agent::filesystem_usage(&fs_path).ok();
        let mut unbounded_logs = layout::unbounded_json_logs(&info.root_dir).unwrap_or_default();
        unbounded_logs.sort_by_key(|l| std::cmp::Reverse(l.size));
        let names: std::collections::HashMap<&str, &str> = df
            .containers
            .iter()
            .filter_map(|c| Some((c.id.as_str(), c.names.first()?.as_str())))
            .collect();
        let disk = Disk {
            report,
            mount: swarmkeeper_agent::mount_info(&fs_path),
            size_bytes: usage.map(|u| u.size_bytes),
            reserved_bytes: usage.map(|u| u.reserved_bytes),
            unbounded_logs: unbounded_logs
                .into_iter()
                .map(|l| UnboundedLog {
                    name: names.get(l.container_id.as_str()).map(|n| n.to_string()),
                    container_id: l.container_id,
                    size_bytes: l.size,
                })
                .collect(),
        };
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&disk).expect("a report serialises")
            );
        } else {
            print_table(&disk);
        }
        Ok(())
    })
}

/// The report with which filesystem it is and the logs that grow without bound.
#[derive(Serialize)]
struct Disk {
    #[serde(flatten)]
    report: DiskReport,
    /// The filesystem holding the data root; `null` when /proc/self/mountinfo cannot tell.
    mount: Option<MountInfo>,
    /// Its whole size, the root reserve included (`df`'s Size).
    size_bytes: Option<u64>,
    /// Blocks reserved for root: not part of `filesystem.capacity_bytes`.
    reserved_bytes: Option<u64>,
    /// Containers logging with `json-file` and no `max-size`, largest first.
    unbounded_logs: Vec<UnboundedLog>,
}

#[derive(Serialize)]
struct UnboundedLog {
    container_id: String,
    name: Option<String>,
    size_bytes: u64,
}

fn print_table(disk: &Disk) {
    let r = &disk.report;
    let capacity = r.filesystem.capacity_bytes.max(1) as f64;
    let share = |bytes: u64| format!("{:.1}%", bytes as f64 * 100.0 / capacity);
    let mut table = format::table();
    table.set_header(["WHAT", "COUNT", "SIZE", "OF DISK"]);
    let mut row = |what: &str, count: String, bytes: Option<u64>| {
        table.add_row([
            what.to_string(),
            count,
            bytes.map_or("unknown".to_string(), format::bytes),
            bytes.map_or("-".to_string(), share),
        ]);
    };
    row(
        "images (unique)",
        r.image_count.to_string(),
        Some(r.images_unique_bytes),
    );
    row(
        "images (shared layers)",
        String::new(),
        Some(r.images_shared_bytes),
    );
    row(
        "containers (writable layers)",
        r.container_count.to_string(),
        Some(r.containers_bytes),
    );
    row("container logs", String::new(), r.logs_bytes);
    row("volumes", r.volume_count.to_string(), Some(r.volumes_bytes));
    row("build cache", String::new(), Some(r.build_cache_bytes));
    row("other files", String::new(), Some(r.other_bytes));
    println!(
        "{}: {} of {} used ({}%), {} available",
        r.filesystem.path.display(),
        format::bytes(r.used_bytes),
        format::bytes(r.filesystem.capacity_bytes),
        r.usage_percent,
        format::bytes(r.filesystem.available_bytes),
    );
    if let Some(mount) = &disk.mount {
        let reserve = match disk.reserved_bytes {
            Some(reserved) if reserved > 0 => format!(
                ", and {} reserved (not counted: it is never available)",
                format::bytes(reserved)
            ),
            _ => String::new(),
        };
        println!(
            "on the {} filesystem {} mounted at {}{reserve}",
            mount.fs_type,
            mount.source,
            mount.mount_point.display(),
        );
    }
    println!("{table}");
    if !disk.unbounded_logs.is_empty() {
        let mut logs = format::table();
        logs.set_header(["CONTAINER", "NAME", "LOG"]);
        for log in &disk.unbounded_logs {
            logs.add_row([
                format::short_id(&log.container_id).to_string(),
                log.name.clone().unwrap_or_else(|| "-".into()),
                format::bytes(log.size_bytes),
            ]);
        }
        println!(
            "\njson-file logs without max-size (they grow until the disk is full; set \
             logging: driver: local, or json-file with max-size):\n{logs}"
        );
    }
}
