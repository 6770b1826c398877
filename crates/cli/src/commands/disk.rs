//! `swarmkeeper disk`.

use clap::Args;
use swarmkeeper_agent::disk_report;
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
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).expect("a report serialises")
            );
        } else {
            print_table(&report);
        }
        Ok(())
    })
}

fn print_table(r: &DiskReport) {
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
    println!("{table}");
}
