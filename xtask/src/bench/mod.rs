//! `cargo xtask bench`: seconds per epoch of the notebook's training workloads, next to
//! the machine's single-thread GEMM rate measured in the same run (the machines are
//! shared and noisy: read the results as ratios).
//!
//! Each workload runs in its own child process (`bench --worker NAME`), so its peak RSS
//! is its own; it trains through the ordinary `fit` path for one warm-up epoch and then
//! `--epochs` timed ones, and reports their median. The workloads are in `workloads.rs`.

mod scaling;
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
    /// Threads for matrix products (default: `KILN_THREADS`, else 1).
    #[arg(long)]
    threads: Option<usize>,
    /// Comma-separated workloads (W1, W1b, W1c, W2, W2L, and W1u for u8 pixels);
    /// W1…W2L by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Timed epochs per workload, after one warm-up epoch; the median is reported.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Instead of the workloads, sweep batch size, width and vocabulary size and draw
    /// the cost of an epoch against each into this PNG.
    #[arg(long, value_name = "PNG")]
    scaling: Option<std::path::PathBuf>,
    /// Internal: run one workload in this process and print its result as JSON.
    #[arg(long, hide = true)]
    worker: Option<String>,
}

/// One workload's result, as a worker prints it and the JSON file stores it.
#[derive(Serialize, Deserialize)]
struct WorkloadResult {
    name: String,
    seconds_per_epoch: f64,
    gflops: f64,
    peak_rss_bytes: u64,
    /// Every timed epoch, in order.
    epoch_seconds: Vec<f64>,
}

/// Runs the selected workloads, each in its own process, and prints (and optionally
/// writes) the results.
pub fn run(args: &BenchArgs) -> anyhow::Result<bool> {
    let threads = args.threads.unwrap_or_else(|| Parallelism::from_env().thread_count());
    if let Some(name) = &args.worker {
        let result = run_worker(name, threads, args.epochs)?;
        println!("{}", serde_json::to_string(&result)?);
        return Ok(true);
    }
    if let Some(png) = &args.scaling {
        scaling::run(png)?;
        return Ok(true);
    }
    anyhow::ensure!(args.epochs >= 1, "--epochs must be at least 1");
    let selected = select(&args.only)?;
    let gflops = gemm_gflops();
    eprintln!(
        "baseline: faer GEMM 128×784·784×512 on 1 thread at {gflops:.1} GFLOP/s; workloads on {threads} thread(s)"
    );
    let exe = std::env::current_exe().context("finding the xtask executable")?;
    let mut results = Vec::new();
    for name in selected {
        eprintln!("{name}: 1 warm-up + {} timed epochs …", args.epochs);
        let out = Command::new(&exe)
            .args(["bench", "--worker", name, "--threads", &threads.to_string(), "--epochs", &args.epochs.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("starting the {name} worker"))?;
        anyhow::ensure!(out.status.success(), "the {name} worker failed ({})", out.status);
        let line = String::from_utf8_lossy(&out.stdout);
        let result: WorkloadResult =
            serde_json::from_str(line.trim()).with_context(|| format!("reading the {name} worker's result"))?;
        println!(
            "{:<4} {:>7.3} s/epoch  {:>6.1} GFLOP/s ({:>3.0} % of GEMM)  peak RSS {:>4} MB",
            result.name,
            result.seconds_per_epoch,
            result.gflops,
            100.0 * result.gflops / gflops,
            result.peak_rss_bytes / 1_000_000
        );
        results.push(result);
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "threads": threads, "gemm_gflops": gflops, "workloads": results });
        kiln_fs::write_atomic(path, serde_json::to_string_pretty(&json)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(true)
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
    })
}

/// Single-thread GFLOP/s of the MNIST hidden layer's forward product, median of 25 runs.
fn gemm_gflops() -> f64 {
    let mut rng = Rng::seed_from_u64(0);
    let mut fill = |r, c| Matrix::from_vec(r, c, (0..r * c).map(|_| rng.uniform()).collect()).unwrap();
    let (a, b) = (fill(128, 784), fill(784, 512));
    let mut c = Matrix::zeros(128, 512);
    let mut times: Vec<f64> = (0..25)
        .map(|_| {
            let t = Instant::now();
            matmul::ab(c.view_mut(), a.view(), b.view(), Accumulate::Replace, Parallelism::Sequential);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    2.0 * 128.0 * 784.0 * 512.0 / times[times.len() / 2] / 1e9
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
