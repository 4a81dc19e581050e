//! SimpleRNN, LSTM and GRU through the public gradient check; Embedding's lookup and its
//! gradient.

use kiln_layers::testing::{GradCheck, check_gradients};
use kiln_layers::{
    Activation, BuildContext, DEFAULT_MAX_WEIGHTS, Embedding, GRU, GradOf, Initializer, LSTM, Layer, LayerInput,
    SimpleRNN,
};
use kiln_regularizers::L2;
use kiln_tensor::{IdMatrix, Matrix, Parallelism, Rng, Shape};

fn shape(dims: &[usize]) -> Shape {
    Shape::new(dims.to_vec()).unwrap()
}

fn passes(layer: &mut dyn Layer, input: &[usize]) {
    let opts = GradCheck { batch: 2, ..GradCheck::default() };
    let report = check_gradients(layer, &shape(input), &opts).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    assert!(report.checked > 0);
}

#[test]
fn simple_rnn_gradients() {
    passes(&mut SimpleRNN::new(3), &[4, 2]);
    passes(&mut SimpleRNN::new(3).return_sequences(true).use_bias(false), &[3, 2]);
    let mut relu = SimpleRNN::new(2).activation(Activation::Relu);
    relu.options.kernel_regularizer = Some(Box::new(L2::new(0.1)));
    passes(&mut relu, &[3, 3]);
}

#[test]
fn lstm_gradients() {
    passes(&mut LSTM::new(3), &[4, 2]);
    passes(&mut LSTM::new(2).return_sequences(true), &[3, 3]);
    let mut plain = LSTM::new(2).use_bias(false);
    plain.options.recurrent_regularizer = Some(Box::new(L2::new(0.05)));
    passes(&mut plain, &[3, 2]);
}

#[test]
fn gru_gradients_both_reset_variants() {
    passes(&mut GRU::new(3), &[4, 2]);
    passes(&mut GRU::new(2).return_sequences(true), &[3, 3]);
    passes(&mut GRU::new(3).reset_after(false), &[4, 2]);
    passes(&mut GRU::new(2).reset_after(false).return_sequences(true).use_bias(false), &[3, 2]);
}

#[test]
fn go_backwards_gradients() {
    passes(&mut SimpleRNN::new(2).go_backwards(true).return_sequences(true), &[3, 2]);
    passes(&mut LSTM::new(2).go_backwards(true).return_sequences(true), &[3, 3]);
    passes(&mut LSTM::new(3).go_backwards(true), &[4, 2]);
    passes(&mut GRU::new(2).go_backwards(true).return_sequences(true), &[3, 3]);
    passes(&mut GRU::new(2).reset_after(false).go_backwards(true), &[4, 2]);
}

/// `go_backwards` is the forward layer on the time-reversed input (Keras' `backend.rnn`
/// reverses the inputs and stacks the outputs in processing order): same outputs, bit for
/// bit, and the input gradient reversed back.
#[test]
fn go_backwards_is_the_forward_layer_on_reversed_steps() {
    let (batch, time, features) = (5, 4, 3);
    let mut rng = Rng::seed_from_u64(11);
    let x: Vec<f32> = (0..batch * time * features).map(|_| rng.uniform_in(-1.0, 1.0)).collect();
    let reversed: Vec<f32> = (0..batch)
        .flat_map(|i| (0..time).rev().flat_map(move |t| (0..features).map(move |f| (i * time + t) * features + f)))
        .map(|k| x[k])
        .collect();
    let run = |mut layer: Box<dyn Layer>, x: &[f32]| {
        let x = Matrix::from_vec(batch, time * features, x.to_vec()).unwrap();
        layer
            .build(&shape(&[time, features]), &mut BuildContext::new(&mut Rng::seed_from_u64(3), DEFAULT_MAX_WEIGHTS))
            .unwrap();
        layer.forward(LayerInput::Dense(x.view()), true, Parallelism::Sequential);
        let out = layer.core().output.clone();
        let mut grad =
            Matrix::from_vec(batch, out.cols(), out.as_slice().iter().map(|v| v * 0.5 - 0.1).collect()).unwrap();
        let mut dx = Matrix::zeros(0, 0);
        layer.backward(LayerInput::Dense(x.view()), &mut grad, GradOf::Output, Some(&mut dx), Parallelism::Sequential);
        let grads: Vec<Vec<f32>> = layer.params().iter().map(|p| p.grad().to_vec()).collect();
        (out, grads, dx)
    };
    let makers: [fn(bool) -> Box<dyn Layer>; 4] = [
        |b| Box::new(SimpleRNN::new(3).return_sequences(true).go_backwards(b)),
        |b| Box::new(LSTM::new(3).return_sequences(true).go_backwards(b)),
        |b| Box::new(GRU::new(3).go_backwards(b)),
        |b| Box::new(GRU::new(3).reset_after(false).return_sequences(true).go_backwards(b)),
    ];
    for make in makers {
        let (back, fwd) = (run(make(true), &x), run(make(false), &reversed));
        let name = make(true).class_name().to_string();
        assert_eq!(back.0.as_slice(), fwd.0.as_slice(), "{name}: outputs");
        assert_eq!(back.1, fwd.1, "{name}: weight gradients");
        let dx_back: Vec<f32> = (0..batch)
            .flat_map(|i| (0..time).rev().flat_map(move |t| (0..features).map(move |f| (i * time + t) * features + f)))
            .map(|k| back.2.as_slice()[k])
            .collect();
        assert_eq!(dx_back, fwd.2.as_slice(), "{name}: input gradient, reversed back");
        assert_ne!(back.0.as_slice(), run(make(false), &x).0.as_slice(), "{name}: the direction matters");
    }
}

#[test]
fn recurrent_shapes_and_keras_weight_shapes() {
    let built = |layer: &mut dyn Layer, input: &[usize]| {
        let out = layer.build(&shape(input), &mut BuildContext::new(&mut Rng::seed_from_u64(0), DEFAULT_MAX_WEIGHTS));
        let shapes: Vec<Vec<usize>> = layer.params().iter().map(|p| p.shape().to_vec()).collect();
        (out.unwrap().dims().to_vec(), shapes)
    };
    assert_eq!(built(&mut LSTM::new(4), &[7, 3]), (vec![4], vec![vec![3, 16], vec![4, 16], vec![16]]));
    assert_eq!(built(&mut GRU::new(4), &[7, 3]).1, vec![vec![3, 12], vec![4, 12], vec![2, 12]]);
    assert_eq!(built(&mut GRU::new(4).reset_after(false), &[7, 3]).1[2], vec![12]);
    assert_eq!(built(&mut SimpleRNN::new(5).return_sequences(true), &[7, 3]).0, vec![7, 5]);
    // unit_forget_bias: the forget gate's quarter starts at 1.
    let mut lstm = LSTM::new(2);
    built(&mut lstm, &[3, 1]);
    assert_eq!(lstm.params()[2].value(), &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn orthogonal_initializer_has_orthonormal_rows_or_columns() {
    for (rows, cols) in [(4, 16), (16, 4), (5, 5)] {
        let mut v = vec![0.0f32; rows * cols];
        Initializer::Orthogonal { gain: 1.0 }.fill(&mut v, rows, cols, &mut Rng::seed_from_u64(2));
        // The shorter side's vectors are orthonormal: rows when rows ≤ cols, else columns.
        let (n, len) = (rows.min(cols), rows.max(cols));
        let at = |i: usize, k: usize| if rows <= cols { v[i * cols + k] } else { v[k * cols + i] };
        for i in 0..n {
            for j in 0..n {
                let dot: f32 = (0..len).map(|k| at(i, k) * at(j, k)).sum();
                assert!((dot - f32::from(i == j)).abs() < 1e-5, "{rows}×{cols}: ⟨{i}, {j}⟩ = {dot}");
            }
        }
    }
}

#[test]
fn embedding_looks_up_rows_and_adds_the_gradients_of_repeated_ids() {
    let mut emb = Embedding::new(5, 2);
    let mut rng = Rng::seed_from_u64(1);
    let out = emb.build(&shape(&[3]), &mut BuildContext::new(&mut rng, DEFAULT_MAX_WEIGHTS)).unwrap();
    assert_eq!(out.dims(), &[3, 2]);
    emb.set_param("embeddings", &[0., 1., 10., 11., 20., 21., 30., 31., 40., 41.]).unwrap();
    let ids = IdMatrix::from_vec(2, 3, vec![1, 1, 4, 0, 3, 1]).unwrap();
    emb.forward(LayerInput::Ids(ids.view()), true, Parallelism::Sequential);
    assert_eq!(emb.output().row(0), &[10., 11., 10., 11., 40., 41.]);
    let mut grad = Matrix::from_vec(2, 6, (1..=12).map(|v| v as f32).collect()).unwrap();
    emb.backward(LayerInput::Ids(ids.view()), &mut grad, GradOf::Output, None, Parallelism::Sequential);
    // Row 1 gets positions (0,0), (0,1) and (1,2): [1+3+11, 2+4+12].
    let g = emb.params()[0].grad();
    assert_eq!(&g[2..4], &[15.0, 18.0]);
    assert_eq!(&g[4..6], &[0.0, 0.0], "an id absent from the batch has no gradient");
    assert_eq!(emb.input_ids_limit(), Some(5));
}

/// With threads, a recurrent layer splits the batch into blocks of samples that each run
/// every step apart; the outputs and every gradient must equal one thread's, bit for bit,
/// with every step's states or the last one only. Two shapes: 4 units and 48 samples × 25
/// steps (every step product small enough for faer's smallest kernels on one thread and
/// on several), and 8 units and 32 samples × 40 steps (the whole batch's step product
/// goes to faer's general kernel, a block of 16's to the small one). Both have over 1,024
/// rows: the weight gradients are summed in parts (`matmul::atb_parts`; these are too small
/// to hand the parts to threads, which `atb_parts`' own test does).
fn threads_equal_one_thread(make: impl Fn(usize, bool) -> Box<dyn Layer>) {
    for (units, batch, time) in [(4, 48, 25), (8, 32, 40)] {
        threads_equal_one_thread_at(&make, units, batch, time);
    }
}

fn threads_equal_one_thread_at(make: &impl Fn(usize, bool) -> Box<dyn Layer>, units: usize, batch: usize, time: usize) {
    let features = 3;
    let mut rng = Rng::seed_from_u64(9);
    let x = Matrix::from_vec(
        batch,
        time * features,
        (0..batch * time * features).map(|_| rng.uniform_in(-1.0, 1.0)).collect(),
    )
    .unwrap();
    let run = |par: Parallelism, sequences: bool| {
        let mut layer = make(units, sequences);
        layer
            .build(&shape(&[time, features]), &mut BuildContext::new(&mut Rng::seed_from_u64(3), DEFAULT_MAX_WEIGHTS))
            .unwrap();
        par.install(|| layer.forward(LayerInput::Dense(x.view()), true, par));
        let out = layer.core().output.clone();
        let mut grad =
            Matrix::from_vec(batch, out.cols(), out.as_slice().iter().map(|v| v * 0.5 - 0.1).collect()).unwrap();
        let mut dx = Matrix::zeros(0, 0);
        par.install(|| layer.backward(LayerInput::Dense(x.view()), &mut grad, GradOf::Output, Some(&mut dx), par));
        let grads: Vec<Vec<f32>> = layer.params().iter().map(|p| p.grad().to_vec()).collect();
        (out, grads, dx)
    };
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for sequences in [true, false] {
        let one = run(Parallelism::Sequential, sequences);
        assert!(one.1[1].iter().any(|&g| g != 0.0), "the recurrent kernel's gradient is exercised");
        for threads in [2, 3] {
            let many = run(Parallelism::threads(threads), sequences);
            let at = format!("{units} units, batch {batch}, {threads} threads, return_sequences={sequences}");
            assert_eq!(bits(many.0.as_slice()), bits(one.0.as_slice()), "outputs, {at}");
            for (k, (a, b)) in one.1.iter().zip(&many.1).enumerate() {
                assert_eq!(bits(b), bits(a), "gradient of weight {k}, {at}");
            }
            assert_eq!(bits(many.2.as_slice()), bits(one.2.as_slice()), "input gradient, {at}");
        }
    }
}

#[test]
fn lstm_with_threads_equals_one_thread() {
    threads_equal_one_thread(|units, sequences| Box::new(LSTM::new(units).return_sequences(sequences)));
}

#[test]
fn simple_rnn_with_threads_equals_one_thread() {
    threads_equal_one_thread(|units, sequences| Box::new(SimpleRNN::new(units).return_sequences(sequences)));
}

#[test]
fn gru_with_threads_equals_one_thread() {
    for after in [true, false] {
        threads_equal_one_thread(|units, sequences| {
            Box::new(GRU::new(units).reset_after(after).return_sequences(sequences))
        });
    }
}
