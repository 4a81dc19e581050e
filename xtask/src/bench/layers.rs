//! `cargo xtask bench --layers`: each layer of the W3 convnet timed alone — forward in
//! training mode plus backward, on one batch of 64 images — with its rate against the
//! same-run GEMM rate, to show where the convnet's time goes.

use std::time::Instant;

use kiln_layers::{GradOf, Layer, LayerInput};
use kiln_tensor::{Matrix, Parallelism, Rng};

/// Multiply-adds of a layer's forward per sample: a conv's output pixels × kernel taps ×
/// channels, a Dense's kernel; 0 for layers without products.
fn forward_macs(layer: &dyn Layer, out_width: usize) -> f64 {
    let Some(kernel) = layer.params().iter().find(|p| p.name() == "kernel") else { return 0.0 };
    let shape = kernel.shape();
    let (cout, taps_cin) = (shape[shape.len() - 1], shape[..shape.len() - 1].iter().product::<usize>());
    (out_width / cout * taps_cin * cout) as f64
}

/// Times every layer of the built W3 model and prints one line each.
pub fn run(threads: usize, gemm_gflops: f64) -> anyhow::Result<()> {
    let par = if threads > 1 { Parallelism::threads(threads) } else { Parallelism::Sequential };
    // On the same thread pool `fit` installs.
    par.install(|| profile(par, threads, gemm_gflops))
}

fn profile(par: Parallelism, threads: usize, gemm_gflops: f64) -> anyhow::Result<()> {
    let mut work = super::workloads::build("W3", par)?;
    let (batch, reps) = (64, 20);
    work.model.build(784)?;
    let mut rng = Rng::seed_from_u64(5);
    let mut input = Matrix::from_vec(batch, 784, (0..batch * 784).map(|_| rng.uniform()).collect())?;
    println!("W3 per layer, batch {batch}, forward (training) + backward, {reps} repetitions, {threads} thread(s):");
    for (i, layer) in work.model.layers_mut().iter_mut().enumerate() {
        layer.forward(LayerInput::Dense(input.view()), true, par);
        let out = layer.output().clone();
        let mut grad =
            Matrix::from_vec(out.rows(), out.cols(), (0..out.as_slice().len()).map(|_| rng.uniform()).collect())?;
        let mut grad_input = Matrix::default();
        let first = i == 0;
        let start = Instant::now();
        for _ in 0..reps {
            layer.forward(LayerInput::Dense(input.view()), true, par);
            let gi = if first { None } else { Some(&mut grad_input) };
            layer.backward(LayerInput::Dense(input.view()), &mut grad, GradOf::Output, gi, par);
        }
        let seconds = start.elapsed().as_secs_f64() / reps as f64;
        // Forward, kernel gradient, and (but for the first layer) input gradient.
        let macs = forward_macs(layer.as_ref(), out.cols()) * batch as f64 * if first { 2.0 } else { 3.0 };
        let rate = if macs > 0.0 {
            let gflops = 2.0 * macs / seconds / 1e9;
            format!(
                "{gflops:>6.1} GFLOP/s ({:>3.0} % of {threads}×GEMM)",
                100.0 * gflops / (gemm_gflops * threads as f64)
            )
        } else {
            String::new()
        };
        println!(
            "  {:<2} {:<30} {:>8.3} ms  {rate}",
            i + 1,
            format!("{} ({})", layer.name(), layer.class_name()),
            seconds * 1e3
        );
        input = out;
    }
    Ok(())
}
