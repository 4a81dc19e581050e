//! `cargo xtask bench --share`: which dense products pay for sharing between threads.
//! Each product of the workloads' layers runs on one thread and shared by the team inside
//! a pool (as `fit` runs them), each time after a short spell of other work, as in a
//! training step, where the other thread has gone idle since the last split. The rule
//! `kiln_tensor::matmul::shares` decides from the shape alone; the table shows whether the
//! machine agrees.

use std::time::Instant;

use kiln_tensor::{Matrix, Parallelism, Rng, matmul};

/// `(m, k, n, what)`: the products of W1, W1b, W1c and W2L (forward, kernel gradient and
/// input gradient), and of W4's and W5's LSTM(32) (a step, the input products).
const SHAPES: &[(usize, usize, usize, &str)] = &[
    (128, 784, 512, "W1 forward"),
    (784, 128, 512, "W1 kernel gradient"),
    (128, 512, 10, "W1 output forward"),
    (512, 128, 10, "W1 output kernel gradient"),
    (128, 10, 512, "W1 output input gradient"),
    (128, 784, 10, "W1b forward"),
    (784, 128, 10, "W1b kernel gradient"),
    (128, 784, 96, "W1c forward"),
    (784, 128, 96, "W1c kernel gradient"),
    (128, 96, 96, "W1c hidden forward"),
    (96, 128, 96, "W1c hidden kernel gradient"),
    (512, 512, 512, "W2L hidden forward"),
    (32, 32, 128, "W4 LSTM(32) step"),
    (3840, 10, 128, "W4 input forward"),
    (10, 3840, 128, "W4 input kernel gradient"),
    (25_600, 32, 128, "W5 input forward"),
    (25_600, 128, 32, "W5 input gradient"),
];

/// Microseconds of other work before each product (a training step's elementwise passes).
const GAP_US: f64 = 50.0;

/// Prints, per product, its time on one thread and shared by `threads`, their ratio, and
/// what the rule does with it.
pub fn run(threads: usize) -> anyhow::Result<()> {
    let par = Parallelism::threads(threads.max(2));
    let n_threads = par.thread_count();
    println!(
        "cpu: {}; dense products on 1 thread and shared by {n_threads} (in their pool's team), \
         each after {GAP_US} µs of other work; best of 5 medians",
        super::peer::cpu_model()
    );
    println!("  {:>22}  {:>11}  {:>9}  {:>9}  {:>6}  rule", "product", "mult-adds", "1 thr µs", "shared µs", "ratio");
    let mut rng = Rng::seed_from_u64(4);
    let mut disagree = 0;
    for &(m, k, n, what) in SHAPES {
        let mut fill = |r: usize, c: usize| Matrix::from_vec(r, c, (0..r * c).map(|_| rng.uniform()).collect());
        let (a, b) = (fill(m, k)?, fill(k, n)?);
        let mut c = Matrix::zeros(m, n);
        let reps = (4e7 / (m * k * n) as f64).clamp(20.0, 400.0) as usize;
        let mut run = |on: Parallelism| time(reps, || matmul::ab_on(c.view_mut(), a.view(), b.view(), on));
        let one = run(Parallelism::Sequential);
        let shared = par.install(|| run(par));
        let ratio = one / shared;
        let rule = matmul::shares(m, k, n);
        // A split the rule makes that loses, or one it declines that would gain 10 %.
        let odd = (rule && ratio < 1.0) || (!rule && ratio > 1.1);
        disagree += usize::from(odd);
        println!(
            "  {:>22}  {:>11}  {:>9.1}  {:>9.1}  {ratio:>5.2}×  {}{}   {what}",
            format!("{m}×{k}·{k}×{n}"),
            m * k * n,
            one * 1e6,
            shared * 1e6,
            if rule { "shared" } else { "one thread" },
            if odd { " (the measurement disagrees)" } else { "" }
        );
    }
    println!(
        "{disagree} of {} products where this machine disagrees with the rule (shared from {} multiply-adds and {} outputs)",
        SHAPES.len(),
        matmul::FAER_MIN_SHARED_MACS,
        matmul::FAER_MIN_SHARED_OUTPUTS
    );
    Ok(())
}

/// Seconds per call of `product`, each call after [`GAP_US`] of spinning: the best of 5
/// medians of `reps` calls.
fn time(reps: usize, mut product: impl FnMut()) -> f64 {
    let gap = || {
        let start = Instant::now();
        while start.elapsed().as_secs_f64() * 1e6 < GAP_US {
            std::hint::spin_loop();
        }
    };
    product();
    (0..5).map(|_| super::median_seconds(reps, gap, &mut product)).fold(f64::INFINITY, f64::min)
}
