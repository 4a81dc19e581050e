//! `REPORT.md`: data, settings, computed verdicts and per-epoch tables.

use std::fmt::Write as _;

use kiln_datasets::Provenance;

use super::data::{Data, Inputs};
use super::experiments::{DataSet, Experiment, Input, PluginReg};
use super::runner::{Run, ShuffleMode};
use super::verdicts::{Curves, Verdict};

/// Everything the report shows.
pub struct Report<'a> {
    /// Experiments in order, with their runs (one per seed) and their model in words
    /// ([`describe`]).
    pub results: Vec<(&'static Experiment, &'a [Run], String)>,
    /// Seed bands.
    pub curves: &'a Curves,
    /// Computed verdicts.
    pub verdicts: &'a [Verdict],
    /// One Markdown line per data set used ([`data_lines`]).
    pub data_lines: Vec<String>,
    /// Worker threads.
    pub jobs: usize,
    /// Seconds from the command's start to the end of training.
    pub train_wall: f64,
    /// Figures written (file stems).
    pub figures: Vec<&'static str>,
    /// The dropout matrices, printed.
    pub mask: String,
    /// How the training order was drawn.
    pub shuffle: ShuffleMode,
    /// Runs that failed (`experiment seed k: error`), one per failed experiment.
    pub failures: Vec<String>,
}

/// True when `failures` (`experiment seed k: error` lines) holds one of experiment `exp`.
pub fn failed(failures: &[String], exp: &str) -> bool {
    failures.iter().any(|f| f.strip_prefix(exp).is_some_and(|rest| rest.starts_with(" seed ")))
}

/// Total wall time of `runs` in words: `3.0 s over 2 runs`, or that none finished (a
/// plain `sum` over no run is −0.0, which printed as "-0.0 s over 0 runs").
pub fn time_summary(runs: &[Run]) -> String {
    match runs.len() {
        0 => "no run finished".into(),
        1 => format!("{:.1} s over 1 run", total_seconds(runs)),
        n => format!("{:.1} s over {n} runs", total_seconds(runs)),
    }
}

/// The report's wall-time cell, `all runs / per run`; a dash when no run finished.
fn wall_cell(runs: &[Run]) -> String {
    if runs.is_empty() {
        return "–".into();
    }
    let total = total_seconds(runs);
    format!("{total:.1} s / {:.2} s", total / runs.len() as f64)
}

/// Seconds of all `runs` (0 for none, not −0.0).
fn total_seconds(runs: &[Run]) -> f64 {
    runs.iter().fold(0.0, |acc, r| acc + r.seconds)
}

impl Report<'_> {
    /// The Markdown text.
    pub fn render(&self) -> String {
        let mut md = String::from("# kiln: reproduction of the chapter's experiments\n\n");
        let seeds: Vec<String> = self
            .results
            .first()
            .map(|(_, runs, _)| runs.iter().map(|r| r.seed.to_string()).collect())
            .unwrap_or_default();
        let _ = writeln!(
            md,
            "kiln {} · seeds {} (curves and tables are seed means) · training order: {} · {} worker threads, \
             idle cores go to the runs still training (numbers do not depend on it) · training done {:.1} s after the command started\n",
            env!("CARGO_PKG_VERSION"),
            seeds.join(", "),
            match self.shuffle {
                ShuffleMode::Once => "one seeded shuffle reused every epoch (as seeded Keras 3)",
                ShuffleMode::EachEpoch => "reshuffled every epoch",
            },
            self.jobs,
            self.train_wall
        );
        if !self.failures.is_empty() {
            md.push_str(
                "## Failed runs\n\nThese runs did not finish; their experiments' remaining seeds were not started, \
                 and figures that need them are not drawn. The tables show the seeds that finished.\n\n",
            );
            for f in &self.failures {
                let _ = writeln!(md, "- {}", f.replace('\n', " "));
            }
            md.push('\n');
        }
        md.push_str("## Data\n\n");
        for line in &self.data_lines {
            md.push_str(line);
        }
        md.push_str(
            "\n## Verdicts\n\nEach claim of the chapter, judged from the seed-mean curves by the rule in \
                     `xtask/src/reproduce/verdicts.rs`.\n\n| claim | numbers | verdict |\n|---|---|---|\n",
        );
        for v in self.verdicts {
            let _ = writeln!(md, "| {} | {} | **{}** |", v.claim, v.evidence, v.word());
        }
        md.push_str(&self.weather_table());
        md.push_str("\n## Figures\n\n");
        for f in &self.figures {
            let _ = writeln!(md, "![{f}]({f}.png)\n");
        }
        md.push_str("## Experiments\n\n| experiment | model | epochs | runs | wall time: all runs / per run | min val_loss (epoch) | status |\n|---|---|---|---|---|---|---|\n");
        for (exp, runs, model) in &self.results {
            let best = self
                .band(exp.name, "val_loss")
                .map_or("–".into(), |b| format!("{:.4} ({})", b.min_mean(), b.argmin_epoch()));
            let epochs = runs.first().map_or(0, |r| r.history.epochs());
            let status = if failed(&self.failures, exp.name) {
                "**failed** (see *Failed runs*)".to_string()
            } else {
                divergence(runs).map_or("trained".to_string(), |d| format!("**diverged** ({d})"))
            };
            let _ = writeln!(
                md,
                "| `{}` | {} | {epochs} | {} | {} | {best} | {status} |",
                exp.name,
                model,
                runs.len(),
                wall_cell(runs)
            );
        }
        for (exp, _, _) in &self.results {
            md.push_str(&self.table(exp));
        }
        let _ = write!(
            md,
            "\n## Dropout mask\n\nThe notebook's cell (numpy's generator, seed 0), then kiln's `Dropout({})` layer in training \
             mode on the book's matrix (inverted dropout: kept values scaled by 1/(1 − rate)):\n\n```text\n{}```\n",
            super::mask::RATE,
            self.mask
        );
        md
    }

    fn band(&self, exp: &str, key: &str) -> Option<&crate::plot::Band> {
        self.curves.get(&(exp.to_string(), key.to_string()))
    }

    /// The weather models' validation MAE and the test MAE of the epoch with the lowest
    /// seed-mean validation MAE (`docs/progression.md`); empty without weather runs.
    fn weather_table(&self) -> String {
        let rows: Vec<String> = self
            .results
            .iter()
            .filter(|(e, _, _)| e.data == DataSet::Weather)
            .filter_map(|(e, _, _)| {
                let (val, test) = (self.band(e.name, "val_mae")?, self.band(e.name, "test_mae"));
                let k = val.argmin_epoch();
                let test = test.and_then(|t| t.mean.get(k - 1)).map_or("–".into(), |t| format!("{t:.3}"));
                Some(format!("| `{}` | {:.3} | {k} | {test} |", e.name, val.min_mean()))
            })
            .collect();
        if rows.is_empty() {
            return String::new();
        }
        format!(
            "\n### Weather: validation and test MAE (°C)\n\nThe best epoch's seed-mean validation MAE, and the test MAE \
             at that epoch (the baseline trains nothing: its numbers are the same at every epoch).\n\n| run | best val MAE | \
             epoch | test MAE |\n|---|---|---|---|\n{}\n",
            rows.join("\n")
        )
    }

    /// Per-epoch seed means of one experiment.
    fn table(&self, exp: &Experiment) -> String {
        let mut md = format!("\n### `{}`\n\n", exp.name);
        let keys = exp.history_keys();
        let bands: Vec<_> = keys.iter().map(|k| self.band(exp.name, k)).collect();
        if let Some(v) = self.band(exp.name, "val_loss") {
            let _ = writeln!(md, "Minimum validation loss at epoch {} ({:.4}).\n", v.argmin_epoch(), v.min_mean());
        }
        let _ = writeln!(md, "| epoch | {} |\n|---|{}", keys.join(" | "), "---|".repeat(keys.len()));
        let epochs = bands.iter().flatten().map(|b| b.mean.len()).max().unwrap_or(0);
        for e in 0..epochs {
            let cells: Vec<String> =
                bands.iter().map(|b| b.and_then(|b| b.mean.get(e)).map_or("–".into(), |v| format!("{v:.4}"))).collect();
            let _ = writeln!(md, "| {} | {} |", e + 1, cells.join(" | "));
        }
        md
    }
}

/// Which runs' loss or val_loss stopped being finite, and from which epoch (1-based):
/// `seed 0 from epoch 4, seed 2 from epoch 5`; `None` when every value is finite.
pub fn divergence(runs: &[Run]) -> Option<String> {
    let bad: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let (first, key) =
                ["loss", "val_loss"].iter().filter_map(|k| Some((r.history.first_non_finite(k)?, *k))).min()?;
            let value = r.history.get(key).map_or(f64::NAN, |v| v[first]);
            let what = if value.is_nan() {
                "NaN"
            } else if value > 0.0 {
                "+inf"
            } else {
                "−inf"
            };
            Some(format!("seed {} from epoch {} ({key} {what})", r.seed, first + 1))
        })
        .collect();
    (!bad.is_empty()).then(|| bad.join(", "))
}

/// The report's data section: one line per data set `data` holds, then one per variant.
pub fn data_lines(data: &Data) -> Vec<String> {
    let mut lines = Vec::new();
    for (set, inputs) in [(DataSet::Mnist, &data.mnist), (DataSet::Imdb, &data.imdb)] {
        if let Some((inputs, provenance)) = inputs.as_ref().and_then(|i| Some((i, i.provenance.as_ref()?))) {
            lines.push(data_line(set, provenance, &inputs.representation));
        }
    }
    if let Some(w) = &data.weather {
        lines.push(format!(
            "- **beijing-pm25 weather** (bundled; the whole data set, it has no other form): \"Beijing PM2.5 Data\", UCI \
             Machine Learning Repository (Liang et al. 2015), CC BY 4.0, unchanged. {}. Baseline ({}): validation MAE \
             {:.3} °C, test MAE {:.3} °C.\n",
            w.representation,
            w.baseline.what,
            w.baseline.validation,
            w.baseline.test.unwrap_or(f64::NAN)
        ));
    }
    for (variant, inputs) in &data.variants {
        lines.push(variant_line(*variant, inputs));
    }
    lines
}

/// One line on a data variant.
fn variant_line(variant: Input, inputs: &Inputs) -> String {
    let name = match variant {
        Input::NoiseChannels => "mnist, noise channels",
        Input::ZerosChannels => "mnist, zeros channels",
        Input::ShuffledLabels => "mnist, shuffled labels",
        Input::Plain => "mnist",
    };
    format!("- **{name}**: {} columns; {}.\n", inputs.features.width(), inputs.representation)
}

/// One line on a data set: origin, counts, split sizes, representation.
fn data_line(set: DataSet, p: &Provenance, representation: &str) -> String {
    let split = set.validation_split();
    let train = (p.rows as f64 * (1.0 - split)).floor() as usize;
    let kind = if p.subset { "bundled real subset" } else { "full training split" };
    let extra = representation;
    format!(
        "- **{}** ({kind}): {} rows → {train} training, {} validation (validation_split {split}); {extra}. {} \
         Source and license: {}.\n",
        p.dataset.name(),
        p.rows,
        p.rows - train,
        p.message,
        source_and_license(p.dataset)
    )
}

/// Where a data set comes from and under which license (`data/README.md` has the details).
fn source_and_license(set: kiln_datasets::Dataset) -> &'static str {
    use kiln_datasets::Dataset;
    match set {
        Dataset::Mnist | Dataset::KerasMnist => "MNIST, Yann LeCun and Corinna Cortes, CC BY-SA 3.0",
        Dataset::FashionMnist => "Fashion-MNIST, Zalando Research, MIT",
        Dataset::Imdb | Dataset::KerasImdb => {
            "the Large Movie Review Dataset (Maas et al., ACL 2011), distributed for research; the bundled \
             subset via the R package text2vec (GPL-2+ / MIT)"
        }
    }
}

/// `Dense(16, relu, l2(0.002)) → Dropout(0.5) → …; RMSprop(lr)`, read off the layers'
/// own configs (the model the experiment really builds).
pub fn describe(exp: &Experiment, plugin: PluginReg<'_>) -> String {
    if exp.baseline {
        return "no model: the window's last temperature, de-normalized".into();
    }
    let Ok(model) = exp.model(0, plugin) else { return format!("(needs a plugin); RMSprop({})", exp.learning_rate) };
    let layers: Vec<String> =
        model.layers().iter().map(|l| describe_layer(&serde_json::to_value(l).unwrap_or_default())).collect();
    format!("{}; RMSprop({})", layers.join(" → "), exp.learning_rate)
}

/// One layer's config in the notebook's notation.
fn describe_layer(cfg: &serde_json::Value) -> String {
    let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
    match cfg["type"].as_str().unwrap_or("?") {
        "Dense" => {
            let (units, act) = (cfg["units"].as_u64().unwrap_or(0), cfg["activation"].as_str().unwrap_or("linear"));
            let reg = &cfg["kernel_regularizer"];
            let reg = match reg["type"].as_str() {
                None => String::new(),
                Some("L1") => format!(", l1({})", num(reg, "l1") as f32),
                Some("L2") => format!(", l2({})", num(reg, "l2") as f32),
                Some("L1L2") => format!(", l1_l2({}, {})", num(reg, "l1") as f32, num(reg, "l2") as f32),
                Some(_) => format!(", {}", reg["name"].as_str().unwrap_or("plugin")),
            };
            format!("Dense({units}, {act}{reg})")
        }
        "Dropout" => format!("Dropout({})", num(cfg, "rate") as f32),
        other => {
            // Convolutions, pooling and recurrent layers: their size and a non-linear activation.
            let mut args: Vec<String> =
                ["filters", "units"].iter().filter_map(|k| cfg[*k].as_u64()).map(|v| v.to_string()).collect();
            for key in ["kernel_size", "pool_size"] {
                if let Some(size) = cfg[key].as_array() {
                    args.push(size.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("×"));
                } else if let Some(size) = cfg[key].as_u64() {
                    args.push(size.to_string());
                }
            }
            if let Some(act) = cfg["activation"]
                .as_str()
                .filter(|a| *a != "linear" && !other.ends_with("RNN") && other != "LSTM" && other != "GRU")
            {
                args.push(act.to_string());
            }
            if args.is_empty() { other.to_string() } else { format!("{other}({})", args.join(", ")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use kiln_trainer::{History, Logs};

    use super::*;

    fn run(seed: u64, losses: &[f64]) -> Run {
        let mut history = History::default();
        for &l in losses {
            let mut logs = Logs::default();
            logs.set("loss", l);
            logs.set("val_loss", l);
            history.push(&logs);
        }
        Run { seed, history, seconds: 0.0 }
    }

    #[test]
    fn experiments_are_described_from_their_layers() {
        let find = |n| super::super::experiments::find(n).unwrap();
        assert_eq!(
            describe(find("imdb_l2"), None),
            "Dense(16, relu, l2(0.002)) → Dense(16, relu, l2(0.002)) → Dense(1, sigmoid); RMSprop(0.001)"
        );
        assert_eq!(
            describe(find("imdb_dropout"), None),
            "Dense(16, relu) → Dropout(0.5) → Dense(16, relu) → Dropout(0.5) → Dense(1, sigmoid); RMSprop(0.001)"
        );
        assert_eq!(describe(find("mnist_lr1"), None), "Dense(512, relu) → Dense(10, softmax); RMSprop(1)");
    }

    // --- round 3: no "-0.0 s over 0 runs" (issue 23 #13) ---
    #[test]
    fn wall_time_of_no_run_says_so_instead_of_minus_zero() {
        assert_eq!(time_summary(&[]), "no run finished");
        assert_eq!(wall_cell(&[]), "–");
        let runs = [Run { seconds: 1.5, ..run(0, &[1.0]) }, Run { seconds: 0.5, ..run(1, &[1.0]) }];
        assert_eq!(time_summary(&runs), "2.0 s over 2 runs");
        assert_eq!(time_summary(&runs[..1]), "1.5 s over 1 run");
        assert_eq!(wall_cell(&runs), "2.0 s / 1.00 s");
    }

    #[test]
    fn divergence_names_seeds_and_first_bad_epochs() {
        assert_eq!(divergence(&[run(0, &[1.0, 0.5]), run(1, &[2.0, 1.0])]), None);
        let runs = [run(0, &[1.0, 1e30, f64::INFINITY, f64::NAN]), run(1, &[1.0, 0.5]), run(2, &[f64::NAN])];
        assert_eq!(
            divergence(&runs).as_deref(),
            Some("seed 0 from epoch 3 (loss +inf), seed 2 from epoch 1 (loss NaN)")
        );
    }
}
