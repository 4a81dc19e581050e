//! Progress output for `fit`: a Keras-style bar on terminals, one line per epoch elsewhere.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::Logs;

/// How much `fit` prints (on stderr, so stdout stays clean for data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Verbosity {
    /// Nothing.
    Silent,
    /// A progress bar per epoch (Keras `verbose=1`).
    ProgressBar,
    /// One line per epoch (Keras `verbose=2`).
    EpochLine,
    /// A bar when stderr is a terminal, else one line per epoch (the default).
    #[default]
    Auto,
}

impl Verbosity {
    fn resolve(self) -> Self {
        match self {
            Self::Auto if std::io::stderr().is_terminal() => Self::ProgressBar,
            Self::Auto => Self::EpochLine,
            other => other,
        }
    }
}

/// Draws the progress of one `fit` call.
pub(crate) struct Progress {
    mode: Verbosity,
    epochs: usize,
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    pub fn new(verbosity: Verbosity, epochs: usize) -> Self {
        Self { mode: verbosity.resolve(), epochs, bar: None, started: Instant::now() }
    }

    pub fn epoch_begin(&mut self, epoch: usize, steps: usize) {
        self.started = Instant::now();
        if self.mode == Verbosity::ProgressBar {
            eprintln!("Epoch {}/{}", epoch + 1, self.epochs);
            let bar = ProgressBar::new(steps as u64);
            bar.set_style(
                ProgressStyle::with_template("{pos}/{len} [{bar:30}] {elapsed} {msg}")
                    .expect("valid template")
                    .progress_chars("━━ "),
            );
            self.bar = Some(bar);
        }
    }

    pub fn batch_end(&mut self, logs: &Logs) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            // Formatting the message allocates, so only refresh it a few times a second.
            if bar.position() % 16 == 0 {
                bar.set_message(logs.to_string());
            }
        }
    }

    pub fn epoch_end(&mut self, epoch: usize, logs: &Logs) {
        let secs = self.started.elapsed().as_secs_f64();
        match self.mode {
            Verbosity::ProgressBar => {
                if let Some(bar) = self.bar.take() {
                    bar.set_message(logs.to_string());
                    bar.finish();
                }
            }
            Verbosity::EpochLine => {
                eprintln!("Epoch {}/{} - {secs:.1}s - {logs}", epoch + 1, self.epochs)
            }
            _ => {}
        }
        tracing::info!(epoch = epoch + 1, seconds = secs, logs = %logs, "epoch end");
    }
}
