//! Micro-benchmarks of the kernels an epoch spends its time in: dense products of the
//! MNIST model's shapes, sparse products of the IMDB models' shapes (row-wise and
//! column-wise), the RMSprop step, and ReLU's backward pass.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kiln_benches::{multi_hot, random_matrix};
use kiln_optimizers::{Optimizer, RMSprop};
use kiln_tensor::{Accumulate, ColumnIndex, Matrix, Parallelism, kernels, matmul};

/// Forward, kernel gradient and input gradient of a 784→512 layer on a batch of 128.
fn dense_products(c: &mut Criterion) {
    let mut g = c.benchmark_group("matmul_784x512_batch128");
    let (x, w, dy) = (random_matrix(128, 784, 1), random_matrix(784, 512, 2), random_matrix(128, 512, 3));
    g.throughput(Throughput::Elements(2 * 128 * 784 * 512));
    let mut y = Matrix::zeros(128, 512);
    g.bench_function("ab (forward)", |b| {
        b.iter(|| matmul::ab(y.view_mut(), x.view(), w.view(), Accumulate::Replace, Parallelism::Sequential))
    });
    let mut dw = Matrix::zeros(784, 512);
    g.bench_function("atb (kernel gradient)", |b| {
        b.iter(|| matmul::atb(dw.view_mut(), x.view(), dy.view(), Accumulate::Replace, Parallelism::Sequential))
    });
    let mut dx = Matrix::zeros(128, 784);
    g.bench_function("abt (input gradient)", |b| {
        b.iter(|| matmul::abt(dx.view_mut(), dy.view(), w.view(), Accumulate::Replace, Parallelism::Sequential))
    });
    g.finish();
}

/// A batch of 512 multi-hot rows (128 words of 10,000) times a 10,000×`units` kernel.
fn sparse_products(c: &mut Criterion) {
    let x = multi_hot(512, 10_000, 128, 4);
    for units in [16, 512] {
        let mut g = c.benchmark_group(format!("sparse_512x10000_times_10000x{units}"));
        g.throughput(Throughput::Elements((2 * x.nnz() * units) as u64));
        let (w, dy) = (random_matrix(10_000, units, 5), random_matrix(512, units, 6));
        let mut y = Matrix::zeros(512, units);
        let mut dw = Matrix::zeros(10_000, units);
        g.bench_function("row-wise forward", |b| b.iter(|| x.matmul(y.view_mut(), w.view(), Accumulate::Replace)));
        g.bench_function("row-wise kernel gradient", |b| {
            b.iter(|| x.t_matmul(dw.view_mut(), dy.view(), Accumulate::Replace))
        });
        let mut index = ColumnIndex::default();
        index.build(&x);
        g.bench_function("column index build", |b| b.iter(|| index.build(black_box(&x))));
        g.bench_function("column-wise forward", |b| {
            b.iter(|| index.matmul(y.view_mut(), w.view(), Accumulate::Replace, Parallelism::Sequential))
        });
        g.bench_function("column-wise kernel gradient", |b| {
            b.iter(|| index.t_matmul_touched(dw.view_mut(), dy.view(), Parallelism::Sequential, &[]))
        });
        g.finish();
    }
}

/// One RMSprop step over the 10,000×512 kernel of the large IMDB model.
fn rmsprop_step(c: &mut Criterion) {
    let n = 10_000 * 512;
    let mut g = c.benchmark_group("rmsprop");
    g.throughput(Throughput::Elements(n as u64));
    let mut opt = Optimizer::new(RMSprop::default(), 1e-3);
    opt.build(&[("dense/kernel".to_string(), n)]);
    let mut w = random_matrix(10_000, 512, 7);
    let mut grad = random_matrix(10_000, 512, 8);
    g.bench_function("step 10000x512", |b| {
        b.iter(|| {
            opt.update(0, w.as_mut_slice(), grad.as_mut_slice());
            opt.finish_step();
        })
    });
    g.finish();
}

/// ReLU's backward pass over a 512×512 activation (random signs).
fn relu_backward(c: &mut Criterion) {
    let mut g = c.benchmark_group("relu_backward");
    g.throughput(Throughput::Elements(512 * 512));
    let out = random_matrix(512, 512, 9);
    let mut grad = random_matrix(512, 512, 10);
    g.bench_function("512x512", |b| b.iter(|| kernels::relu_backward(out.as_slice(), grad.as_mut_slice())));
    g.finish();
}

criterion_group!(benches, dense_products, sparse_products, rmsprop_step, relu_backward);
criterion_main!(benches);
