//! What each page shows, computed from plain data: no I/O here, so every decision a page makes
//! (converged or not, which warnings, which events) is tested without an engine.

pub mod chart;
pub mod logs;
pub mod nodes;
pub mod overview;
pub mod services;
