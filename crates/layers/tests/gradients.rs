//! Finite-difference checks of every layer, activation and regularizer placement.
//!
//! The scalar checked is `L = Σ r ⊙ output + penalties` for fixed random `r`, so
//! `∂L/∂output = r`; the analytic gradients from `backward` must match central
//! differences of `L` computed in f64 from f32 forwards.

use kiln_layers::{Activation, Dense, Dropout, GradOf, Layer, LayerInput};
use kiln_regularizers::{L1L2, L2};
use kiln_tensor::{CsrMatrix, Matrix, Par, Rng};

const ACTIVATIONS: [Activation; 5] =
    [Activation::Linear, Activation::Relu, Activation::Sigmoid, Activation::Softmax, Activation::Tanh];

fn random(rows: usize, cols: usize, rng: &mut Rng) -> Matrix {
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap()
}

fn objective(layer: &mut dyn Layer, x: &Matrix, r: &Matrix, from_logits: bool) -> f64 {
    layer.forward(LayerInput::Dense(x.view()), true, Par::Seq);
    let out = if from_logits { layer.logits().unwrap() } else { layer.output() };
    let mut total: f64 = out.as_slice().iter().zip(r.as_slice()).map(|(a, b)| (a * b) as f64).sum();
    total += layer.activity_penalty() as f64;
    layer.visit_weight_penalties(&mut |p| total += p as f64);
    total
}

fn check(mut layer: Dense, from_logits: bool) {
    let mut rng = Rng::seed_from_u64(3);
    let (n, d) = (4, 5);
    layer.build(d, &mut rng).unwrap();
    // Keep relu inputs away from the kink so differences are meaningful.
    let x = random(n, d, &mut rng);
    let r = random(n, layer.units, &mut rng);
    objective(&mut layer, &x, &r, from_logits);
    let mut grad = r.clone();
    let mut grad_x = Matrix::default();
    let of = if from_logits { GradOf::Logits } else { GradOf::Output };
    layer.backward(LayerInput::Dense(x.view()), &mut grad, of, Some(&mut grad_x), Par::Seq);
    let mut analytic: Vec<(String, Vec<f32>)> = Vec::new();
    layer.visit_params_mut(&mut |name, _, g| analytic.push((name.to_string(), g.to_vec())));

    let h = 1e-2f32;
    for (name, g) in &analytic {
        let base = layer.param(name).unwrap().to_vec();
        for i in 0..base.len() {
            let mut at = |delta: f32| {
                let mut w = base.clone();
                w[i] += delta;
                layer.set_param(name, &w).unwrap();
                objective(&mut layer, &x, &r, from_logits)
            };
            let fd = (at(h) - at(-h)) / (2.0 * h as f64);
            let tol = 2e-3 + 2e-2 * fd.abs();
            assert!((fd - g[i] as f64).abs() < tol, "{:?} {name}[{i}]: fd {fd} vs {}", layer.activation, g[i]);
        }
        layer.set_param(name, &base).unwrap();
    }
    for i in 0..x.as_slice().len() {
        let mut at = |delta: f32| {
            let mut xs = x.clone();
            xs.as_mut_slice()[i] += delta;
            objective(&mut layer, &xs, &r, from_logits)
        };
        let fd = (at(h) - at(-h)) / (2.0 * h as f64);
        let got = grad_x.as_slice()[i] as f64;
        assert!((fd - got).abs() < 2e-3 + 2e-2 * fd.abs(), "{:?} x[{i}]: fd {fd} vs {got}", layer.activation);
    }
}

#[test]
fn dense_gradients_for_every_activation() {
    for act in ACTIVATIONS {
        check(Dense::new(3).activation(act).bias_initializer(kiln_layers::Initializer::Constant { value: 0.3 }), false);
    }
}

#[test]
fn dense_gradients_from_logits() {
    for act in [Activation::Softmax, Activation::Sigmoid] {
        check(Dense::new(3).activation(act), true);
    }
}

#[test]
fn dense_gradients_with_every_regularizer_placement() {
    for act in ACTIVATIONS {
        let layer = Dense::new(3)
            .activation(act)
            .kernel_regularizer(L1L2::new(0.01, 0.02))
            .bias_regularizer(L2::new(0.05))
            .activity_regularizer(L2::new(0.1))
            .bias_initializer(kiln_layers::Initializer::Constant { value: 0.2 });
        check(layer.clone(), false);
        if matches!(act, Activation::Softmax | Activation::Sigmoid) {
            check(layer, true);
        }
    }
}

#[test]
fn sparse_input_matches_dense_input() {
    let mut rng = Rng::seed_from_u64(9);
    let mut dense = Dense::new(4).activation(Activation::Relu);
    dense.build(6, &mut rng).unwrap();
    let mut sparse_layer = dense.clone();
    let mut csr = CsrMatrix::with_cols(6);
    csr.push_row(&[0, 4], &[1.0, 1.0]).unwrap();
    csr.push_row(&[1, 2, 5], &[1.0, 1.0, 1.0]).unwrap();
    let x = csr.to_dense();
    dense.forward(LayerInput::Dense(x.view()), true, Par::Seq);
    sparse_layer.forward(LayerInput::Sparse(&csr), true, Par::Seq);
    assert_eq!(dense.output(), sparse_layer.output());
    let r = random(2, 4, &mut rng);
    let (mut g1, mut g2) = (r.clone(), r);
    dense.backward(LayerInput::Dense(x.view()), &mut g1, GradOf::Output, None, Par::Seq);
    sparse_layer.backward(LayerInput::Sparse(&csr), &mut g2, GradOf::Output, None, Par::Seq);
    let mut grads = Vec::new();
    dense.visit_params_mut(&mut |_, _, g| grads.push(g.to_vec()));
    let mut k = 0;
    sparse_layer.visit_params_mut(&mut |_, _, g| {
        assert!(g.iter().zip(&grads[k]).all(|(a, b)| (a - b).abs() < 1e-6));
        k += 1;
    });
}

#[test]
fn dropout_scales_kept_values_and_is_identity_at_inference() {
    let mut rng = Rng::seed_from_u64(1);
    let mut drop = Dropout::new(0.5).seed(42);
    drop.build(1000, &mut rng).unwrap();
    let x = Matrix::from_vec(2, 1000, vec![1.0; 2000]).unwrap();
    drop.forward(LayerInput::Dense(x.view()), false, Par::Seq);
    assert_eq!(drop.output(), &x);
    drop.forward(LayerInput::Dense(x.view()), true, Par::Seq);
    let out = drop.output().as_slice().to_vec();
    assert!(out.iter().all(|&v| v == 0.0 || v == 2.0));
    let kept = out.iter().filter(|&&v| v == 2.0).count();
    assert!((900..1100).contains(&kept), "kept {kept} of 2000 at rate 0.5");
    // The gradient passes exactly where values were kept, with the same scale.
    let mut g = Matrix::from_vec(2, 1000, vec![1.0; 2000]).unwrap();
    let mut gx = Matrix::default();
    drop.backward(LayerInput::Dense(x.view()), &mut g, GradOf::Output, Some(&mut gx), Par::Seq);
    assert_eq!(gx.as_slice(), &out[..]);
}

#[test]
fn dropout_same_seed_same_mask() {
    let make = || {
        let mut d = Dropout::new(0.2).seed(7);
        d.build(50, &mut Rng::seed_from_u64(0)).unwrap();
        let x = Matrix::from_vec(1, 50, vec![1.0; 50]).unwrap();
        d.forward(LayerInput::Dense(x.view()), true, Par::Seq);
        d.output().clone()
    };
    assert_eq!(make(), make());
    assert!(Dropout::new(1.0).build(3, &mut Rng::seed_from_u64(0)).is_err());
}

#[test]
fn set_param_errors_name_layer_and_shape() {
    let mut d = Dense::new(2).name("dense_7");
    assert!(d.set_param("kernel", &[0.0; 6]).unwrap_err().to_string().contains("not built"));
    d.build(3, &mut Rng::seed_from_u64(0)).unwrap();
    let err = d.set_param("kernel", &[0.0; 5]).unwrap_err().to_string();
    assert!(err.contains("dense_7") && err.contains("[3, 2]") && err.contains('5'), "{err}");
    assert!(d.set_param("gamma", &[0.0]).unwrap_err().to_string().contains("kernel, bias"));
}

#[test]
fn glorot_uniform_respects_its_limit() {
    let mut d = Dense::new(20);
    d.build(30, &mut Rng::seed_from_u64(5)).unwrap();
    let limit = (6.0f32 / 50.0).sqrt();
    let k = d.param("kernel").unwrap();
    assert!(k.iter().all(|v| v.abs() <= limit));
    assert!(k.iter().any(|v| v.abs() > 0.8 * limit), "values should fill the range");
    assert!(d.param("bias").unwrap().iter().all(|&b| b == 0.0));
}
