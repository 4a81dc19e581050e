//! Keras' `CSVLogger`: streams epoch results to a CSV file.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};

use kiln_plugin_api::{CallbackPlugin, Control, Logs};
use serde::{Deserialize, Serialize};

/// Writes `epoch,<sorted log keys>` then one row per epoch (epochs from 0, missing values
/// `NA`), flushing every row, like Keras' `CSVLogger(filename, separator=",", append=False)`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvLogger {
    /// The CSV file.
    pub filename: String,
    /// The field separator.
    #[serde(default = "comma")]
    pub separator: String,
    /// Append to an existing file (its header is kept) instead of overwriting it.
    #[serde(default)]
    pub append: bool,
    #[serde(skip)]
    run: Option<Run>,
}

/// The open file and the columns fixed by the first epoch.
#[derive(Debug)]
struct Run {
    file: File,
    keys: Option<Vec<String>>,
    write_header: bool,
}

fn comma() -> String {
    ",".into()
}

impl CallbackPlugin for CsvLogger {
    const NAME: &'static str = "kiln_csv_logger>CSVLogger";

    fn on_train_begin(&mut self, _ctl: &mut Control) -> Result<(), String> {
        let err = |e: std::io::Error| format!("{}: {e}", self.filename);
        // Keras writes the header unless appending to a file that already has content.
        let has_content = self.append
            && File::open(&self.filename).is_ok_and(|f| BufReader::new(f).lines().next().is_some());
        let file = if self.append {
            OpenOptions::new().create(true).append(true).open(&self.filename).map_err(err)?
        } else {
            File::create(&self.filename).map_err(err)?
        };
        self.run = Some(Run { file, keys: None, write_header: !has_content });
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _ctl: &mut Control) -> Result<(), String> {
        let Some(run) = self.run.as_mut() else { return Err("on_epoch_end before on_train_begin".into()) };
        // Logs arrive sorted by key, which is also Keras' column order.
        let keys = run.keys.get_or_insert_with(|| logs.keys().cloned().collect());
        let sep = &self.separator;
        let mut text = String::new();
        if run.write_header {
            text += &std::iter::once("epoch").chain(keys.iter().map(String::as_str)).collect::<Vec<_>>().join(sep);
            text.push('\n');
            run.write_header = false;
        }
        let values = keys.iter().map(|k| logs.get(k).map_or("NA".to_string(), |v| v.to_string()));
        text += &std::iter::once(epoch.to_string()).chain(values).collect::<Vec<_>>().join(sep);
        text.push('\n');
        run.file.write_all(text.as_bytes()).and_then(|()| run.file.flush()).map_err(|e| format!("{}: {e}", self.filename))
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctl: &mut Control) -> Result<(), String> {
        self.run = None; // closes the file
        Ok(())
    }

    fn validate(&self) -> Result<(), String> {
        if self.filename.is_empty() { Err("filename must not be empty".into()) } else { Ok(()) }
    }
}
