//! Human-readable figures for tables: byte sizes and short ids come from `swarmkeeper-units`,
//! their one home.

pub use swarmkeeper_units::{bytes, short_id};

pub fn table() -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table.load_preset(comfy_table::presets::NOTHING);
    table
}
