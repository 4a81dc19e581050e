//! Stream each epoch's logs to a CSV file.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use super::{Callback, Control};
use crate::{Logs, TrainError};

/// Keras' `CSVLogger(filename, separator=",", append=False)`: a header `epoch,<keys>` with
/// the first epoch's log keys sorted (plus `val_<key>` for each when there is no
/// validation, as Keras adds them), then one row per epoch, epochs from 0, missing values
/// `NA`, numbers as Python prints them. Every row is flushed, so a killed run keeps the
/// epochs it finished; appending to a file that has content keeps its header.
///
/// ```no_run
/// use kiln_trainer::callbacks::CsvLogger;
/// let mut log = CsvLogger::new("training.csv").append(true);
/// # let _ = &mut log;
/// ```
#[derive(Debug)]
pub struct CsvLogger {
    /// The CSV file.
    pub filename: PathBuf,
    /// The field separator.
    pub separator: String,
    /// Append to an existing file instead of overwriting it.
    pub append: bool,
    run: Option<Run>,
}

/// The open file and the columns fixed by the first epoch.
#[derive(Debug)]
struct Run {
    file: File,
    keys: Option<Vec<String>>,
    write_header: bool,
}

impl CsvLogger {
    /// Logs to `filename`, comma-separated, overwriting it.
    pub fn new(filename: impl Into<PathBuf>) -> Self {
        Self { filename: filename.into(), separator: ",".into(), append: false, run: None }
    }

    /// Sets the separator.
    pub fn separator(mut self, separator: impl Into<String>) -> Self {
        self.separator = separator.into();
        self
    }

    /// Appends instead of overwriting.
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    fn err(&self, e: impl std::fmt::Display) -> TrainError {
        TrainError::file(&self.filename, e)
    }
}

/// `value` as Python's `repr(float)` writes it (`0.5`, `1.0`, `1e-05`, `nan`, `inf`), which is
/// what Keras' CSV rows hold.
pub(crate) fn python_float(value: f64) -> String {
    if value.is_nan() {
        return "nan".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // Shortest round-trip digits and decimal exponent, then Python's layout rule:
    // positional for 1e-4 ≤ |x| < 1e16, scientific with a two-digit exponent otherwise.
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').expect("`{:e}` has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    if value == 0.0 || (-4..16).contains(&exp) {
        let s = format!("{value}");
        return if s.contains('.') { s } else { format!("{s}.0") };
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// One field as Python's csv writer (excel dialect, minimal quoting) writes it: quoted,
/// with its quotes doubled, when it holds the separator, a quote or a line break.
fn field(text: &str, sep: &str) -> String {
    if text.contains(sep) || text.contains(['"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        // Python's csv writer, which Keras hands the separator to as its delimiter.
        if self.separator.chars().count() != 1 {
            return Err(self.err(format!("separator {:?}: \"delimiter\" must be a 1-character string", self.separator)));
        }
        if self.filename.exists() {
            kiln_fs::check_regular_file(&self.filename).map_err(|e| self.err(e.message))?;
        }
        // A log under a new folder (`runs/today/log.csv`) gets the folder, as TensorBoard's does.
        if let Some(parent) = self.filename.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| TrainError::file(parent, e))?;
        }
        // Keras writes the header unless appending to a file whose first line has content.
        let has_content = self.append
            && File::open(&self.filename).is_ok_and(|f| BufReader::new(f).lines().next().is_some_and(|l| l.is_ok()));
        let file = if self.append {
            OpenOptions::new().create(true).append(true).open(&self.filename)
        } else {
            File::create(&self.filename)
        }
        .map_err(|e| self.err(e))?;
        self.run = Some(Run { file, keys: None, write_header: !has_content });
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let Some(run) = self.run.as_mut() else {
            return Err(TrainError::Config("CSVLogger: on_epoch_end before on_train_begin".into()));
        };
        let keys = run.keys.get_or_insert_with(|| {
            let mut keys: Vec<String> = logs.iter().map(|(k, _)| k.to_string()).collect();
            keys.sort();
            if !keys.iter().any(|k| k.starts_with("val_")) {
                let val: Vec<String> = keys.iter().map(|k| format!("val_{k}")).collect();
                keys.extend(val);
            }
            keys
        });
        let sep = &self.separator;
        let mut text = String::new();
        if run.write_header {
            let header: Vec<String> =
                std::iter::once("epoch").chain(keys.iter().map(String::as_str)).map(|k| field(k, sep)).collect();
            text += &header.join(sep);
            text += "\r\n"; // Python's csv module ends rows with \r\n (the excel dialect).
            run.write_header = false;
        }
        let values = keys.iter().map(|k| field(&logs.get(k).map_or_else(|| "NA".to_string(), python_float), sep));
        text += &std::iter::once(field(&epoch.to_string(), sep)).chain(values).collect::<Vec<_>>().join(sep);
        text += "\r\n";
        let (file, name) = (&mut run.file, &self.filename);
        file.write_all(text.as_bytes()).and_then(|()| file.flush()).map_err(|e| TrainError::file(name, e))
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctl: &mut Control<'_>) -> Result<(), TrainError> {
        self.run = None; // closes the file
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::python_float;

    #[test]
    fn floats_print_as_python_repr() {
        let cases = [
            (0.5, "0.5"),
            (1.0, "1.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (123456789.0, "123456789.0"),
            (0.6931471824645996, "0.6931471824645996"),
            (-2.5e-7, "-2.5e-07"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0.0"),
        ];
        for (v, want) in cases {
            assert_eq!(python_float(v), want, "{v}");
        }
    }
}
