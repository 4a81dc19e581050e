//! `cargo xtask bench`: seconds per epoch of the notebook's training workloads, next to
//! the machine's single-thread GEMM rate measured in the same run (the machines are
//! shared and noisy: read the results as ratios).
//!
//! Each workload runs in its own child process (`bench --worker NAME`), so its peak RSS
//! is its own; it trains through the ordinary `fit` path for one warm-up epoch and then
//! `--epochs` timed ones, and reports their median. The workloads are in `workloads.rs`.
//! With `--vs torch` the same workloads run in PyTorch (`peer.rs`), each right after
//! kiln's, so both see the same machine state; every figure is a same-run ratio.

mod crossover;
mod layers;
mod peer;
mod scaling;
mod share;
mod workloads;

use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use kiln_tensor::{Accumulate, Matrix, Parallelism, Rng, matmul};
use kiln_trainer::{FitOptions, Verbosity};
use serde::{Deserialize, Serialize};

/// Options of `cargo xtask bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Threads per workload, kiln's and the peer's (default: `KILN_THREADS`, else every core).
    #[arg(long, value_parser = threads_arg)]
    threads: Option<usize>,
    /// Also run each workload in this framework, in the same command, and report ratios.
    #[arg(long, value_enum)]
    vs: Option<PeerKind>,
    /// The Python interpreter for `--vs torch` (default: `$KILN_PYTHON`, else `python3`).
    #[arg(long)]
    python: Option<std::path::PathBuf>,
    /// How the PyTorch peer runs the multi-hot first layer of W2/W2L: `dense` (the
    /// notebook's model as written) or `embedding-bag` (an expert's sparse rewrite).
    #[arg(long, default_value = "dense", value_parser = ["dense", "embedding-bag"])]
    torch_multi_hot: String,
    /// Comma-separated workloads (W1, W1r — W1's model on real MNIST digits —, W1b, W1c,
    /// W2, W2L, W3 — the MNIST convnet —, W4 — an LSTM on weather-shaped windows —, W5 —
    /// Embedding + LSTM on IMDB-shaped ids — and W1u for u8 pixels); W1…W2L by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Timed epochs per workload, after one warm-up epoch; the median is reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    epochs: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Instead of the workloads, sweep batch size, width and vocabulary size and draw
    /// the cost of an epoch against each into this PNG.
    #[arg(long, value_name = "PNG")]
    scaling: Option<std::path::PathBuf>,
    /// Instead of the workloads, time each layer of the W3 convnet alone (forward and
    /// backward on a batch of 64) against the GEMM rate.
    #[arg(long)]
    layers: bool,
    /// Instead of the workloads, time W1's first layer on dense rows and on the same
    /// rows with their zeros skipped, over a sweep of densities (the crossover).
    #[arg(long)]
    crossover: bool,
    /// Instead of the workloads, time the workloads' dense products on one thread and
    /// shared by `--threads` (at least 2), against the rule that decides which to share.
    #[arg(long)]
    share: bool,
    /// Internal: run one workload in this process and print its result as JSON.
    #[arg(long, hide = true)]
    worker: Option<String>,
}

/// A framework to compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PeerKind {
    /// PyTorch, through `benches/peers/torch_workloads.py`.
    Torch,
}

/// `--threads`: 1..=1024 (`kiln_tensor::parse_threads`).
fn threads_arg(text: &str) -> Result<usize, String> {
    kiln_tensor::parse_threads(text)
}

/// One workload's result, as a worker prints it and the JSON file stores it.
#[derive(Debug, Serialize, Deserialize)]
struct WorkloadResult {
    name: String,
    seconds_per_epoch: f64,
    gflops: f64,
    peak_rss_bytes: u64,
    /// Every timed epoch, in order.
    epoch_seconds: Vec<f64>,
    /// The single-thread GEMM rate ([`gemm_gflops`]) measured in the worker right after
    /// its timed epochs: the machine as this workload saw it.
    gemm_gflops: f64,
    /// With several threads, the same product shared by them, measured right after the
    /// timed epochs: how the machine's cores scaled while this workload ran.
    #[serde(default)]
    gemm_shared_gflops: Option<f64>,
}

/// Below this share of `threads ×` its 1-thread rate, the product shared by the threads
/// says the machine's cores were not all there (a shared VM gives a vCPU to someone else
/// at times; seen here: 1.07× on 2 threads, 1.75× minutes later): the workload's
/// multi-thread figure is flagged as not representative.
const SCALING_WARN: f64 = 0.65;

/// Runs the selected workloads, each in its own process (and its peer's, right after),
/// and prints (and optionally writes) the results.
pub fn run(args: &BenchArgs) -> anyhow::Result<bool> {
    let threads = args.threads.unwrap_or_else(|| Parallelism::from_env().thread_count());
    let epochs = args.epochs as usize;
    if let Some(name) = &args.worker {
        let result = run_worker(name, threads, epochs)?;
        println!("{}", serde_json::to_string(&result)?);
        return Ok(true);
    }
    if let Some(png) = &args.scaling {
        scaling::run(png)?;
        return Ok(true);
    }
    if args.crossover {
        crossover::run()?;
        return Ok(true);
    }
    if args.share {
        share::run(threads)?;
        return Ok(true);
    }
    if args.layers {
        let gflops = gemm_gflops();
        println!("cpu: {}; faer GEMM 128×784·784×512 on 1 thread: {gflops:.1} GFLOP/s", peer::cpu_model());
        layers::run(threads, gflops)?;
        return Ok(true);
    }
    let selected = select(&args.only)?;
    let cpu = peer::cpu_model();
    let peer = match args.vs {
        None => None,
        Some(PeerKind::Torch) => match peer::Peer::find(args.python.as_deref()) {
            Ok(p) => Some(p),
            Err(e) => {
                eprintln!("warning: {e:#}; running kiln alone");
                None
            }
        },
    };
    let gflops = gemm_gflops();
    let check = kiln_tensor::transition_check();
    // faer's own scaling: the ceiling for W1's (2 threads, or the threads asked for).
    let shared = threads.max(2).min(Parallelism::all_cores().thread_count());
    let shared_gflops = (shared > 1).then(|| gemm_gflops_on(Parallelism::threads(shared)));
    let scaling = shared_gflops.map_or(String::new(), |g| {
        format!(", on {shared} threads: {g:.1} GFLOP/s ({:.2}× its 1-thread rate)", g / gflops)
    });
    println!(
        "cpu: {cpu}; {threads} thread(s); faer GEMM 128×784·784×512 on 1 thread: {gflops:.1} GFLOP/s{scaling} \
         (each workload's % and ceiling use the 1-thread rate its worker measures after its epochs)"
    );
    println!("{}", describe_check(&check));
    let exe = std::env::current_exe().context("finding the xtask executable")?;
    let mut results = Vec::new();
    for name in selected {
        eprintln!("{name}: 1 warm-up + {epochs} timed epochs …");
        let out = Command::new(&exe)
            .args(["bench", "--worker", name, "--threads", &threads.to_string(), "--epochs", &epochs.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("starting the {name} worker"))?;
        anyhow::ensure!(out.status.success(), "the {name} worker failed ({})", out.status);
        let line = String::from_utf8_lossy(&out.stdout);
        let result: WorkloadResult =
            serde_json::from_str(line.trim()).with_context(|| format!("reading the {name} worker's result"))?;
        let theirs = peer.as_ref().map(|p| p.run(name, threads, epochs, &args.torch_multi_hot)).transpose()?;
        let vs = theirs.as_ref().map_or(String::new(), |t| {
            format!(
                "  torch {:>7.3} s/epoch  kiln {:>5.2}× faster",
                t.seconds_per_epoch,
                t.seconds_per_epoch / result.seconds_per_epoch
            )
        });
        println!(
            "{:<4} {:>7.3} s/epoch  {:>6.1} GFLOP/s ({:>3.0} % of {threads}×GEMM {:>5.1})  peak RSS {:>4} MB{vs}",
            result.name,
            result.seconds_per_epoch,
            result.gflops,
            100.0 * gemm_fraction(&result, threads),
            result.gemm_gflops,
            result.peak_rss_bytes / 1_000_000
        );
        if let Some(shared) = result.gemm_shared_gflops {
            let scaling = shared / result.gemm_gflops;
            if scaling < SCALING_WARN * threads as f64 {
                println!(
                    "warning: after {}, faer's product on {threads} threads ran at only {scaling:.2}× its 1-thread rate: \
                     the machine's cores were not all there, so this {threads}-thread figure is not representative; \
                     run it again",
                    result.name
                );
            }
        }
        results.push((result, theirs));
    }
    for (r, t) in &results {
        if let Some(t) = t {
            let floor = arithmetic_floor(r, threads);
            // W1r's first layer skips the zero pixels: its dense arithmetic bounds dense
            // implementations only.
            let (what, who) = if r.name == "W1r" {
                ("dense arithmetic", "no dense implementation at that rate")
            } else {
                ("arithmetic", "nothing running at that rate")
            };
            println!(
                "ceiling {:<4} its {what} at {threads} × the GEMM rate takes {floor:.3} s/epoch: {who} is more \
                 than {:.2}× this PyTorch",
                r.name,
                t.seconds_per_epoch / floor
            );
        }
    }
    if let Some(path) = &args.json {
        let torch = peer.as_ref().map(|p| (p.version.as_str(), args.torch_multi_hot.as_str()));
        let shared = shared_gflops.map(|g| (shared, g));
        let json = report_json(&cpu, threads, gflops, shared, &check, torch, &results);
        kiln_fs::write_atomic(path, serde_json::to_string_pretty(&json)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(true)
}

/// Multiply-adds of one epoch of a stack of products on `train` and `val` rows, whose
/// first kernel costs `first` multiply-adds per row and the others `rest` together:
/// `train·(2·first + 3·rest) + val·(first + rest)`. Training does every kernel's forward
/// product and gradient, and the input gradient of all but the first; validation does the
/// forward products.
pub fn epoch_macs(first: f64, rest: f64, train: f64, val: f64) -> f64 {
    train * (2.0 * first + 3.0 * rest) + val * (first + rest)
}

/// Seconds per epoch `r`'s multiply-adds would take at `threads` × its worker's
/// single-thread GEMM rate: `FLOP per epoch / (threads · GEMM GFLOP/s)`. As faer's GEMM
/// runs near the core's FMA peak, no implementation of the same arithmetic is much
/// faster; a workload bound by its products can beat a peer by at most
/// `peer seconds / floor`.
fn arithmetic_floor(r: &WorkloadResult, threads: usize) -> f64 {
    r.gflops * r.seconds_per_epoch / (r.gemm_gflops * threads as f64)
}

/// `r`'s GFLOP/s as a fraction of `threads` × its worker's single-thread GEMM rate.
fn gemm_fraction(r: &WorkloadResult, threads: usize) -> f64 {
    r.gflops / (r.gemm_gflops * threads as f64)
}

/// The self-check line: what the CPU would charge after faer's assembly, and what it
/// charges after kiln's products (must be ≈ 1.0).
fn describe_check(c: &kiln_tensor::TransitionCheck) -> String {
    let verdict = if c.kiln_ratio() < 1.3 {
        "ok"
    } else {
        "NOT OK: kiln's products leave the upper vector state dirty, so every SSE instruction \
         after them pays the transition penalty (report this CPU and the ratio)"
    };
    format!(
        "self-check: scalar expf after kiln's product vs after vzeroupper: {:.2}× ({verdict}); \
         after raw faer: {:.2}× ({})",
        c.kiln_ratio(),
        c.penalty(),
        if c.penalty() > 1.3 {
            "this CPU pays the AVX→SSE penalty; kiln clears it"
        } else {
            "this CPU pays no penalty"
        }
    )
}

/// The JSON of a run: machine, baseline, self-check, each workload with its peer.
#[allow(clippy::too_many_arguments)]
fn report_json(
    cpu: &str,
    threads: usize,
    gflops: f64,
    shared: Option<(usize, f64)>,
    check: &kiln_tensor::TransitionCheck,
    torch: Option<(&str, &str)>,
    results: &[(WorkloadResult, Option<peer::PeerResult>)],
) -> serde_json::Value {
    let w1_fraction = results.iter().find(|(r, _)| r.name == "W1").map(|(r, _)| gemm_fraction(r, threads));
    let workloads: Vec<serde_json::Value> = results
        .iter()
        .map(|(r, t)| {
            let mut v = serde_json::to_value(r).expect("serializable");
            if let Some(t) = t {
                v["torch_seconds_per_epoch"] = t.seconds_per_epoch.into();
                v["torch_epoch_seconds"] = serde_json::json!(t.epoch_seconds);
                v["ratio"] = (t.seconds_per_epoch / r.seconds_per_epoch).into();
                v["ratio_ceiling_at_gemm_rate"] = (t.seconds_per_epoch / arithmetic_floor(r, threads)).into();
            }
            v["gemm_fraction"] = gemm_fraction(r, threads).into();
            v["arithmetic_floor_s"] = arithmetic_floor(r, threads).into();
            v
        })
        .collect();
    serde_json::json!({
        "cpu": cpu,
        "threads": threads,
        "gemm_gflops": gflops,
        "gemm_shared_threads": shared.map(|(n, _)| n),
        "gemm_shared_gflops": shared.map(|(_, g)| g),
        "w1_gemm_fraction": w1_fraction,
        "torch": torch.map(|(version, _)| version),
        "torch_multi_hot": torch.map(|(_, mode)| mode),
        "self_check": {
            "after_raw_product_s": check.after_raw_product,
            "after_kiln_product_s": check.after_kiln_product,
            "after_vzeroupper_s": check.after_clear,
            "kiln_ratio": check.kiln_ratio(),
            "penalty": check.penalty(),
        },
        "workloads": workloads,
    })
}

/// The workloads `only` names (case-insensitive), in the canonical order; the default
/// set when empty.
fn select(only: &[String]) -> anyhow::Result<Vec<&'static str>> {
    if only.is_empty() {
        return Ok(workloads::DEFAULT.to_vec());
    }
    for o in only {
        anyhow::ensure!(
            workloads::NAMES.iter().any(|n| n.eq_ignore_ascii_case(o)),
            "unknown workload `{o}` (known: {})",
            workloads::NAMES.join(", ")
        );
    }
    Ok(workloads::NAMES.into_iter().filter(|n| only.iter().any(|o| o.eq_ignore_ascii_case(n))).collect())
}

/// Trains one workload in this process and measures it.
fn run_worker(name: &str, threads: usize, epochs: usize) -> anyhow::Result<WorkloadResult> {
    let par = Parallelism::threads(threads);
    let mut w = workloads::build(name, par)?;
    let epoch_seconds = time_epochs(&mut w, epochs + 1)?.split_off(1);
    let mut sorted = epoch_seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    Ok(WorkloadResult {
        name: name.to_string(),
        seconds_per_epoch: median,
        gflops: w.flops_per_epoch / median / 1e9,
        peak_rss_bytes: peak_rss_bytes(),
        epoch_seconds,
        gemm_gflops: gemm_gflops(),
        gemm_shared_gflops: (threads > 1).then(|| gemm_gflops_on(par)),
    })
}

/// Single-thread GFLOP/s of the MNIST hidden layer's forward product (128×784·784×512):
/// the fastest of 8 rounds' medians of 15 products (about 0.2 s).
///
/// Shared machines slow down and speed up from one tenth of a second to the next (seen
/// here: 31 to 72 GFLOP/s within a minute on one AMD EPYC), and a core's clock rises under
/// sustained load: one short median can read well below what the core does a moment later.
/// The fast end is what the core can do, so fractions of it and floors taken at it err on
/// the side of kiln looking slower.
pub(crate) fn gemm_gflops() -> f64 {
    gemm_gflops_on(Parallelism::Sequential)
}

/// [`gemm_gflops`] with the product shared by `par`'s threads (inside their pool, as `fit`
/// runs): the ceiling for how W1 scales with threads.
pub(crate) fn gemm_gflops_on(par: Parallelism) -> f64 {
    par.install(|| gemm_rate(par))
}

fn gemm_rate(par: Parallelism) -> f64 {
    let mut rng = Rng::seed_from_u64(0);
    let mut fill = |r, c| Matrix::from_vec(r, c, (0..r * c).map(|_| rng.uniform()).collect()).unwrap();
    let (a, b) = (fill(128, 784), fill(784, 512));
    let mut c = Matrix::zeros(128, 512);
    let mut round = || {
        let mut times: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                matmul::ab(c.view_mut(), a.view(), b.view(), Accumulate::Replace, par);
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let fastest = (0..8).map(|_| round()).fold(f64::INFINITY, f64::min);
    2.0 * 128.0 * 784.0 * 512.0 / fastest / 1e9
}

/// Trains `w` for `epochs` through `fit` and returns each epoch's wall time.
fn time_epochs(w: &mut workloads::Workload, epochs: usize) -> anyhow::Result<Vec<f64>> {
    /// Marks the start and end of every epoch.
    #[derive(Debug, Default)]
    struct Clock {
        marks: Vec<Instant>,
    }
    impl kiln_trainer::callbacks::Callback for Clock {
        fn on_epoch_begin(
            &mut self,
            _: usize,
            _: &mut kiln_trainer::callbacks::Control<'_>,
        ) -> Result<(), kiln_trainer::TrainError> {
            self.marks.push(Instant::now());
            Ok(())
        }
        fn on_epoch_end(
            &mut self,
            _: usize,
            _: &kiln_trainer::Logs,
            _: &mut kiln_trainer::callbacks::Control<'_>,
        ) -> Result<(), kiln_trainer::TrainError> {
            self.marks.push(Instant::now());
            Ok(())
        }
    }
    let mut clock = Clock::default();
    let opts = FitOptions::default()
        .epochs(epochs)
        .batch_size(w.batch)
        .validation_split(w.split)
        .verbose(Verbosity::Silent)
        .callback(&mut clock);
    w.model.fit(&w.x, &w.y, opts)?;
    Ok(clock.marks.chunks(2).map(|p| p[1].duration_since(p[0]).as_secs_f64()).collect())
}

/// Median seconds of `reps` calls of `f`, each after a call of `before` (not timed).
pub(crate) fn median_seconds(reps: usize, mut before: impl FnMut(), mut f: impl FnMut()) -> f64 {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            before();
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[reps / 2]
}

/// The process's peak resident set size (Linux `VmHWM`), 0 where unknown.
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).map(|kb| kb * 1024))
        })
        .unwrap_or(0)
}
