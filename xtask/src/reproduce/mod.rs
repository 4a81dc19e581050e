//! `cargo xtask reproduce`: retrains the chapter's experiments over several seeds and
//! writes every figure (PNG + SVG), `REPORT.md` and one Keras-keyed history per run.
//!
//! The pieces, one job each: [`experiments`] (the table), [`data`] (load once),
//! [`runner`] (experiment × seed jobs on threads), [`verdicts`] (the chapter's claims,
//! computed), [`figures`] / [`mask`] (drawn with [`crate::plot`]), [`report`] (Markdown),
//! [`outputs`] (checked before training), [`shard`] / [`identity`] (the manifest and what
//! makes runs comparable) and `merge` (`--merge`).

pub mod data;
pub mod experiments;
pub mod figures;
pub mod identity;
pub mod mask;
mod merge;
pub mod outputs;
mod progress;
pub mod report;
pub mod runner;
pub mod shard;
pub mod verdicts;

use std::path::{Path, PathBuf};
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
    /// Training order: `each-epoch` (the default: a new order every epoch, as the unseeded
    /// notebook's `fit` draws) or `once` (one seeded order reused every epoch, as seeded
    /// Keras 3 on TensorFlow does — for side-by-side comparisons with such runs).
    #[arg(long, value_enum, default_value_t = runner::ShuffleMode::EachEpoch)]
    shuffle: runner::ShuffleMode,
    /// IMDB form: `auto` (Keras' imdb.npz on full data, the text subset when bundled),
    /// `keras` (`imdb.load_data` + `vectorize_sequences`, the notebook's) or `text`
    /// (aclImdb through TextVectorization).
    #[arg(long, value_enum, default_value_t = data::ImdbForm::Auto)]
    imdb: data::ImdbForm,
    /// Plugin regularizer (`pkg>Name`) for the kernels of `imdb_custom`.
    #[arg(long)]
    regularizer: Option<String>,
    /// JSON config of `--regularizer`.
    #[arg(long, default_value = "{}")]
    config: String,
    /// Run one slice of the experiment × seed runs: `I/N` (0-based), `slurm`
    /// (SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT) or `k8s=N` (JOB_COMPLETION_INDEX of
    /// N). Writes histories and manifest.json; `--merge` makes the figures and report.
    #[arg(long, value_parser = shard::parse_shard)]
    shard: Option<shard::ShardSpec>,
    /// Also log every run to TensorBoard event files, one run folder per experiment and
    /// seed: `DIR/<experiment>/seed<k>/{train,validation}` (`tensorboard --logdir DIR`).
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
    /// Merge the output folders of all shards of one run into `--out` (no training).
    #[arg(long, num_args = 1.., value_name = "DIR", conflicts_with = "shard")]
    merge: Vec<PathBuf>,
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

/// Runs the selected experiments (or this task's slice of them) and writes histories, a
/// manifest and — unless sharded — the figures and the report; `--merge` does the last
/// step from shards' outputs.
///
/// Every output location is checked before training. A failing run does not discard the
/// others: the finished runs are written (with the failure in the report and the
/// manifest), then the command fails, naming each failure once.
pub fn run(args: &ReproduceArgs) -> anyhow::Result<bool> {
    if !args.merge.is_empty() {
        return merge::merge(args);
    }
    let start = Instant::now();
    let shard = args.shard.map(shard::ShardSpec::resolve).transpose()?.unwrap_or(shard::Shard::WHOLE);
    // Plugins come first so a bad library fails the command before any work.
    crate::plugins::load_all(&args.plugins)?;
    let selected = experiments::select(&args.only)?;
    let plugin = match (&args.regularizer, selected.iter().any(|e| e.needs_plugin())) {
        (Some(name), true) => Some(crate::plugins::regularizer(name, &args.config).with_context(|| {
            format!("--regularizer {} --config {}", kiln_fs::excerpt(name), kiln_fs::excerpt(&args.config))
        })?),
        (None, true) => bail!(
            "imdb_custom needs a plugin regularizer: pass --plugin PATH --regularizer 'pkg>Name' --config '{{...}}'"
        ),
        (Some(_), false) => bail!("--regularizer is only used by imdb_custom; add it to --only"),
        (None, false) => None,
    };
    let config = plugin.is_some().then(|| identity::config(&args.config)).transpose()?;
    let plugins = identity::plugins()?;
    crate::plot::fonts::ensure()?;
    outputs::check(&args.out, args.tensorboard.as_deref(), &selected)?;

    // The loader says on stderr which data it used (full or bundled subset) and why.
    let source = data::parse_source(&args.data);
    let data = data::load(&source, &selected, args.imdb)?;
    let data_sha256 = identity::data_sha256(&data);
    let loaded = start.elapsed().as_secs_f64();

    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let plan = runner::Plan {
        experiments: &selected,
        seeds: args.seeds,
        epochs: args.epochs.map(|e| e as usize),
        jobs,
        plugin: plugin.as_deref(),
        shuffle: args.shuffle,
        tensorboard: args.tensorboard.as_deref(),
    };
    let all = runner::jobs(&plan, &data);
    let mine = shard::assign(&all, shard.count).swap_remove(shard.index);
    eprintln!(
        "reproduce: {} experiments × {} seeds{} on {jobs} threads (data ready in {loaded:.1} s)",
        selected.len(),
        args.seeds,
        if shard.count > 1 {
            format!(", shard {}/{}: {} runs", shard.index, shard.count, mine.len())
        } else {
            String::new()
        }
    );
    // Measured before training, on an idle machine: the rate the floor below is taken at.
    let gemm = crate::bench::gemm_gflops();
    let train_start = start.elapsed().as_secs_f64();
    let outcome = runner::run_all(&plan, &data, &mine);
    let train_wall = start.elapsed().as_secs_f64();
    eprintln!("{}", floor_line(runner::product_flops(&plan, &data, &mine), gemm, jobs, train_wall - train_start));
    let failed: Vec<String> = outcome.failures.iter().map(|f| f.describe(&plan)).collect();
    let runs = outcome.runs;

    let records = save_histories(&args.out, &selected, &runs)?;
    let manifest = shard::Manifest {
        kiln_version: env!("CARGO_PKG_VERSION").into(),
        experiments: selected.iter().map(|e| e.name.to_string()).collect(),
        seeds: args.seeds,
        epochs: args.epochs,
        shuffle: format!("{:?}", args.shuffle),
        data: report::data_lines(&data),
        models: selected.iter().map(|e| report::describe(e, plugin.as_deref())).collect(),
        data_source: args.data.clone(),
        imdb: format!("{:?}", args.imdb),
        data_sha256,
        regularizer: plugin.is_some().then(|| args.regularizer.clone()).flatten(),
        config,
        plugins,
        shard,
        jobs,
        train_wall,
        runs: records,
        failed: failed.clone(),
        merged: false,
        baselines: selected
            .iter()
            .filter(|e| e.data != experiments::DataSet::Weather)
            .map(|e| (e.name.to_string(), data.inputs(e).baseline.validation))
            .collect(),
    };
    manifest.write(&args.out)?;
    let finished: usize = runs.iter().map(Vec::len).sum();
    if shard.count > 1 {
        println!(
            "shard {}/{}: wrote {finished} histories and {} to {} in {:.1} s; merge every shard's folder with \
             `cargo xtask reproduce --merge DIR… --out OUT`",
            shard.index,
            shard.count,
            shard::MANIFEST,
            args.out.display(),
            start.elapsed().as_secs_f64()
        );
    } else {
        finish(&args.out, &selected, &runs, &manifest, args.shuffle, start)?;
    }
    if !failed.is_empty() {
        bail!(
            "{} of {} runs did not finish: {}. The {finished} finished runs are written to {}{}",
            mine.len() - finished,
            mine.len(),
            failed.join("; "),
            args.out.display(),
            if shard.count > 1 { " (re-run this shard before --merge)" } else { " with the failure in REPORT.md" }
        );
    }
    Ok(true)
}

/// What dense arithmetic alone would take on `jobs` cores at the single-thread GEMM rate
/// `gemm` (GFLOP/s), against the `training` seconds the runs took: the floor under any
/// implementation that multiplies every stored input value (faer's GEMM runs near the
/// cores' FMA peak). kiln goes under it where it skips work: a mostly-zero input (MNIST
/// digits) reaches the first layer as its non-zero values.
fn floor_line(flops: f64, gemm: f64, jobs: usize, training: f64) -> String {
    let floor = flops / (gemm * 1e9 * jobs as f64);
    format!(
        "floor: dense arithmetic alone (every stored input value multiplied, zero pixels too) is {:.2} TFLOP, \
         at least {floor:.1} s at {jobs} × this machine's single-thread GEMM rate ({gemm:.1} GFLOP/s); training \
         took {training:.1} s ({:.2}× that floor)",
        flops / 1e12,
        training / floor.max(f64::MIN_POSITIVE)
    )
}

/// Figures, verdicts and the report from complete runs (a single run's or merged shards').
fn finish(
    out: &Path,
    selected: &[&'static experiments::Experiment],
    runs: &[Vec<runner::Run>],
    manifest: &shard::Manifest,
    shuffle: runner::ShuffleMode,
    start: Instant,
) -> anyhow::Result<bool> {
    let curves = curves_of(selected, runs);
    // Seed 0 of the dropout illustration: fixed, so the committed figure is stable.
    let demo = mask::demo(0)?;
    // Figures show complete experiments only: a failed one's band would hide missing seeds.
    let ran: Vec<&str> = selected
        .iter()
        .zip(runs)
        .filter(|(e, r)| !r.is_empty() && !report::failed(&manifest.failed, e.name))
        .map(|(e, _)| e.name)
        .collect();
    let mut drawn = Vec::new();
    for fig in figures::FIGURES.iter().filter(|f| f.needs().iter().all(|n| ran.contains(n))) {
        fig.write(out, &curves, &demo).with_context(|| format!("figure {}", fig.name))?;
        drawn.push(fig.name);
    }

    let verdicts = verdicts::judge(&curves, &manifest.baselines);
    let report = report::Report {
        results: selected
            .iter()
            .copied()
            .zip(runs.iter().map(Vec::as_slice))
            .zip(&manifest.models)
            .map(|((e, r), m)| (e, r, m.clone()))
            .collect(),
        curves: &curves,
        verdicts: &verdicts,
        data_lines: manifest.data.clone(),
        jobs: manifest.jobs,
        train_wall: manifest.train_wall,
        figures: drawn.clone(),
        mask: mask::printed(&demo),
        shuffle,
        failures: manifest.failed.clone(),
    };
    outputs::write_file(&out.join("REPORT.md"), report.render().as_bytes())?;

    for v in &verdicts {
        eprintln!("verdict: {}: {} — {}", v.claim, v.evidence, v.word());
    }
    for (exp, runs) in selected.iter().zip(runs) {
        if let Some(d) = report::divergence(runs) {
            eprintln!("warning: {} diverged: loss or val_loss stopped being finite ({d})", exp.name);
        }
    }
    for (exp, runs) in selected.iter().zip(runs) {
        eprintln!("time: {} {}", exp.name, report::time_summary(runs));
    }
    println!(
        "wrote {} figures, REPORT.md and {} histories to {} in {:.1} s",
        drawn.len(),
        runs.iter().map(Vec::len).sum::<usize>(),
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(true)
}

/// The seed bands of every experiment's loss and accuracy curves.
fn curves_of(selected: &[&experiments::Experiment], runs: &[Vec<runner::Run>]) -> Curves {
    let mut curves = Curves::new();
    for (exp, runs) in selected.iter().zip(runs) {
        let histories: Vec<_> = runs.iter().map(|r| &r.history).collect();
        for key in ["loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae", "test_mae"] {
            if let Some(band) = crate::plot::Band::of(&histories, key) {
                curves.insert((exp.name.to_string(), key.to_string()), band);
            }
        }
    }
    curves
}

/// Writes `out/history/<experiment>_seed<k>.json` for every run; returns the manifest's
/// record of each (with the file's SHA-256).
fn save_histories(
    out: &Path,
    selected: &[&experiments::Experiment],
    runs: &[Vec<runner::Run>],
) -> anyhow::Result<Vec<shard::RunRecord>> {
    let history_dir = out.join("history");
    // Checked again: it may have been swapped for a link while the runs trained.
    outputs::check_history_dir("--out", &history_dir)?;
    std::fs::create_dir_all(&history_dir).with_context(|| format!("creating {}", history_dir.display()))?;
    let mut records = Vec::new();
    for (exp, runs) in selected.iter().zip(runs) {
        for run in runs {
            let json = run.history.to_json();
            outputs::write_file(&history_dir.join(shard::history_file(exp.name, run.seed)), json.as_bytes())?;
            records.push(shard::RunRecord {
                experiment: exp.name.into(),
                seed: run.seed,
                seconds: run.seconds,
                sha256: identity::sha256_hex(json.as_bytes()),
            });
        }
    }
    Ok(records)
}
