//! BatchNormalization and LayerNormalization: the public gradient check, the moving
//! statistics, and inference with them.

use kiln_layers::testing::{GradCheck, check_gradients};
use kiln_layers::{BatchNormalization, BuildContext, DEFAULT_MAX_WEIGHTS, Layer, LayerInput, LayerNormalization};
use kiln_regularizers::L2;
use kiln_tensor::{Matrix, Parallelism, Rng, Shape};

fn shape(dims: &[usize]) -> Shape {
    Shape::new(dims.to_vec()).unwrap()
}

#[test]
fn batch_normalization_gradients_with_and_without_center_and_scale() {
    let opts = GradCheck { batch: 4, ..GradCheck::default() };
    for (center, scale) in [(true, true), (false, true), (true, false), (false, false)] {
        let mut bn = BatchNormalization::new().center(center).scale(scale);
        bn.gamma_regularizer = Some(Box::new(L2::new(0.1)));
        check_gradients(&mut bn, &shape(&[3, 2]), &opts).unwrap_or_else(|e| panic!("{center} {scale}: {e}"));
    }
    // Images: statistics over batch × h × w per channel; a realistic size, along directions.
    let big = GradCheck { batch: 8, ..GradCheck::default() };
    check_gradients(&mut BatchNormalization::new(), &shape(&[10, 10, 16]), &big).unwrap();
}

#[test]
fn layer_normalization_gradients_on_rank_1_and_rank_2_samples() {
    let opts = GradCheck { batch: 3, ..GradCheck::default() };
    for (center, scale) in [(true, true), (false, true), (true, false)] {
        let mut ln = LayerNormalization::new().center(center).scale(scale);
        check_gradients(&mut ln, &shape(&[5]), &opts).unwrap_or_else(|e| panic!("{center} {scale}: {e}"));
        let mut ln = LayerNormalization::new().center(center).scale(scale);
        check_gradients(&mut ln, &shape(&[3, 4]), &opts).unwrap_or_else(|e| panic!("{center} {scale}: {e}"));
    }
}

#[test]
fn batch_normalization_moves_its_statistics_in_training_and_uses_them_otherwise() {
    let mut bn = BatchNormalization::new().momentum(0.9);
    let mut rng = Rng::seed_from_u64(0);
    bn.build(&shape(&[2]), &mut BuildContext::new(&mut rng, DEFAULT_MAX_WEIGHTS)).unwrap();
    let names: Vec<(&str, bool)> = bn.params().iter().map(|p| (p.name(), p.is_trainable())).collect();
    assert_eq!(names, [("gamma", true), ("beta", true), ("moving_mean", false), ("moving_variance", false)]);
    // Channel 0: 1, 3 (mean 2, biased variance 1); channel 1: 4, 4 (mean 4, variance 0).
    let x = Matrix::from_rows(&[[1.0, 4.0], [3.0, 4.0]]).unwrap();
    bn.forward(LayerInput::Dense(x.view()), true, Parallelism::Sequential);
    // moving = moving·0.9 + batch·0.1 (f32 constants).
    let (m, one_minus) = (0.9f32, (1.0f64 - 0.9) as f32);
    assert_eq!(bn.params()[2].value(), &[2.0 * one_minus, 4.0 * one_minus]);
    assert_eq!(bn.params()[3].value(), &[m + one_minus, m]);
    // Training output uses the batch's statistics: ±1/√(1 + ε).
    let want = 1.0 / (1.0f32 + 1e-3).sqrt();
    assert_eq!(bn.output().row(0)[0], 1.0 * want - 2.0 * want);
    // Inference uses the moving ones: the same input gives another output.
    bn.forward(LayerInput::Dense(x.view()), false, Parallelism::Sequential);
    let inv = 1.0 / (bn.params()[3].value()[0] + 1e-3).sqrt();
    assert_eq!(bn.output().row(0)[0], 1.0 * inv + (0.0 - bn.params()[2].value()[0] * inv));
}

#[test]
fn normalization_refuses_what_it_does_not_compute() {
    let build = |layer: &mut dyn Layer, dims: &[usize]| {
        layer.build(&shape(dims), &mut BuildContext::new(&mut Rng::seed_from_u64(0), DEFAULT_MAX_WEIGHTS))
    };
    let mut bn = BatchNormalization::new();
    bn.axis = 1;
    let err = build(&mut bn, &[4, 4, 3]).unwrap_err().to_string();
    assert!(err.contains("argument `axis` = 1"), "{err}");
    bn.axis = 3;
    assert!(build(&mut bn, &[4, 4, 3]).is_ok(), "3 is the last axis counting the batch");
    let err = build(&mut BatchNormalization::new().momentum(1.5), &[3]).unwrap_err().to_string();
    assert!(err.contains("momentum"), "{err}");
    let err = build(&mut LayerNormalization::new().epsilon(0.0), &[3]).unwrap_err().to_string();
    assert!(err.contains("epsilon"), "{err}");
}

/// A frozen BatchNormalization (Keras `trainable = False`) normalizes with its moving
/// statistics even in training, leaves them alone, and its input gradient is that of the
/// inference formula; γ and β are frozen, so they get no gradient and are not checked.
#[test]
fn frozen_batch_normalization_runs_in_inference_mode_in_training() {
    use kiln_layers::Trainable;
    let opts = GradCheck { batch: 4, ..GradCheck::default() };
    let mut bn = BatchNormalization::new().trainable(false);
    let report = check_gradients(&mut bn, &shape(&[3, 2]), &opts).unwrap();
    assert!(report.checked > 0);
    assert!(bn.params().iter().all(|p| !p.is_trainable()), "every weight of a frozen layer is frozen");

    let mut rng = Rng::seed_from_u64(0);
    let mut bn = BatchNormalization::new().momentum(0.9).trainable(false);
    bn.build(&shape(&[2]), &mut BuildContext::new(&mut rng, DEFAULT_MAX_WEIGHTS)).unwrap();
    let x = Matrix::from_rows(&[[1.0, 4.0], [3.0, 4.0]]).unwrap();
    bn.forward(LayerInput::Dense(x.view()), false, Parallelism::Sequential);
    let inference = bn.output().clone();
    bn.forward(LayerInput::Dense(x.view()), true, Parallelism::Sequential);
    assert_eq!(bn.output(), &inference, "a frozen layer's training forward is its inference forward");
    assert_eq!(bn.params()[2].value(), &[0.0, 0.0], "moving mean unchanged");
    assert_eq!(bn.params()[3].value(), &[1.0, 1.0], "moving variance unchanged");
}

/// Keras refuses a negative, NaN or infinite regularizer factor when the regularizer is
/// made (`validate_float_arg`); kiln's normalization layers check theirs at build, as the
/// other layers do, naming the argument.
#[test]
fn normalization_regularizer_factors_are_checked_at_build() {
    let build = |layer: &mut dyn Layer| {
        let mut rng = Rng::seed_from_u64(7);
        layer.build(&Shape::new(vec![4]).unwrap(), &mut BuildContext::new(&mut rng, 1 << 20)).map(|_| ())
    };
    let mut bn = BatchNormalization::new();
    bn.gamma_regularizer = Some(Box::new(L2::new(-1.0)));
    let err = build(&mut bn).unwrap_err().to_string();
    assert!(err.contains("gamma_regularizer"), "{err}");
    let mut ln = LayerNormalization::new();
    ln.beta_regularizer = Some(Box::new(L2::new(f32::NAN)));
    let err = build(&mut ln).unwrap_err().to_string();
    assert!(err.contains("beta_regularizer"), "{err}");
    ln.beta_regularizer = Some(Box::new(L2::new(0.01)));
    build(&mut ln).unwrap();
}
