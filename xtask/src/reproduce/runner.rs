//! Runs experiment × seed jobs on worker threads, longest first, and collects histories.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use kiln_tensor::Parallelism;
use kiln_trainer::callbacks::{Callback, Control, TensorBoard};
use kiln_trainer::{Features, FitOptions, History, Logs, TrainError, Verbosity};

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
    /// `--tensorboard DIR`: where each run's event files go (`DIR/<experiment>/seed<k>`).
    pub tensorboard: Option<&'a std::path::Path>,
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

/// The cores of the worker pool: how many workers are training and how many have run out
/// of jobs (whose cores the running ones may take).
#[derive(Debug, Default)]
struct Cores {
    running: AtomicUsize,
    idle: AtomicUsize,
}

/// Gives its run a share of the idle cores at every epoch: a run left alone at the end of
/// the queue trains on all of them. kiln's numbers do not depend on the thread count
/// (tests/determinism.rs), so this changes the wall time only.
struct TakeIdleCores<'a>(&'a Cores);

impl Callback for TakeIdleCores<'_> {
    fn on_epoch_begin(&mut self, _epoch: usize, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let running = self.0.running.load(Ordering::Relaxed).max(1);
        let threads = 1 + self.0.idle.load(Ordering::Relaxed) / running;
        ctl.model_mut().set_parallelism(Parallelism::threads(threads));
        Ok(())
    }
}

/// One run to do: (experiment index in the plan, seed).
pub type Job = (usize, u64);

/// Every (experiment, seed) of `plan` with its expected cost (multiply-adds), most
/// expensive first (ties in plan order): the order runs start in, and what shards balance.
pub fn jobs(plan: &Plan<'_>, data: &Data) -> Vec<(Job, u128)> {
    let mut jobs: Vec<(Job, u128)> = (0..plan.experiments.len())
        .flat_map(|e| (0..plan.seeds).map(move |s| (e, s)))
        .map(|(e, s)| {
            let exp = plan.experiments[e];
            let inputs = data.inputs(exp);
            let per_sample = exp.cost_per_sample(inputs.features.width(), inputs.nnz_per_row, plan.plugin) as u128;
            let (train, evaluated) = inputs.sample_counts(exp.data.validation_split());
            ((e, s), per_sample * plan.epochs_of(exp) as u128 * (train + evaluated) as u128)
        })
        .collect();
    // Stable: equal costs keep plan order, so every shard computes the same list.
    jobs.sort_by_key(|&(_, cost)| std::cmp::Reverse(cost));
    jobs
}

/// Floating-point operations of the products of `jobs` (see
/// [`Experiment::product_flops`](super::experiments::Experiment::product_flops)); each
/// experiment's model is built once, whatever its number of seeds.
pub fn product_flops(plan: &Plan<'_>, data: &Data, jobs: &[Job]) -> f64 {
    (0..plan.experiments.len())
        .map(|e| {
            let seeds = jobs.iter().filter(|&&(je, _)| je == e).count();
            if seeds == 0 {
                return 0.0;
            }
            let exp = plan.experiments[e];
            let inputs = data.inputs(exp);
            let (width, nnz) = (inputs.features.width(), inputs.nnz_per_row);
            let counts = inputs.sample_counts(exp.data.validation_split());
            seeds as f64 * exp.product_flops(width, nnz, counts, plan.epochs_of(exp), plan.plugin)
        })
        .sum()
}

/// A run that failed, reported once for its experiment.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Index of the experiment in the plan.
    pub experiment: usize,
    /// The seed whose run failed first.
    pub seed: u64,
    /// The error, with its causes.
    pub error: String,
}

impl Failure {
    /// `experiment seed k: error`.
    pub fn describe(&self, plan: &Plan<'_>) -> String {
        format!("{} seed {}: {}", plan.experiments[self.experiment].name, self.seed, self.error)
    }
}

/// What [`run_all`] finished and what failed.
#[derive(Debug)]
pub struct Outcome {
    /// The finished runs per experiment of the plan, seeds in order.
    pub runs: Vec<Vec<Run>>,
    /// The first failure of each experiment that had one (its other seeds were not started).
    pub failures: Vec<Failure>,
}

/// Runs `jobs` (in that order); returns the finished runs per experiment of the plan,
/// seeds in order (only the seeds in `jobs`), and the failures.
///
/// Runs start single-threaded, longest first, one per worker; once the queue is empty the
/// idle workers' cores go to the runs still training (each epoch re-reads its share).
/// Numbers do not depend on `--jobs` or on the threads a run gets. Each finished run prints
/// one `name=value` line on stdout (for metrics collectors such as Katib's).
///
/// A failing run does not discard the others: the rest of its experiment's seeds are
/// skipped (a plugin or model that fails once would fail again, with the same message),
/// the other experiments go on.
pub fn run_all(plan: &Plan<'_>, data: &Data, jobs: &[Job]) -> Outcome {
    let next = AtomicUsize::new(0);
    let failed: Vec<AtomicBool> = plan.experiments.iter().map(|_| AtomicBool::new(false)).collect();
    let results: Mutex<Vec<Vec<Option<Run>>>> =
        Mutex::new(plan.experiments.iter().map(|_| vec![None; plan.seeds as usize]).collect());
    let failures: Mutex<Vec<Failure>> = Mutex::new(Vec::new());
    let workers = plan.jobs.max(1);
    let cores = Cores::default();
    // Workers beyond the number of jobs start idle: their cores go to the runs at once.
    cores.idle.store(workers.saturating_sub(jobs.len()), Ordering::Relaxed);

    std::thread::scope(|scope| {
        for _ in 0..workers.min(jobs.len()) {
            scope.spawn(|| {
                while let Some(&(e, seed)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if failed[e].load(Ordering::Relaxed) {
                        continue;
                    }
                    cores.running.fetch_add(1, Ordering::Relaxed);
                    let outcome = run_one(plan, plan.experiments[e], seed, data, &cores);
                    cores.running.fetch_sub(1, Ordering::Relaxed);
                    match outcome {
                        Ok(run) => results.lock().expect("no panics")[e][seed as usize] = Some(run),
                        // Only the first failure of an experiment is kept: seeds running
                        // alongside it usually fail the same way.
                        Err(err) if !failed[e].swap(true, Ordering::Relaxed) => {
                            failures.lock().expect("no panics").push(Failure {
                                experiment: e,
                                seed,
                                error: format!("{err:#}"),
                            });
                        }
                        Err(_) => {}
                    }
                }
                cores.idle.fetch_add(1, Ordering::Relaxed);
            });
        }
    });
    let mut failures = failures.into_inner().expect("no panics");
    failures.sort_by_key(|f| (f.experiment, f.seed));
    let results = results.into_inner().expect("no panics");
    Outcome { runs: results.into_iter().map(|runs| runs.into_iter().flatten().collect()).collect(), failures }
}

/// `experiment=NAME seed=S epochs=E loss=… accuracy=… val_loss=… val_accuracy=…`: the last
/// epoch's logs, one `name=value` per field.
pub fn metrics_line(exp: &Experiment, run: &Run) -> String {
    let mut line = format!("experiment={} seed={} epochs={}", exp.name, run.seed, run.history.epochs());
    for key in ["loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae", "test_mae"] {
        if let Some(v) = run.history.get(key).and_then(|v| v.last()) {
            line.push_str(&format!(" {key}={v:.6}"));
        }
    }
    line
}

/// After every epoch, the test windows' MAE under the key `test_mae` (the protocol reports
/// the test MAE of the epoch with the lowest `val_mae`).
struct TestMae<'a>(&'a Features, &'a kiln_tensor::Matrix, usize);

impl Callback for TestMae<'_> {
    fn on_epoch_end(&mut self, _epoch: usize, _logs: &Logs, ctl: &mut Control<'_>) -> Result<(), TrainError> {
        let logs = ctl.model_mut().evaluate(self.0, self.1, self.2)?;
        let mae = logs.get("mae").ok_or_else(|| TrainError::Config("the test evaluation logs no `mae`".into()))?;
        ctl.add_log("test_mae", mae);
        Ok(())
    }
}

/// The baseline's "run": no model, its validation and test MAE at every epoch (a
/// horizontal line beside the models' curves).
fn baseline_run(exp: &Experiment, seed: u64, epochs: usize, data: &Data) -> Run {
    let baseline = &data.inputs(exp).baseline;
    let mut history = History::default();
    let mut logs = Logs::default();
    logs.set("val_mae", baseline.validation);
    if let Some(test) = baseline.test {
        logs.set("test_mae", test);
    }
    (0..epochs).for_each(|_| history.push(&logs));
    Run { seed, history, seconds: 0.0 }
}

/// Trains experiment `exp` with `seed`.
fn run_one(plan: &Plan<'_>, exp: &Experiment, seed: u64, data: &Data, cores: &Cores) -> anyhow::Result<Run> {
    let inputs = data.inputs(exp);
    let epochs = plan.epochs_of(exp);
    if exp.baseline {
        let run = baseline_run(exp, seed, epochs, data);
        println!("{}", metrics_line(exp, &run));
        return Ok(run);
    }
    let mut model = exp.model(seed, plan.plugin)?;
    model.set_parallelism(Parallelism::Sequential);
    let mut progress = EpochLine::new(exp.name, seed, epochs);
    let mut widen = TakeIdleCores(cores);
    let mut board = plan.tensorboard.map(|dir| TensorBoard::new(dir.join(exp.name).join(format!("seed{seed}"))));
    let mut opts = FitOptions::default()
        .epochs(epochs)
        .batch_size(exp.batch_size())
        .seed(seed)
        .reshuffle_each_epoch(plan.shuffle == ShuffleMode::EachEpoch)
        .verbose(Verbosity::Silent)
        .callback(&mut widen)
        .callback(&mut progress);
    opts = match &inputs.validation {
        Some((x, y)) => opts.validation_data(x, y),
        None => opts.validation_split(exp.data.validation_split()),
    };
    let mut test = inputs.test.as_ref().map(|(x, y)| TestMae(x, y, exp.batch_size()));
    if let Some(test) = test.as_mut() {
        opts = opts.callback(test);
    }
    if let Some(board) = board.as_mut() {
        opts = opts.callback(board);
    }
    let start = Instant::now();
    // The failure names the experiment and seed (see [`Failure`]).
    let history = model.fit(&inputs.features, &inputs.labels, opts)?;
    let seconds = start.elapsed().as_secs_f64();
    eprintln!("[{} seed {seed}] done in {seconds:.1} s", exp.name);
    let run = Run { seed, history, seconds };
    println!("{}", metrics_line(exp, &run));
    Ok(run)
}
