//! Runs experiment × seed jobs on worker threads, longest first, and collects histories.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use kiln_tensor::Parallelism;
use kiln_trainer::{FitOptions, History, Verbosity};

use super::data::Data;
use super::experiments::Experiment;
use super::progress::EpochLine;

/// One training run's outcome.
#[derive(Debug, Clone)]
pub struct Run {
    /// The seed (model initialisation, shuffling and dropout masks).
    pub seed: u64,
    /// Keras-keyed per-epoch logs.
    pub history: History,
    /// Wall time of the `fit`, in seconds.
    pub seconds: f64,
}

/// What to run.
pub struct Plan<'a> {
    /// The experiments.
    pub experiments: &'a [&'static Experiment],
    /// Seeds `0..seeds` for each experiment.
    pub seeds: u64,
    /// Overrides every experiment's epoch count.
    pub epochs: Option<usize>,
    /// Worker threads.
    pub jobs: usize,
    /// The `--regularizer` instance, for experiments that need one.
    pub plugin: super::experiments::PluginReg<'a>,
    /// Whether the training order is redrawn every epoch.
    pub shuffle: ShuffleMode,
}

/// How the training rows are ordered across epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShuffleMode {
    /// One seeded order, reused every epoch (seeded Keras 3 on TensorFlow).
    Once,
    /// A new order every epoch (Keras' documented `shuffle=True`).
    EachEpoch,
}

impl Plan<'_> {
    /// Epochs experiment `exp` trains for.
    pub fn epochs_of(&self, exp: &Experiment) -> usize {
        self.epochs.unwrap_or(exp.epochs)
    }
}

/// Runs every (experiment, seed) of `plan`; returns the runs per experiment, seeds in order.
///
/// Each run is single-threaded (`Parallelism::Sequential`) so its numbers do not depend on `--jobs`;
/// parallelism comes from running several runs at once.
pub fn run_all(plan: &Plan<'_>, data: &Data) -> anyhow::Result<Vec<Vec<Run>>> {
    let mut jobs: Vec<(usize, u64)> =
        (0..plan.experiments.len()).flat_map(|e| (0..plan.seeds).map(move |s| (e, s))).collect();
    // Longest runs first keeps the last worker from finishing alone on a big model.
    let cost = |&(e, _): &(usize, u64)| {
        let exp = plan.experiments[e];
        let inputs = data.get(exp.data);
        exp.cost_per_sample(inputs.features.width(), inputs.nnz_per_row, plan.plugin)
            * plan.epochs_of(exp)
            * inputs.labels.rows()
    };
    jobs.sort_by_key(|j| std::cmp::Reverse(cost(j)));

    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Vec<Option<Run>>>> =
        Mutex::new(plan.experiments.iter().map(|_| vec![None; plan.seeds as usize]).collect());
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());
    let workers = plan.jobs.clamp(1, jobs.len().max(1));

    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let Some(&(e, seed)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    match run_one(plan, plan.experiments[e], seed, data) {
                        Ok(run) => results.lock().expect("no panics")[e][seed as usize] = Some(run),
                        Err(err) => {
                            failed.store(true, Ordering::Relaxed);
                            errors.lock().expect("no panics").push(err);
                        }
                    }
                }
            });
        }
    });
    if let Some(err) = errors.into_inner().expect("no panics").into_iter().next() {
        return Err(err);
    }
    let results = results.into_inner().expect("no panics");
    Ok(results.into_iter().map(|runs| runs.into_iter().map(|r| r.expect("every job ran")).collect()).collect())
}

/// Trains experiment `exp` with `seed`.
fn run_one(plan: &Plan<'_>, exp: &Experiment, seed: u64, data: &Data) -> anyhow::Result<Run> {
    let inputs = data.get(exp.data);
    let epochs = plan.epochs_of(exp);
    let mut model = exp.model(seed, plan.plugin)?;
    model.set_parallelism(Parallelism::Sequential);
    let mut progress = EpochLine::new(exp.name, seed, epochs);
    let opts = FitOptions::default()
        .epochs(epochs)
        .batch_size(exp.data.batch_size())
        .validation_split(exp.data.validation_split())
        .seed(seed)
        .reshuffle_each_epoch(plan.shuffle == ShuffleMode::EachEpoch)
        .verbose(Verbosity::Silent)
        .callback(&mut progress);
    let start = Instant::now();
    let history =
        model.fit(&inputs.features, &inputs.labels, opts).with_context(|| format!("{} seed {seed}", exp.name))?;
    let seconds = start.elapsed().as_secs_f64();
    eprintln!("[{} seed {seed}] done in {seconds:.1} s", exp.name);
    Ok(Run { seed, history, seconds })
}
