//! `cargo xtask reproduce`: retrains the chapter's experiments over several seeds and
//! writes every figure (PNG + SVG), `REPORT.md` and one Keras-keyed history per run.
//!
//! The pieces, one job each: [`experiments`] (the table), [`data`] (load once),
//! [`runner`] (experiment × seed jobs on threads), [`verdicts`] (the chapter's claims,
//! computed), [`figures`] / [`mask`] (drawn with [`crate::plot`]), [`report`] (Markdown).

pub mod data;
pub mod experiments;
pub mod figures;
pub mod mask;
mod progress;
pub mod report;
pub mod runner;
pub mod verdicts;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};

use self::verdicts::Curves;

/// Most seeds `--seeds` accepts (each is a full retraining of every experiment).
pub const MAX_SEEDS: u64 = 1000;
/// Most epochs `--epochs` accepts.
pub const MAX_EPOCHS: u64 = 10_000;

/// Options of `cargo xtask reproduce`.
#[derive(clap::Args, Debug)]
pub struct ReproduceArgs {
    /// Data: `auto` (full data if it can be had, else the bundled subsets), `bundled`,
    /// `full`, or a folder holding `mnist/` (IDX files) and `imdb/` (aclImdb).
    #[arg(long, default_value = "auto")]
    data: String,
    /// Run only these experiments (comma-separated); `imdb_custom` runs only when named.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Seeds per experiment (0, 1, …, N−1), 1 to 1000.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=MAX_SEEDS))]
    seeds: u64,
    /// Override every experiment's epoch count (1 to 10000).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_EPOCHS))]
    epochs: Option<u64>,
    /// Output folder for figures, REPORT.md and history/.
    #[arg(long, default_value = "reproduce")]
    out: PathBuf,
    /// Training runs in parallel, 1 to 1024 (default: available cores).
    #[arg(long, value_parser = kiln_tensor::parse_threads)]
    jobs: Option<usize>,
    /// Load a plugin library first (repeatable).
    #[arg(long = "plugin")]
    plugins: Vec<PathBuf>,
    /// Training order: `once` (one seeded order reused every epoch, as seeded Keras 3 on
    /// TensorFlow does — the reference runs kiln is compared with) or `each-epoch` (a new
    /// order every epoch, Keras' documented `shuffle=True`).
    #[arg(long, value_enum, default_value_t = runner::ShuffleMode::Once)]
    shuffle: runner::ShuffleMode,
    /// Plugin regularizer (`pkg>Name`) for the kernels of `imdb_custom`.
    #[arg(long)]
    regularizer: Option<String>,
    /// JSON config of `--regularizer`.
    #[arg(long, default_value = "{}")]
    config: String,
}

impl ReproduceArgs {
    /// Parses `reproduce`'s options from `args` (without the command name), as the
    /// command line would: tests and other tools call [`run`] in-process with them.
    pub fn parse(args: &[&str]) -> Result<Self, clap::Error> {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: ReproduceArgs,
        }
        <Wrapper as clap::Parser>::try_parse_from(std::iter::once("reproduce").chain(args.iter().copied()))
            .map(|w| w.args)
    }
}

/// Runs the selected experiments and writes figures, report and histories.
pub fn run(args: &ReproduceArgs) -> anyhow::Result<bool> {
    let start = Instant::now();
    // Plugins come first so a bad library fails the command before any work.
    crate::plugins::load_all(&args.plugins)?;
    let selected = experiments::select(&args.only)?;
    let plugin = match (&args.regularizer, selected.iter().any(|e| e.needs_plugin())) {
        (Some(name), true) => Some(
            crate::plugins::regularizer(name, &args.config)
                .with_context(|| format!("--regularizer {name} --config {}", args.config))?,
        ),
        (None, true) => bail!(
            "imdb_custom needs a plugin regularizer: pass --plugin PATH --regularizer 'pkg>Name' --config '{{...}}'"
        ),
        (Some(_), false) => bail!("--regularizer is only used by imdb_custom; add it to --only"),
        (None, false) => None,
    };
    crate::plot::fonts::ensure()?;

    let mut needed: Vec<_> = selected.iter().map(|e| e.data).collect();
    needed.dedup();
    // The loader says on stderr which data it used (full or bundled subset) and why.
    let source = data::parse_source(&args.data);
    let data = data::load(&source, &needed)?;
    let loaded = start.elapsed().as_secs_f64();

    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let plan = runner::Plan {
        experiments: &selected,
        seeds: args.seeds,
        epochs: args.epochs.map(|e| e as usize),
        jobs,
        plugin: plugin.as_deref(),
        shuffle: args.shuffle,
    };
    eprintln!(
        "reproduce: {} experiments × {} seeds on {jobs} threads (data ready in {loaded:.1} s)",
        selected.len(),
        args.seeds
    );
    let runs = runner::run_all(&plan, &data)?;
    let train_wall = start.elapsed().as_secs_f64();

    let curves = save_histories(&args.out, &selected, &runs)?;

    // Seed 0 of the dropout illustration: fixed, so the committed figure is stable.
    let demo = mask::demo(0)?;
    let ran: Vec<&str> = selected.iter().map(|e| e.name).collect();
    let mut drawn = Vec::new();
    for fig in figures::FIGURES.iter().filter(|f| f.needs().iter().all(|n| ran.contains(n))) {
        fig.write(&args.out, &curves, &demo).with_context(|| format!("figure {}", fig.name))?;
        drawn.push(fig.name);
    }

    let verdicts = verdicts::judge(&curves);
    let report = report::Report {
        results: selected.iter().copied().zip(runs.iter().map(Vec::as_slice)).collect(),
        curves: &curves,
        verdicts: &verdicts,
        data: &data,
        jobs,
        train_wall,
        figures: drawn.clone(),
        mask: mask::printed(&demo),
        plugin: plugin.as_deref(),
        shuffle: args.shuffle,
    };
    let report_path = args.out.join("REPORT.md");
    kiln_fs::write_atomic(&report_path, report.render().as_bytes())?;

    for v in &verdicts {
        eprintln!("verdict: {}: {} — {}", v.claim, v.evidence, v.word());
    }
    for (exp, runs) in selected.iter().zip(&runs) {
        if let Some(d) = report::divergence(runs) {
            eprintln!("warning: {} diverged: loss or val_loss stopped being finite ({d})", exp.name);
        }
    }
    for (exp, runs) in selected.iter().zip(&runs) {
        let total: f64 = runs.iter().map(|r| r.seconds).sum();
        eprintln!("time: {} {total:.1} s over {} runs", exp.name, runs.len());
    }
    println!(
        "wrote {} figures, REPORT.md and {} histories to {} in {:.1} s",
        drawn.len(),
        runs.iter().map(Vec::len).sum::<usize>(),
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(true)
}

/// Writes `out/history/<experiment>_seed<k>.json` for every run; returns the seed bands.
fn save_histories(
    out: &std::path::Path,
    selected: &[&experiments::Experiment],
    runs: &[Vec<runner::Run>],
) -> anyhow::Result<Curves> {
    let history_dir = out.join("history");
    std::fs::create_dir_all(&history_dir).with_context(|| format!("creating {}", history_dir.display()))?;
    let mut curves = Curves::new();
    for (exp, runs) in selected.iter().zip(runs) {
        for run in runs {
            let path = history_dir.join(format!("{}_seed{}.json", exp.name, run.seed));
            kiln_fs::write_atomic(&path, run.history.to_json().as_bytes())?;
        }
        let histories: Vec<_> = runs.iter().map(|r| &r.history).collect();
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            if let Some(band) = crate::plot::Band::of(&histories, key) {
                curves.insert((exp.name.to_string(), key.to_string()), band);
            }
        }
    }
    Ok(curves)
}
