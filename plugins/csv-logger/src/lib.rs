//! kiln-csv-logger: two callbacks as a kiln plugin.
//!
//! - `kiln_csv_logger>CSVLogger` — Keras' `CSVLogger`: one CSV row per epoch.
//! - `kiln_csv_logger>StopAtThreshold` — stops training once a log value crosses a threshold.

mod csv_logger;
mod stop_at;

pub use csv_logger::CsvLogger;
pub use stop_at::StopAtThreshold;

kiln_plugin_api::export_plugin!(callbacks = [CsvLogger, StopAtThreshold]);
