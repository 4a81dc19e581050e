//! Initializers of 1-D parameters (biases, scales, moving statistics) follow Keras'
//! `compute_fans` of a shape `(n,)`, `fan_in = fan_out = n`, and `Orthogonal`, which
//! needs two dimensions, is refused for them by name (Keras raises), never a panic.

use kiln_layers::{
    BatchNormalization, BuildContext, Conv2D, Dense, GRU, Initializer, LSTM, Layer, LayerError, LayerNormalization,
    SimpleRNN,
};
use kiln_tensor::{Rng, Shape};

fn build(layer: &mut dyn Layer, input: &[usize]) -> Result<Shape, LayerError> {
    let mut rng = Rng::seed_from_u64(7);
    let mut ctx = BuildContext::new(&mut rng, 1 << 24);
    layer.build(&Shape::new(input.to_vec()).unwrap(), &mut ctx)
}

fn refused(layer: &mut dyn Layer, input: &[usize], argument: &str) {
    let err = build(layer, input).expect_err("an Orthogonal 1-D parameter must be refused").to_string();
    assert!(err.contains(argument) && err.contains("Orthogonal"), "{err}");
}

const ORTHOGONAL: Initializer = Initializer::Orthogonal { gain: 1.0 };

#[test]
fn orthogonal_is_refused_for_one_dimensional_parameters() {
    refused(&mut Dense::new(4).bias_initializer(ORTHOGONAL), &[3], "bias_initializer");
    let mut conv = Conv2D::new(2, [2, 2]);
    conv.options.bias_initializer = ORTHOGONAL;
    refused(&mut conv, &[4, 4, 1], "bias_initializer");
    let mut rnn = SimpleRNN::new(3);
    rnn.options.bias_initializer = ORTHOGONAL;
    refused(&mut rnn, &[5, 2], "bias_initializer");
    let mut lstm = LSTM::new(3);
    lstm.options.bias_initializer = ORTHOGONAL;
    refused(&mut lstm, &[5, 2], "bias_initializer");
    let mut gru = GRU::new(3);
    gru.reset_after = false;
    gru.options.bias_initializer = ORTHOGONAL;
    refused(&mut gru, &[5, 2], "bias_initializer");
    let mut bn = BatchNormalization::new();
    bn.gamma_initializer = ORTHOGONAL;
    refused(&mut bn, &[4], "gamma_initializer");
    let mut ln = LayerNormalization::new();
    ln.beta_initializer = ORTHOGONAL;
    refused(&mut ln, &[4], "beta_initializer");

    // Where the parameter is not created, or has two dimensions, Keras builds it.
    assert!(build(&mut Dense::new(4).use_bias(false).bias_initializer(ORTHOGONAL), &[3]).is_ok());
    let mut gru = GRU::new(3);
    gru.options.bias_initializer = ORTHOGONAL; // `reset_after`: a (2, 9) bias
    build(&mut gru, &[5, 2]).unwrap();
    let bias = gru.core().params[2].value();
    // An orthogonal 2 × 9 matrix: orthonormal rows.
    let dot = |a: usize, b: usize| -> f32 { (0..9).map(|c| bias[a * 9 + c] * bias[b * 9 + c]).sum() };
    assert!((dot(0, 0) - 1.0).abs() < 1e-5 && (dot(1, 1) - 1.0).abs() < 1e-5 && dot(0, 1).abs() < 1e-5);
}

#[test]
fn an_orthogonal_conv_kernel_is_a_receptive_field_by_filters_matrix() {
    // Keras draws a (3, 3, 2, 4) kernel as an 18 × 4 matrix with orthonormal columns (it
    // used to be filled with the fans, 18 × 36 values, and panicked).
    let mut conv = Conv2D::new(4, [3, 3]).kernel_initializer(ORTHOGONAL);
    build(&mut conv, &[5, 5, 2]).unwrap();
    let k = conv.core().params[0].value();
    assert_eq!(k.len(), 18 * 4);
    for a in 0..4 {
        for b in 0..4 {
            let dot: f32 = (0..18).map(|r| k[r * 4 + a] * k[r * 4 + b]).sum();
            assert!((dot - f32::from(u8::from(a == b))).abs() < 1e-5, "columns {a}, {b}: {dot}");
        }
    }
}

#[test]
fn a_bias_draws_with_its_own_length_as_both_fans() {
    // glorot_uniform of a (64,) bias: limit √(6 / (64 + 64)) ≈ 0.217, whatever the input
    // width (1,000 here would give √(6 / 1,064) ≈ 0.075 as the fan-in).
    let limit = (6.0f32 / 128.0).sqrt();
    let mut dense = Dense::new(64).bias_initializer(Initializer::GlorotUniform);
    build(&mut dense, &[1000]).unwrap();
    let mut conv = Conv2D::new(64, [3, 3]);
    conv.options.bias_initializer = Initializer::GlorotUniform;
    build(&mut conv, &[6, 6, 20]).unwrap();
    for bias in [dense.core().params[1].value(), conv.core().params[1].value()] {
        let largest = bias.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(largest <= limit && largest > 0.75 * limit, "largest |b| = {largest}, limit {limit}");
    }
    // GRU without `reset_after`: a (9,) bias, he_uniform limit √(6 / 9).
    let mut gru = GRU::new(3);
    gru.reset_after = false;
    gru.options.bias_initializer = Initializer::HeUniform;
    build(&mut gru, &[5, 2]).unwrap();
    let largest = gru.core().params[2].value().iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(largest <= (6.0f32 / 9.0).sqrt() && largest > (6.0f32 / 1.0).sqrt() / 4.0, "{largest}");
}
