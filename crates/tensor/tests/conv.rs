//! Conv and pooling kernels against plain direct implementations written here.

use kiln_tensor::conv::{
    COL_BLOCK_BYTES, avg_pool_backward, avg_pool_forward, col2im, conv2d_backward_input, conv2d_backward_kernel,
    conv2d_forward, im2col, max_pool_backward, max_pool_forward,
};
use kiln_tensor::kernels::{column_sums, column_sums_blocked};
use kiln_tensor::{Accumulate, Matrix, Padding, Parallelism, Rng, View, ViewMut, Window2d};

fn random(rows: usize, cols: usize, rng: &mut Rng) -> Matrix {
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap()
}

/// Input coordinate of output `o`, kernel offset `k` on one axis, or `None` in padding —
/// written from the definition (signed arithmetic), independent of the crate's helpers.
fn src(o: usize, k: usize, g: &Window2d, axis: usize, n: usize) -> Option<usize> {
    let i = (o * g.strides()[axis] + k * g.dilation()[axis]) as i64 - g.pad_before()[axis] as i64;
    (0..n as i64).contains(&i).then_some(i as usize)
}

/// Every `(image, oy, ox, ki, kj, iy, ix)` with a real input cell.
fn taps(g: &Window2d, images: usize) -> Vec<[usize; 7]> {
    let ([h, w, _], [kh, kw], [oh, ow]) = (g.input(), g.kernel(), g.output());
    let mut out = vec![];
    for b in 0..images {
        for oy in 0..oh {
            for ox in 0..ow {
                for ki in 0..kh {
                    for kj in 0..kw {
                        if let (Some(iy), Some(ix)) = (src(oy, ki, g, 0, h), src(ox, kj, g, 1, w)) {
                            out.push([b, oy, ox, ki, kj, iy, ix]);
                        }
                    }
                }
            }
        }
    }
    out
}

/// Direct convolution in f64: `y[b, oy, ox, co] = Σ x[b, iy, ix, ci]·K[ki, kj, ci, co]`.
fn naive_conv(x: &Matrix, k: &Matrix, g: &Window2d) -> Vec<f64> {
    let ([_, w, c], [_, kw], [_, ow], cout) = (g.input(), g.kernel(), g.output(), k.cols());
    let mut y = vec![0.0f64; x.rows() * g.output_len(cout)];
    for [b, oy, ox, ki, kj, iy, ix] in taps(g, x.rows()) {
        for ci in 0..c {
            for co in 0..cout {
                let xv = x.get(b, (iy * w + ix) * c + ci) as f64;
                let kv = k.get((ki * kw + kj) * c + ci, co) as f64;
                y[b * g.output_len(cout) + (oy * ow + ox) * cout + co] += xv * kv;
            }
        }
    }
    y
}

/// Direct gradients in f64: `(dK, dX)` of `Σ y·dy`.
fn naive_grads(x: &Matrix, k: &Matrix, dy: &Matrix, g: &Window2d) -> (Vec<f64>, Vec<f64>) {
    let ([_, w, c], [_, kw], [_, ow], cout) = (g.input(), g.kernel(), g.output(), k.cols());
    let (mut dk, mut dx) = (vec![0.0f64; k.rows() * cout], vec![0.0f64; x.rows() * x.cols()]);
    for [b, oy, ox, ki, kj, iy, ix] in taps(g, x.rows()) {
        for ci in 0..c {
            for co in 0..cout {
                let g_out = dy.get(b, (oy * ow + ox) * cout + co) as f64;
                let (xi, ki_) = ((iy * w + ix) * c + ci, (ki * kw + kj) * c + ci);
                dk[ki_ * cout + co] += x.get(b, xi) as f64 * g_out;
                dx[b * x.cols() + xi] += k.get(ki_, co) as f64 * g_out;
            }
        }
    }
    (dk, dx)
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        assert!((a as f64 - b).abs() <= tol * (1.0 + b.abs()), "{what}[{i}]: {a} vs {b}");
    }
}

/// `(input [h, w, c], kernel, strides, dilation, padding, cout)` covering every rule.
fn cases() -> Vec<Window2d> {
    let g = |i: [usize; 3], k: [usize; 2], s: usize, d: usize, p| Window2d::new(i, k, [s, s], [d, d], p).unwrap();
    vec![
        g([7, 6, 3], [3, 3], 1, 1, Padding::Same),
        g([7, 7, 2], [3, 3], 2, 1, Padding::Same), // odd, stride 2: pads (1, 1)
        g([8, 8, 2], [3, 3], 2, 1, Padding::Same), // even, stride 2: pads (0, 1)
        g([28, 28, 1], [3, 3], 2, 1, Padding::Same), // out 14, pads (0, 1)
        g([6, 5, 2], [2, 2], 1, 1, Padding::Same), // pads (0, 1)
        g([6, 6, 2], [4, 4], 1, 1, Padding::Same), // pads (1, 2)
        g([9, 8, 2], [3, 3], 1, 2, Padding::Valid), // dilation 2
        g([7, 8, 2], [3, 2], 1, 2, Padding::Same), // dilation 2, same
        g([7, 8, 3], [3, 3], 1, 1, Padding::Valid),
        g([7, 8, 2], [3, 3], 2, 1, Padding::Valid), // stride 2 drops the last column
        g([5, 4, 3], [1, 1], 1, 1, Padding::Valid), // pointwise fast path
        g([5, 5, 3], [1, 1], 2, 1, Padding::Same),  // 1×1 but strided: the col path
        Window2d::new_1d(10, 3, 3, 1, 1, Padding::Causal).unwrap(),
        Window2d::new_1d(11, 2, 3, 1, 2, Padding::Causal).unwrap(),
        Window2d::new_1d(9, 2, 4, 2, 1, Padding::Causal).unwrap(),
        Window2d::new_1d(9, 2, 4, 2, 1, Padding::Same).unwrap(),
    ]
}

#[test]
fn conv_forward_and_backward_match_direct_loops() {
    let mut rng = Rng::seed_from_u64(7);
    for g in cases() {
        let (images, cout) = (3, 4);
        let x = random(images, g.input_len(), &mut rng);
        let k = random(g.col_width(), cout, &mut rng);
        let dy = random(images, g.output_len(cout), &mut rng);
        let mut scratch = vec![f32::NAN; g.col_scratch_len(images)]; // garbage must not leak
        let mut y = Matrix::from_vec(images, g.output_len(cout), vec![f32::NAN; images * g.output_len(cout)]).unwrap();
        conv2d_forward(y.view_mut(), x.view(), k.view(), &g, &mut scratch, Parallelism::Sequential);
        assert_close(y.as_slice(), &naive_conv(&x, &k, &g), 1e-5, &format!("forward {g:?}"));

        let (dk_want, dx_want) = naive_grads(&x, &k, &dy, &g);
        let mut dk = Matrix::from_vec(k.rows(), cout, vec![f32::NAN; k.rows() * cout]).unwrap();
        let ws = &mut scratch;
        conv2d_backward_kernel(
            dk.view_mut(),
            x.view(),
            dy.view(),
            &g,
            ws,
            Accumulate::Replace,
            Parallelism::Sequential,
        );
        assert_close(dk.as_slice(), &dk_want, 1e-5, &format!("dK {g:?}"));
        // Add accumulates onto what is there.
        dk.fill(1.0);
        conv2d_backward_kernel(dk.view_mut(), x.view(), dy.view(), &g, ws, Accumulate::Add, Parallelism::Sequential);
        let shifted: Vec<f64> = dk_want.iter().map(|v| v + 1.0).collect();
        assert_close(dk.as_slice(), &shifted, 1e-5, &format!("dK += {g:?}"));

        let mut dx = Matrix::from_vec(images, x.cols(), vec![0.5; x.rows() * x.cols()]).unwrap();
        conv2d_backward_input(dx.view_mut(), dy.view(), k.view(), &g, ws, Parallelism::Sequential);
        let shifted: Vec<f64> = dx_want.iter().map(|v| v + 0.5).collect();
        assert_close(dx.as_slice(), &shifted, 1e-5, &format!("dX {g:?}"));
    }
}

#[test]
fn several_col_blocks_split_mid_image_and_threads_keep_the_bits() {
    // c = 256, 3×3: a col row is 9 KiB, so a block holds 113 rows — fewer than the 64·2
    // pixels of two 8×8 images: three blocks, the first boundary inside image 1.
    let g = Window2d::new([8, 8, 256], [3, 3], [1, 1], [1, 1], Padding::Same).unwrap();
    assert_eq!(g.col_block_rows(), COL_BLOCK_BYTES / (4 * 9 * 256));
    assert!(g.col_block_rows() < 2 * 64 && g.col_block_rows() > 64);
    let mut rng = Rng::seed_from_u64(11);
    let (images, cout) = (2, 3);
    let x = random(images, g.input_len(), &mut rng);
    let k = random(g.col_width(), cout, &mut rng);
    let dy = random(images, g.output_len(cout), &mut rng);
    let mut scratch = vec![0.0; g.col_scratch_len(images)];
    assert_eq!(scratch.len(), g.col_block_rows() * g.col_width());
    let mut y = [Matrix::zeros(images, g.output_len(cout)), Matrix::zeros(images, g.output_len(cout))];
    for (y, par) in y.iter_mut().zip([Parallelism::Sequential, Parallelism::threads(2)]) {
        conv2d_forward(y.view_mut(), x.view(), k.view(), &g, &mut scratch, par);
        assert_close(y.as_slice(), &naive_conv(&x, &k, &g), 1e-5, "forward");
    }
    assert_eq!(y[0].as_slice(), y[1].as_slice(), "forward bits must not depend on threads");
    let (dk_want, dx_want) = naive_grads(&x, &k, &dy, &g);
    let mut dk = [Matrix::zeros(k.rows(), cout), Matrix::zeros(k.rows(), cout)];
    for (dk, par) in dk.iter_mut().zip([Parallelism::Sequential, Parallelism::threads(2)]) {
        conv2d_backward_kernel(dk.view_mut(), x.view(), dy.view(), &g, &mut scratch, Accumulate::Replace, par);
        assert_close(dk.as_slice(), &dk_want, 1e-5, "dK");
    }
    assert_eq!(dk[0].as_slice(), dk[1].as_slice(), "dK bits must not depend on threads");
    let mut dx = [Matrix::zeros(images, g.input_len()), Matrix::zeros(images, g.input_len())];
    for (dx, par) in dx.iter_mut().zip([Parallelism::Sequential, Parallelism::threads(2)]) {
        conv2d_backward_input(dx.view_mut(), dy.view(), k.view(), &g, &mut scratch, par);
        assert_close(dx.as_slice(), &dx_want, 1e-5, "dX");
    }
    assert_eq!(dx[0].as_slice(), dx[1].as_slice(), "dX bits must not depend on threads");
}

#[test]
#[should_panic(expected = "scratch")]
fn short_scratch_is_refused() {
    let g = Window2d::new([4, 4, 2], [3, 3], [1, 1], [1, 1], Padding::Same).unwrap();
    let (x, k, mut y) = (Matrix::zeros(1, 32), Matrix::zeros(18, 2), Matrix::zeros(1, 32));
    let mut scratch = vec![0.0; g.col_scratch_len(1) - 1];
    conv2d_forward(y.view_mut(), x.view(), k.view(), &g, &mut scratch, Parallelism::Sequential);
}

#[test]
fn im2col_layout_and_col2im_is_its_adjoint() {
    // Layout: 1×3×2 input, k2, causal-free same padding → pads (0, 1); last pixel's second
    // tap is padding.
    let g = Window2d::new([1, 3, 2], [1, 2], [1, 1], [1, 1], Padding::Same).unwrap();
    let x = Matrix::from_vec(1, 6, vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let mut col = Matrix::zeros(3, 4);
    im2col(col.view_mut(), x.view(), &g, 0);
    assert_eq!(col.as_slice(), &[1., 2., 3., 4., 3., 4., 5., 6., 5., 6., 0., 0.]);

    let mut rng = Rng::seed_from_u64(3);
    for g in cases() {
        let images = 2;
        let rows = images * g.output_pixels();
        let x = random(images, g.input_len(), &mut rng);
        // Small integers: col2im's f32 sums are then exact, so the identity holds to f64 rounding.
        let y: Vec<f32> = (0..rows * g.col_width()).map(|_| rng.below(5) as f32 - 2.0).collect();
        let y = Matrix::from_vec(rows, g.col_width(), y).unwrap();
        // Whole batch at once, and in two uneven row ranges (as the blocked conv does).
        for split in [rows, rows / 3] {
            let mut col = Matrix::zeros(rows, g.col_width());
            let mut back = Matrix::zeros(images, g.input_len());
            for (r0, r1) in [(0, split), (split, rows)] {
                let (c0, c1) = (r0 * g.col_width(), r1 * g.col_width());
                let cw = g.col_width();
                im2col(ViewMut::new(r1 - r0, cw, &mut col.as_mut_slice()[c0..c1]).unwrap(), x.view(), &g, r0);
                col2im(back.view_mut(), View::new(r1 - r0, cw, &y.as_slice()[c0..c1]).unwrap(), &g, r0);
            }
            let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>();
            let (lhs, rhs) = (dot(col.as_slice(), y.as_slice()), dot(x.as_slice(), back.as_slice()));
            assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()), "{g:?}: {lhs} vs {rhs}");
            assert!(lhs.abs() > 1e-3, "a trivial zero would prove nothing");
        }
    }
}

/// Direct max pool, TF rule: first real cell, then replace only when `best < v`.
fn naive_max_pool(x: &Matrix, g: &Window2d) -> (Vec<f32>, Vec<u32>) {
    let ([h, w, c], [kh, kw], [oh, ow]) = (g.input(), g.kernel(), g.output());
    let (mut out, mut arg) = (vec![], vec![]);
    for b in 0..x.rows() {
        for oy in 0..oh {
            for ox in 0..ow {
                for ch in 0..c {
                    let mut best: Option<(f32, usize)> = None;
                    for ki in 0..kh {
                        for kj in 0..kw {
                            if let (Some(iy), Some(ix)) = (src(oy, ki, g, 0, h), src(ox, kj, g, 1, w)) {
                                let i = (iy * w + ix) * c + ch;
                                let v = x.get(b, i);
                                if best.is_none_or(|(m, _)| m < v) {
                                    best = Some((v, i));
                                }
                            }
                        }
                    }
                    let (v, i) = best.expect("every window has a real cell");
                    out.push(v);
                    arg.push(i as u32);
                }
            }
        }
    }
    (out, arg)
}

fn pool_cases() -> Vec<Window2d> {
    let p = |i: [usize; 3], k: [usize; 2], s: [usize; 2], pad| Window2d::pool(i, k, s, pad).unwrap();
    vec![
        p([5, 5, 2], [2, 2], [2, 2], Padding::Valid), // odd: drops the last row/col
        p([5, 5, 2], [2, 2], [2, 2], Padding::Same),  // odd: pads at the end
        p([6, 7, 3], [3, 3], [2, 2], Padding::Same),
        p([6, 7, 1], [3, 2], [1, 1], Padding::Same),
        p([4, 6, 2], [2, 3], [1, 2], Padding::Valid),
        p([1, 9, 2], [1, 3], [1, 2], Padding::Same), // 1-D
        Window2d::pool_1d(7, 2, 2, 2, Padding::Valid).unwrap(),
        Window2d::global([3, 4, 2]).unwrap(),
    ]
}

#[test]
fn max_pool_matches_the_tf_rule_and_scatters_to_argmax() {
    let mut rng = Rng::seed_from_u64(5);
    for g in pool_cases() {
        let images = 2;
        // Values on a coarse grid so windows contain ties.
        let x =
            Matrix::from_vec(images, g.input_len(), (0..images * g.input_len()).map(|_| rng.below(4) as f32).collect())
                .unwrap();
        let len = g.output_len(g.input()[2]);
        let (mut out, mut arg) = (Matrix::zeros(images, len), vec![u32::MAX; images * len]);
        max_pool_forward(out.view_mut(), Some(&mut arg), x.view(), &g);
        let (want, want_arg) = naive_max_pool(&x, &g);
        assert_eq!((out.as_slice(), &arg[..]), (&want[..], &want_arg[..]), "{g:?}");
        let mut no_arg = Matrix::zeros(images, len);
        max_pool_forward(no_arg.view_mut(), None, x.view(), &g);
        assert_eq!(no_arg, out);

        let dy = random(images, len, &mut rng);
        let mut dx = Matrix::zeros(images, g.input_len());
        max_pool_backward(dx.view_mut(), dy.view(), &arg);
        let mut want_dx = vec![0.0f32; images * g.input_len()];
        for (o, &i) in want_arg.iter().enumerate() {
            want_dx[(o / len) * g.input_len() + i as usize] += dy.as_slice()[o];
        }
        assert_eq!(dx.as_slice(), &want_dx[..], "{g:?}");
    }
}

#[test]
fn max_pool_ties_give_the_whole_gradient_to_the_first_and_nan_follows_tf() {
    let g = Window2d::pool([2, 2, 1], [2, 2], [2, 2], Padding::Valid).unwrap();
    let x = Matrix::from_vec(3, 4, vec![1., 3., 3., 3., f32::NAN, 5., 9., 1., 2., f32::NAN, 7., 7.]).unwrap();
    let (mut out, mut arg) = (Matrix::zeros(3, 1), vec![0u32; 3]);
    max_pool_forward(out.view_mut(), Some(&mut arg), x.view(), &g);
    // Ties: index 1 (first 3). A leading NaN sticks (`NaN < v` is false). A later NaN is skipped.
    assert_eq!(arg, vec![1, 0, 2]);
    assert!(out.get(1, 0).is_nan() && out.get(0, 0) == 3.0 && out.get(2, 0) == 7.0);
    let mut dx = Matrix::zeros(3, 4);
    max_pool_backward(dx.view_mut(), Matrix::from_vec(3, 1, vec![1., 2., 4.]).unwrap().view(), &arg);
    assert_eq!(dx.as_slice(), &[0., 1., 0., 0., 2., 0., 0., 0., 0., 0., 4., 0.]);
}

#[test]
fn avg_pool_same_divides_by_real_cells() {
    // 3×3 input, 2×2 pool, stride 2, same: out 2×2, pads (0, 1) on both axes.
    let g = Window2d::pool([3, 3, 1], [2, 2], [2, 2], Padding::Same).unwrap();
    assert_eq!((g.output(), g.pad_before(), g.pad_after()), ([2, 2], [0, 0], [1, 1]));
    let x = Matrix::from_vec(1, 9, (1..=9).map(|v| v as f32).collect()).unwrap();
    let mut out = Matrix::zeros(1, 4);
    avg_pool_forward(out.view_mut(), x.view(), &g);
    // (1+2+4+5)/4, (3+6)/2, (7+8)/2, 9/1 — never divided by 4 over padding.
    assert_eq!(out.as_slice(), &[3.0, 4.5, 7.5, 9.0]);
    let mut dx = Matrix::zeros(1, 9);
    avg_pool_backward(dx.view_mut(), Matrix::from_vec(1, 4, vec![4., 2., 2., 1.]).unwrap().view(), &g);
    assert_eq!(dx.as_slice(), &[1., 1., 1., 1., 1., 1., 1., 1., 1.]);

    // Valid on the same odd input drops the last row and column.
    let v = Window2d::pool([3, 3, 1], [2, 2], [2, 2], Padding::Valid).unwrap();
    let mut out = Matrix::zeros(1, 1);
    avg_pool_forward(out.view_mut(), x.view(), &v);
    assert_eq!(out.as_slice(), &[3.0]);
}

#[test]
fn avg_pool_matches_direct_loops_and_its_backward_is_the_adjoint() {
    let mut rng = Rng::seed_from_u64(9);
    for g in pool_cases() {
        let ([h, w, c], [kh, kw], [oh, ow]) = (g.input(), g.kernel(), g.output());
        let images = 2;
        let x = random(images, g.input_len(), &mut rng);
        let mut want = vec![];
        for b in 0..images {
            for oy in 0..oh {
                for ox in 0..ow {
                    for ch in 0..c {
                        let (mut sum, mut n) = (0.0f64, 0);
                        for ki in 0..kh {
                            for kj in 0..kw {
                                if let (Some(iy), Some(ix)) = (src(oy, ki, &g, 0, h), src(ox, kj, &g, 1, w)) {
                                    sum += x.get(b, (iy * w + ix) * c + ch) as f64;
                                    n += 1;
                                }
                            }
                        }
                        want.push(sum / n as f64);
                    }
                }
            }
        }
        let mut out = Matrix::zeros(images, g.output_len(c));
        avg_pool_forward(out.view_mut(), x.view(), &g);
        assert_close(out.as_slice(), &want, 1e-6, &format!("{g:?}"));
        let dy = random(images, g.output_len(c), &mut rng);
        let mut dx = Matrix::zeros(images, g.input_len());
        avg_pool_backward(dx.view_mut(), dy.view(), &g);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>();
        let (lhs, rhs) = (dot(out.as_slice(), dy.as_slice()), dot(x.as_slice(), dx.as_slice()));
        assert!((lhs - rhs).abs() < 1e-5 * (1.0 + lhs.abs()), "{g:?}: {lhs} vs {rhs}");
    }
}

#[test]
fn global_pooling_is_mean_and_first_max_per_channel() {
    let g = Window2d::global([2, 2, 2]).unwrap();
    assert_eq!((g.output(), g.output_len(2)), ([1, 1], 2));
    // Channel 0: 1, 4, 4, 2 (max 4 first at cell 1); channel 1: -1, -3, 0, 8.
    let x = Matrix::from_vec(1, 8, vec![1., -1., 4., -3., 4., 0., 2., 8.]).unwrap();
    let (mut avg, mut max, mut arg) = (Matrix::zeros(1, 2), Matrix::zeros(1, 2), vec![0u32; 2]);
    avg_pool_forward(avg.view_mut(), x.view(), &g);
    max_pool_forward(max.view_mut(), Some(&mut arg), x.view(), &g);
    assert_eq!((avg.as_slice(), max.as_slice(), &arg[..]), (&[2.75, 1.0][..], &[4., 8.][..], &[2u32, 7][..]));
    let mut dx = Matrix::zeros(1, 8);
    max_pool_backward(dx.view_mut(), Matrix::from_vec(1, 2, vec![1., 2.]).unwrap().view(), &arg);
    assert_eq!(dx.as_slice(), &[0., 0., 1., 0., 0., 0., 0., 2.]);
}

/// Largest relative error of f32 column sums against an f64 reference.
fn worst_relative(got: &[f32], exact: &[f64]) -> f64 {
    got.iter().zip(exact).map(|(&g, &e)| (g as f64 - e).abs() / e.abs().max(f64::MIN_POSITIVE)).fold(0.0, f64::max)
}

#[test]
fn blocked_column_sums_are_far_more_accurate_than_sequential_over_86k_rows() {
    // MNIST conv1 bias gradient at batch 128: 128·26·26 = 86,528 rows × 32 filters
    // (architecture-priors §3.9); plus 70 columns to cross the 64-lane pass boundary.
    let mut rng = Rng::seed_from_u64(1);
    for (cols, signed) in [(32, false), (32, true), (70, false)] {
        let rows = 86_528;
        let m: Vec<f32> =
            (0..rows * cols).map(|_| if signed { rng.uniform_in(-1.0, 1.0) + 0.1 } else { rng.uniform() }).collect();
        let mut exact = vec![0.0f64; cols];
        for row in m.chunks_exact(cols) {
            exact.iter_mut().zip(row).for_each(|(e, &v)| *e += v as f64);
        }
        let (mut seq, mut blocked) = (vec![0.0; cols], vec![f32::NAN; cols]);
        column_sums(&m, &mut seq);
        column_sums_blocked(&m, &mut blocked);
        let (e_seq, e_blk) = (worst_relative(&seq, &exact), worst_relative(&blocked, &exact));
        eprintln!(
            "{rows}×{cols} signed={signed}: sequential {e_seq:.2e}, blocked {e_blk:.2e} (unit roundoff 2^-24 = 5.96e-8)"
        );
        assert!(e_blk < 4.0 * f32::EPSILON as f64, "blocked error {e_blk:e}");
        assert!(e_blk * 10.0 < e_seq, "blocked {e_blk:e} should beat sequential {e_seq:e} by 10×");
    }
    // Short and ragged cases stay exact where exact is possible.
    let mut out = vec![0.0; 3];
    column_sums_blocked(&[1., 2., 3., 4., 5., 6.], &mut out);
    assert_eq!(out, vec![5., 7., 9.]);
    column_sums_blocked(&[], &mut out);
    assert_eq!(out, vec![0., 0., 0.]);
    let ones = vec![1.0f32; 1000 * 3];
    column_sums_blocked(&ones, &mut out);
    assert_eq!(out, vec![1000.0; 3]);
}

#[test]
#[should_panic(expected = "no dilation")]
fn pooling_refuses_a_dilated_window() {
    let g = Window2d::new([5, 5, 1], [2, 2], [1, 1], [2, 2], Padding::Valid).unwrap();
    let (x, mut out) = (Matrix::zeros(1, 25), Matrix::zeros(1, g.output_len(1)));
    avg_pool_forward(out.view_mut(), x.view(), &g);
}

/// TensorFlow's `reduce_max` gradient (what Keras' GlobalMaxPooling differentiates):
/// `[0.5, 0.5, 0]` for a channel `[2, 2, 1]` with `dy = 1`, where windowed max pooling
/// sends it all to the first maximum; three ties get `(1/3)·dy` each.
#[test]
fn global_max_backward_splits_ties_as_tensorflow() {
    use kiln_tensor::conv::global_max_backward;
    // Two images of 3 positions × 2 channels (channel 1 ties three ways in image 1).
    let x = [2.0, 5.0, 2.0, 1.0, 1.0, 0.0, /* image 1 */ 0.0, 4.0, -1.0, 4.0, -2.0, 4.0];
    let dy = [1.0, 2.0, 3.0, 0.6];
    let mut dx = [0.0f32; 12];
    global_max_backward(
        ViewMut { rows: 2, cols: 6, data: &mut dx },
        View { rows: 2, cols: 2, data: &dy },
        View { rows: 2, cols: 6, data: &x },
        2,
    );
    let third = (1.0f32 / 3.0) * 0.6;
    assert_eq!(dx, [0.5, 2.0, 0.5, 0.0, 0.0, 0.0, 3.0, third, 0.0, third, 0.0, third]);
}
