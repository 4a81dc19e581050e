//! `cargo xtask bench`: seconds per epoch of fixed training workloads, next to a GEMM
//! baseline measured in the same run (the machines are shared: compare ratios).
//!
//! Workloads (synthetic data, fixed seeds):
//! - `W1`: 784-512-10 (relu, softmax), 48,000 train + 12,000 validation rows of f32
//!   pixels, batch 128, RMSprop(1e-2), sparse categorical cross-entropy.
//! - `W1b`: W1 fed as MNIST is: `u8` pixels scaled by 1/255 as each batch is gathered.
//! - `W2`: IMDB 10,000-16-16-1 on CSR multi-hot rows (~130 words each), 15,000 + 10,000
//!   rows, batch 512, RMSprop(1e-3), binary cross-entropy.

use std::time::Instant;

use anyhow::Context;
use clap::Args;
use kiln_layers::{Activation, Dense};
use kiln_optimizers::RMSprop;
use kiln_tensor::{Accum, ByteMatrix, CsrMatrix, Matrix, Par, Rng, matmul};
use kiln_trainer::{Features, FitOptions, Loss, Sequential, Verbosity};

/// Options of `cargo xtask bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Threads for matrix products (1 = sequential).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Comma-separated workloads to run (W1, W1b, W2); all by default.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Epochs per workload (the first is a warm-up and not counted when > 1).
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// One workload's measurement.
struct Measurement {
    name: &'static str,
    seconds_per_epoch: f64,
    flops_per_epoch: f64,
}

/// Runs the selected workloads and prints (and optionally writes) the results.
pub fn run(args: &BenchArgs) -> anyhow::Result<bool> {
    let par = if args.threads <= 1 { Par::Seq } else { Par::rayon(args.threads) };
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o.eq_ignore_ascii_case(name));
    let gflops = gemm_gflops(par);
    eprintln!("baseline: faer GEMM 128×784·784×512 at {gflops:.1} GFLOP/s ({} thread(s))", args.threads);
    let mut results = Vec::new();
    if wanted("W1") {
        results.push(mnist_like("W1", false, par, args.epochs)?);
    }
    if wanted("W1b") {
        results.push(mnist_like("W1b", true, par, args.epochs)?);
    }
    if wanted("W2") {
        results.push(imdb_like(par, args.epochs)?);
    }
    anyhow::ensure!(!results.is_empty(), "no workload selected (W1, W1b, W2)");
    let rss = peak_rss_bytes();
    for r in &results {
        let ideal = r.flops_per_epoch / (gflops * 1e9);
        println!(
            "{:<4} {:>7.3} s/epoch   {:>5.1} GFLOP/s effective   {:.2}× the pure-GEMM time",
            r.name,
            r.seconds_per_epoch,
            r.flops_per_epoch / r.seconds_per_epoch / 1e9,
            r.seconds_per_epoch / ideal
        );
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({
            "threads": args.threads,
            "gemm_gflops": gflops,
            "workloads": results.iter().map(|r| serde_json::json!({
                "name": r.name,
                "seconds_per_epoch": r.seconds_per_epoch,
                "effective_gflops": r.flops_per_epoch / r.seconds_per_epoch / 1e9,
                "peak_rss_bytes": rss,
            })).collect::<Vec<_>>(),
        });
        kiln_trainer::write_atomic(path, serde_json::to_string_pretty(&json)?.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(true)
}

/// GFLOP/s of the MNIST hidden layer's forward product, median of several runs.
fn gemm_gflops(par: Par) -> f64 {
    let mut rng = Rng::seed_from_u64(0);
    let mut fill = |r, c| Matrix::from_vec(r, c, (0..r * c).map(|_| rng.uniform()).collect()).unwrap();
    let (a, b) = (fill(128, 784), fill(784, 512));
    let mut c = Matrix::zeros(128, 512);
    let mut times: Vec<f64> = (0..25)
        .map(|_| {
            let t = Instant::now();
            matmul::ab(c.view_mut(), a.view(), b.view(), Accum::Replace, par);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    2.0 * 128.0 * 784.0 * 512.0 / times[times.len() / 2] / 1e9
}

/// Trains `model` for `epochs` and returns the mean time of the epochs after the first.
fn time_epochs(
    model: &mut Sequential,
    x: &Features,
    y: &Matrix,
    batch: usize,
    split: f64,
    epochs: usize,
) -> anyhow::Result<f64> {
    let mut marks = Vec::new();
    #[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
    struct Clock {
        #[serde(skip)]
        marks: Vec<Instant>,
    }
    #[typetag::serde(name = "BenchClock")]
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
    let opts =
        FitOptions::default().epochs(epochs).batch_size(batch).validation_split(split).verbose(Verbosity::Silent);
    model.fit_with_callbacks(x, y, opts, &mut [&mut clock])?;
    for pair in clock.marks.chunks(2) {
        marks.push(pair[1].duration_since(pair[0]).as_secs_f64());
    }
    let counted = if marks.len() > 1 { &marks[1..] } else { &marks[..] };
    Ok(counted.iter().sum::<f64>() / counted.len() as f64)
}

fn mnist_like(name: &'static str, bytes: bool, par: Par, epochs: usize) -> anyhow::Result<Measurement> {
    let n = 60_000;
    let mut rng = Rng::seed_from_u64(1);
    let pixels: Vec<u8> = (0..n * 784).map(|_| (rng.next_u32() >> 24) as u8).collect();
    let labels = Matrix::from_vec(n, 1, (0..n).map(|_| rng.below(10) as f32).collect())?;
    let x = if bytes {
        Features::Bytes { values: ByteMatrix::from_vec(n, 784, pixels)?, divisor: 255.0 }
    } else {
        Features::Dense(Matrix::from_vec(n, 784, pixels.iter().map(|&p| p as f32 / 255.0).collect())?)
    };
    let mut model = Sequential::new()
        .add(Dense::new(512).activation(Activation::Relu))
        .add(Dense::new(10).activation(Activation::Softmax));
    model.set_parallelism(par);
    model.compile(RMSprop::new(1e-2), Loss::SparseCategoricalCrossentropy, &["accuracy"])?;
    let secs = time_epochs(&mut model, &x, &labels, 128, 0.2, epochs)?;
    // Per training row: forward and weight gradient of both layers, input gradient of the
    // second only (the first layer's is never needed); per validation row: forward.
    let (l1, l2) = (784.0 * 512.0, 512.0 * 10.0);
    let macs = 48_000.0 * (2.0 * l1 + 3.0 * l2) + 12_000.0 * (l1 + l2);
    Ok(Measurement { name, seconds_per_epoch: secs, flops_per_epoch: 2.0 * macs })
}

fn imdb_like(par: Par, epochs: usize) -> anyhow::Result<Measurement> {
    let (n, words) = (25_000, 130);
    let mut rng = Rng::seed_from_u64(2);
    let mut x = CsrMatrix::with_cols(10_000);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let mut idx: Vec<u32> = (0..words).map(|_| rng.below(10_000) as u32).collect();
        idx.sort_unstable();
        idx.dedup();
        x.push_row(&idx, &vec![1.0; idx.len()])?;
        labels.push(rng.below(2) as f32);
    }
    let y = Matrix::from_vec(n, 1, labels)?;
    let mut model = Sequential::new()
        .add(Dense::new(16).activation(Activation::Relu))
        .add(Dense::new(16).activation(Activation::Relu))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    model.set_parallelism(par);
    model.compile(RMSprop::default(), Loss::BinaryCrossentropy, &["accuracy"])?;
    let secs = time_epochs(&mut model, &Features::Sparse(x), &y, 512, 0.4, epochs)?;
    let (l1, rest) = (words as f64 * 16.0, 16.0 * 16.0 + 16.0);
    let macs = 15_000.0 * (2.0 * l1 + 3.0 * rest) + 10_000.0 * (l1 + rest);
    Ok(Measurement { name: "W2", seconds_per_epoch: secs, flops_per_epoch: 2.0 * macs })
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
