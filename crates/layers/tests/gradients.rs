//! Finite-difference checks of every layer, activation and regularizer placement, through
//! the public checker `kiln_layers::testing::check_gradients`.

use kiln_layers::testing::{GradCheck, check_gradients};
use kiln_layers::{Activation, BuildContext, DEFAULT_MAX_WEIGHTS, Dense, Dropout, GradOf, Layer, LayerInput};
use kiln_regularizers::{L1L2, L2};
use kiln_tensor::{CsrMatrix, Matrix, Parallelism, Rng, Shape};

const SEQ: Parallelism = Parallelism::Sequential;

/// Builds `layer` for flat rows of `width` from `rng` with the default budget.
fn build(layer: &mut dyn Layer, width: usize, rng: &mut Rng) -> Result<Shape, kiln_layers::LayerError> {
    layer.build(&Shape::flat(width), &mut BuildContext::new(rng, DEFAULT_MAX_WEIGHTS))
}

const ACTIVATIONS: [Activation; 5] =
    [Activation::Linear, Activation::Relu, Activation::Sigmoid, Activation::Softmax, Activation::Tanh];

fn random(rows: usize, cols: usize, rng: &mut Rng) -> Matrix {
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap()
}

/// The public check on 4 samples of 5 features (and from the logits when asked).
fn check(mut layer: Dense, from_logits: bool) {
    let opts = GradCheck { batch: 4, seed: 3, from_logits, ..GradCheck::default() };
    let report = check_gradients(&mut layer, &Shape::flat(5), &opts).unwrap_or_else(|e| panic!("{e}"));
    // 5×3 kernel + 3 biases + 4×5 inputs, element-wise, in each mode checked.
    let modes = if from_logits { 2 } else { 1 };
    assert_eq!(report.checked + report.skipped, modes * (15 + layer.params().get(1).map_or(0, |b| b.len()) + 20));
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
    build(&mut dense, 6, &mut rng).unwrap();
    let mut sparse_layer = dense.clone();
    let mut csr = CsrMatrix::with_cols(6);
    csr.push_row(&[0, 4], &[1.0, 1.0]).unwrap();
    csr.push_row(&[1, 2, 5], &[1.0, 1.0, 1.0]).unwrap();
    let x = csr.to_dense();
    dense.forward(LayerInput::Dense(x.view()), true, SEQ);
    sparse_layer.forward(LayerInput::Sparse(&csr), true, SEQ);
    assert_eq!(dense.output(), sparse_layer.output());
    let r = random(2, 4, &mut rng);
    let (mut g1, mut g2) = (r.clone(), r);
    dense.backward(LayerInput::Dense(x.view()), &mut g1, GradOf::Output, None, SEQ);
    sparse_layer.backward(LayerInput::Sparse(&csr), &mut g2, GradOf::Output, None, SEQ);
    assert_eq!(dense.params().len(), 2);
    for (a, b) in dense.params().iter().zip(sparse_layer.params()) {
        assert!(a.grad().iter().zip(b.grad()).all(|(a, b)| (a - b).abs() < 1e-6), "{}", a.name());
    }
}

#[test]
fn dropout_scales_as_keras_rounds_its_float64_rate() {
    // Keras' scale 1/(1 − 0.04), computed from the Python float and rounded once:
    // 1.0416666 (float32 arithmetic gives 1.0416667).
    let mut drop = Dropout::new(0.04).seed(3);
    build(&mut drop, 100, &mut Rng::seed_from_u64(1)).unwrap();
    let x = Matrix::from_vec(1, 100, vec![1.0; 100]).unwrap();
    drop.forward(LayerInput::Dense(x.view()), true, SEQ);
    let kept: Vec<f32> = drop.output().as_slice().iter().copied().filter(|&v| v != 0.0).collect();
    assert!(!kept.is_empty() && kept.iter().all(|&v| v == 1.041_666_6), "{kept:?}");
    assert_ne!(1.041_666_6_f32, 1.0 / (1.0 - 0.04_f32));
}

#[test]
fn dropout_scales_kept_values_and_is_identity_at_inference() {
    let mut rng = Rng::seed_from_u64(1);
    let mut drop = Dropout::new(0.5).seed(42);
    build(&mut drop, 1000, &mut rng).unwrap();
    let x = Matrix::from_vec(2, 1000, vec![1.0; 2000]).unwrap();
    drop.forward(LayerInput::Dense(x.view()), false, SEQ);
    assert_eq!(drop.output(), &x);
    drop.forward(LayerInput::Dense(x.view()), true, SEQ);
    let out = drop.output().as_slice().to_vec();
    assert!(out.iter().all(|&v| v == 0.0 || v == 2.0));
    let kept = out.iter().filter(|&&v| v == 2.0).count();
    assert!((900..1100).contains(&kept), "kept {kept} of 2000 at rate 0.5");
    // The gradient passes exactly where values were kept, with the same scale.
    let mut g = Matrix::from_vec(2, 1000, vec![1.0; 2000]).unwrap();
    let mut gx = Matrix::default();
    drop.backward(LayerInput::Dense(x.view()), &mut g, GradOf::Output, Some(&mut gx), SEQ);
    assert_eq!(gx.as_slice(), &out[..]);
}

#[test]
fn dropout_same_seed_same_mask() {
    let make = || {
        let mut d = Dropout::new(0.2).seed(7);
        build(&mut d, 50, &mut Rng::seed_from_u64(0)).unwrap();
        let x = Matrix::from_vec(1, 50, vec![1.0; 50]).unwrap();
        d.forward(LayerInput::Dense(x.view()), true, SEQ);
        d.output().clone()
    };
    assert_eq!(make(), make());
    assert!(build(&mut Dropout::new(1.0), 3, &mut Rng::seed_from_u64(0)).is_err());
}

#[test]
fn parameters_are_values_with_names_shapes_and_regularizers() {
    let mut d = Dense::new(2).name("dense_7").kernel_regularizer(L2::new(0.1));
    assert!(d.params().is_empty(), "no parameters before build");
    build(&mut d, 3, &mut Rng::seed_from_u64(0)).unwrap();
    let names: Vec<(&str, &[usize], bool)> =
        d.params().iter().map(|p| (p.name(), p.shape(), p.regularizer().is_some())).collect();
    assert_eq!(names, [("kernel", &[3usize, 2][..], true), ("bias", &[2][..], false)]);
    let err = d.param_mut("kernel").unwrap().set_value("dense_7", &[0.0; 5]).unwrap_err().to_string();
    assert!(err.contains("dense_7") && err.contains("[3, 2]") && err.contains('5'), "{err}");
    assert!(d.param_mut("gamma").is_none());
    let err = d.set_param("gamma", &[0.0]).unwrap_err().to_string();
    assert!(err.contains("no parameter `gamma` (it has: kernel, bias)"), "{err}");
    d.set_param("bias", &[1.0, 2.0]).unwrap();
    assert_eq!(d.params()[1].value(), &[1.0, 2.0]);
    assert_eq!(Dense::new(4).use_bias(false).name("x").class_name(), "Dense");
    assert_eq!(Dropout::new(0.1).class_name(), "Dropout");
}

#[test]
fn bad_configurations_are_refused_when_built() {
    let err = |mut d: Dense| build(&mut d, 3, &mut Rng::seed_from_u64(0)).unwrap_err().to_string();
    assert!(err(Dense::new(0)).contains("units (0)"));
    assert!(err(Dense::new(2).kernel_regularizer(L2::new(-1.0))).contains("kernel_regularizer"));
    let init = kiln_layers::Initializer::RandomUniform { minval: 1.0, maxval: -1.0 };
    assert!(err(Dense::new(2).kernel_initializer(init)).contains("`minval` (1) must not exceed"));
    assert!(err(Dense::new(1 << 27)).contains("past the 268435456 weights"));
    // The budget is checked before allocating: a 1-weight budget refuses a 3×2 kernel.
    let mut tight = Dense::new(2);
    let e = tight.build(&Shape::flat(3), &mut BuildContext::new(&mut Rng::seed_from_u64(0), 1)).unwrap_err();
    assert!(e.to_string().contains("`kernel` of shape [3, 2]"), "{e}");
    for rate in [1.0, -0.1, f64::NAN] {
        assert!(
            build(&mut Dropout::new(rate), 3, &mut Rng::seed_from_u64(0))
                .unwrap_err()
                .to_string()
                .contains("argument `rate`")
        );
    }
}

#[test]
fn glorot_uniform_respects_its_limit() {
    let mut d = Dense::new(20);
    build(&mut d, 30, &mut Rng::seed_from_u64(5)).unwrap();
    let limit = (6.0f32 / 50.0).sqrt();
    let k = d.params()[0].value();
    assert!(k.iter().all(|v| v.abs() <= limit));
    assert!(k.iter().any(|v| v.abs() > 0.8 * limit), "values should fill the range");
    assert!(d.params()[1].value().iter().all(|&b| b == 0.0));
}

#[test]
fn normal_initializers_have_keras_deviations() {
    // Keras' VarianceScaling: σ² = scale / n for the *truncated* draws (hence the 0.8796
    // correction), e.g. GlorotNormal on a 200×300 kernel: σ = √(2/500) ≈ 0.0632.
    use kiln_layers::Initializer;
    let std_of = |init: Initializer, fan_in: usize, fan_out: usize| {
        let mut v = vec![0.0f32; fan_in * fan_out];
        init.fill(&mut v, fan_in, fan_out, &mut Rng::seed_from_u64(1));
        (v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    let close = |got: f64, want: f64| (got - want).abs() < 0.02 * want;
    assert!(close(std_of(Initializer::GlorotNormal, 200, 300), (2.0f64 / 500.0).sqrt()));
    assert!(close(std_of(Initializer::HeNormal, 200, 300), (2.0f64 / 200.0).sqrt()));
    assert!(close(std_of(Initializer::LecunNormal, 200, 300), (1.0f64 / 200.0).sqrt()));
    assert!(close(std_of(Initializer::LecunUniform, 200, 300), (1.0f64 / 200.0).sqrt()));
    assert!(close(std_of(Initializer::RandomNormal { mean: 0.0, stddev: 0.05 }, 200, 300), 0.05));
    assert!(Initializer::RandomNormal { mean: 0.0, stddev: -1.0 }.validate().is_err());
}

#[test]
fn dense_on_the_last_axis_of_a_shaped_input() {
    // [2, 4] per sample: every one of the 2 positions goes through the same kernel.
    for act in [Activation::Relu, Activation::Softmax, Activation::Tanh] {
        let mut layer = Dense::new(3).activation(act).kernel_regularizer(L2::new(0.01));
        let opts = GradCheck { batch: 3, seed: 5, ..GradCheck::default() };
        check_gradients(&mut layer, &Shape::new([2, 4]).unwrap(), &opts).unwrap_or_else(|e| panic!("{e}"));
    }
    // Bit for bit the flat layer applied to each position's row.
    let mut rng = Rng::seed_from_u64(2);
    let mut shaped = Dense::new(3).activation(Activation::Sigmoid);
    let out = shaped.build(&Shape::new([2, 4]).unwrap(), &mut BuildContext::new(&mut rng, DEFAULT_MAX_WEIGHTS));
    assert_eq!(out.unwrap().dims(), &[2, 3]);
    let mut flat = shaped.clone();
    build(&mut flat, 4, &mut rng).unwrap();
    flat.set_param("kernel", shaped.params()[0].value()).unwrap();
    let x = random(3, 8, &mut rng);
    shaped.forward(LayerInput::Dense(x.view()), false, SEQ);
    let rows = Matrix::from_vec(6, 4, x.as_slice().to_vec()).unwrap();
    flat.forward(LayerInput::Dense(rows.view()), false, SEQ);
    assert_eq!(shaped.output().as_slice(), flat.output().as_slice());
    assert_eq!((shaped.output().rows(), shaped.output().cols()), (3, 6));
}

#[test]
fn dropout_passes_the_check_with_its_mask_replayed() {
    let mut layer = Dropout::new(0.4).seed(11);
    let report = check_gradients(&mut layer, &Shape::new([3, 2]).unwrap(), &GradCheck::default()).unwrap();
    assert_eq!(report.checked + report.skipped, 3 * 6);
}

/// A layer whose backward is wrong by a factor: the checker must catch it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct WrongDouble {
    core: kiln_layers::LayerCore,
}

#[typetag::serde]
impl Layer for WrongDouble {
    fn core(&self) -> &kiln_layers::LayerCore {
        &self.core
    }
    fn core_mut(&mut self) -> &mut kiln_layers::LayerCore {
        &mut self.core
    }
    fn build(&mut self, input: &Shape, _ctx: &mut BuildContext<'_>) -> Result<Shape, kiln_layers::LayerError> {
        Ok(input.clone())
    }
    fn forward(&mut self, input: LayerInput<'_>, _training: bool, _par: Parallelism) {
        let LayerInput::Dense(x) = input else { unreachable!() };
        self.core.output.resize(x.rows, x.cols);
        self.core.output.as_mut_slice().iter_mut().zip(x.data).for_each(|(y, x)| *y = 2.0 * x);
    }
    fn backward(&mut self, _: LayerInput<'_>, g: &mut Matrix, _: GradOf, gi: Option<&mut Matrix>, _: Parallelism) {
        let gi = gi.unwrap();
        gi.resize(g.rows(), g.cols());
        // Wrong: y = 2x, so dx = 2·g, not 1.9·g.
        gi.as_mut_slice().iter_mut().zip(g.as_slice()).for_each(|(d, g)| *d = 1.9 * g);
    }
}

#[test]
fn the_check_catches_a_wrong_backward_elementwise_and_along_directions() {
    let mut small = WrongDouble { core: Default::default() };
    let err = check_gradients(&mut small, &Shape::flat(4), &GradCheck::default()).unwrap_err();
    assert!(err.contains("input[") && err.contains("backward gives"), "{err}");
    let mut large = WrongDouble { core: Default::default() };
    let err = check_gradients(&mut large, &Shape::new([30, 30]).unwrap(), &GradCheck::default()).unwrap_err();
    assert!(err.contains("random direction"), "{err}");
}

#[test]
fn flatten_and_reshape_pass_the_check_and_keep_the_values() {
    use kiln_layers::{Flatten, Reshape};
    let opts = GradCheck::default();
    let mut flatten = Flatten::new();
    check_gradients(&mut flatten, &Shape::new([2, 3, 2]).unwrap(), &opts).unwrap();
    let mut reshape = Reshape::new([-1, 3]);
    check_gradients(&mut reshape, &Shape::new([2, 3, 2]).unwrap(), &opts).unwrap();
    let out = |layer: &dyn Layer, dims: &[usize]| layer.planned(&Shape::new(dims.to_vec()).unwrap()).map(|p| p.1);
    assert_eq!(out(&Reshape::new([-1, 3]), &[2, 3, 2]).unwrap().dims(), &[4, 3]);
    assert_eq!(out(&Flatten::new(), &[2, 3, 2]).unwrap().dims(), &[12]);
    assert!(out(&Reshape::new([5, -1]), &[2, 3, 2]).is_none(), "12 values are not rows of 5");
    assert!(Reshape::new([-1, -1]).validate_target().unwrap_err().contains("more than one -1"));
    assert!(Reshape::new([0, 4]).validate_target().unwrap_err().contains("not a size"));
    let err = Reshape::new([5, 3]).resolve(&Shape::new([2, 3, 2]).unwrap()).unwrap_err();
    assert!(err.contains("12 values") && err.contains("15 values"), "{err}");
}
