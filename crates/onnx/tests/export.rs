//! Exported ONNX models predict what kiln predicts, in an independent runtime
//! (onnxruntime through Python, with onnx's full checker first).

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln_layers::{
    Activation, ActivationLayer, Add, Average, AveragePooling1D, AveragePooling2D, BatchNormalization, Concatenate,
    Conv1D, Conv2D, Dense, Dropout, Embedding, Flatten, GRU, GlobalAveragePooling1D, GlobalAveragePooling2D,
    GlobalMaxPooling1D, GlobalMaxPooling2D, LSTM, LayerNormalization, MaxPooling1D, MaxPooling2D, Maximum, Minimum,
    Multiply, Reshape, SimpleRNN, Subtract,
};
use kiln_optimizers::{Optimizer, RMSprop};
use kiln_tensor::{Matrix, Padding, Rng};
use kiln_trainer::{FeaturesRef, FitOptions, Functional, Loss, NO_METRICS, Sequential, Source, Verbosity};

/// A Python that can import onnxruntime and onnx: `KILN_ONNX_PYTHON`, else `python3`.
fn onnx_python() -> Option<String> {
    let python = std::env::var("KILN_ONNX_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&python).args(["-c", "import onnxruntime, onnx"]).output().is_ok_and(|o| o.status.success());
    ok.then_some(python)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-onnx-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uniform(rows: usize, cols: usize, seed: u64) -> Matrix {
    let mut rng = Rng::seed_from_u64(seed);
    Matrix::from_vec(rows, cols, (0..rows * cols).map(|_| rng.uniform_in(-2.0, 2.0)).collect()).unwrap()
}

/// Every activation, a layer without bias and Dropout layers, trained a little so the
/// biases are not zero.
fn models() -> Vec<(&'static str, Sequential)> {
    let stack = |seed: u64, layers: Vec<Box<dyn kiln_layers::Layer>>| {
        let mut m = Sequential::new().seed(seed);
        for l in layers {
            m.push(l);
        }
        m
    };
    let mut out = vec![
        (
            "keras_3_activations",
            stack(
                7,
                vec![
                    Box::new(Dense::new(9).activation(Activation::Relu6)),
                    Box::new(Dense::new(9).activation(Activation::Elu)),
                    Box::new(Dense::new(9).activation(Activation::Selu)),
                    Box::new(Dense::new(9).activation(Activation::LeakyRelu)),
                    Box::new(Dense::new(9).activation(Activation::Softplus)),
                    Box::new(ActivationLayer::new(Activation::Silu)),
                    Box::new(Dense::new(9).activation(Activation::Gelu)),
                    Box::new(Dense::new(9).activation(Activation::HardSigmoid)),
                    Box::new(Dense::new(9).activation(Activation::Softsign)),
                    Box::new(Dense::new(9).activation(Activation::Mish)),
                    Box::new(ActivationLayer::new(Activation::Exponential)),
                    Box::new(Dense::new(3)),
                ],
            ),
        ),
        (
            "every_activation",
            stack(
                1,
                vec![
                    Box::new(Dense::new(9).activation(Activation::Relu)),
                    Box::new(Dropout::new(0.5)),
                    Box::new(Dense::new(8).activation(Activation::Tanh).use_bias(false)),
                    Box::new(Dense::new(7).activation(Activation::Sigmoid)),
                    Box::new(Dense::new(6)),
                    Box::new(Dense::new(4).activation(Activation::Softmax)),
                ],
            ),
        ),
        ("normalized", {
            // Adapted per feature (wildly different scales), a constant inverted one, and
            // one over all values with a zero-variance guard.
            let data = Matrix::from_rows(&[
                [1.0, -40.0, 0.01, 300.0, 7.0],
                [2.0, -10.0, 0.03, 100.0, 7.0],
                [4.0, -25.0, 0.02, 250.0, 7.0],
            ])
            .unwrap();
            let mut adapted = kiln_layers::Normalization::new();
            adapted.adapt(&data).unwrap();
            let mut everything = kiln_layers::Normalization::new().over_all_values();
            everything.adapt(&data).unwrap();
            stack(
                3,
                vec![
                    Box::new(adapted),
                    Box::new(Dense::new(6).activation(Activation::Tanh)),
                    Box::new(kiln_layers::Normalization::new().with_stats(vec![2.0], vec![4.0]).invert(true)),
                    Box::new(
                        kiln_layers::Normalization::new().with_stats(vec![0.5; 6], vec![1.0, 0.0, 2.0, 3.0, 4.0, 5.0]),
                    ),
                    Box::new(Dense::new(2)),
                ],
            )
        }),
        (
            "binary",
            stack(
                2,
                vec![
                    Box::new(Dense::new(16).activation(Activation::Relu)),
                    Box::new(Dense::new(1).activation(Activation::Sigmoid)),
                ],
            ),
        ),
    ];
    for (_, m) in &mut out {
        m.build(5).unwrap();
    }
    out.extend(shaped_models());
    for (_, m) in &mut out {
        m.compile(Optimizer::new(RMSprop::default(), 0.01), Loss::mean_squared_error(), NO_METRICS).unwrap();
        let x = inputs(m, 64, 3);
        let width = *m.layer_widths().unwrap().last().unwrap();
        let y = uniform(64, width, 4);
        m.fit(&x, &y, FitOptions::default().epochs(2).batch_size(16).verbose(Verbosity::Silent)).unwrap();
    }
    out
}

/// `rows` random inputs for `m`: values in ±2, or whole-number token ids below the
/// Embedding's `input_dim` when the model starts with one.
fn inputs(m: &Sequential, rows: usize, seed: u64) -> Matrix {
    let width = m.input_width().unwrap();
    match m.layers()[0].input_ids_limit() {
        Some(n) => {
            let mut rng = Rng::seed_from_u64(seed);
            Matrix::from_vec(rows, width, (0..rows * width).map(|_| rng.below(n as u64) as f32).collect()).unwrap()
        }
        None => uniform(rows, width, seed),
    }
}

/// Images and sequences through every convolution, pooling and reshaping layer, with the
/// asymmetric `same` pads, strides, dilation, a softmax over channels and keepdims.
fn shaped_models() -> Vec<(&'static str, Sequential)> {
    let model = |seed: u64, shape: &[usize], layers: Vec<Box<dyn kiln_layers::Layer>>| {
        let mut m = Sequential::new().seed(seed).input_shape(shape.to_vec());
        layers.into_iter().for_each(|l| m.push(l));
        m.build(shape.iter().product()).unwrap();
        m
    };
    vec![
        (
            "convnet",
            model(
                5,
                &[8, 7, 2],
                vec![
                    Box::new(
                        Conv2D::new(4, [3, 3]).strides([2, 2]).padding(Padding::Same).activation(Activation::Relu),
                    ),
                    Box::new(Conv2D::new(3, [2, 2]).padding(Padding::Same).use_bias(false)),
                    Box::new(MaxPooling2D::new([2, 2]).padding(Padding::Same)),
                    Box::new(
                        Conv2D::new(5, [2, 2])
                            .dilation_rate([2, 1])
                            .padding(Padding::Same)
                            .activation(Activation::Softmax),
                    ),
                    Box::new(AveragePooling2D::new([3, 3]).strides([1, 1]).padding(Padding::Same)),
                    Box::new(Flatten::new()),
                    Box::new(Dense::new(3)),
                ],
            ),
        ),
        (
            "global_heads",
            model(
                6,
                &[5, 5, 3],
                vec![
                    Box::new(Conv2D::new(4, [2, 2]).activation(Activation::Tanh)),
                    Box::new(GlobalMaxPooling2D::new().keepdims(true)),
                    Box::new(Reshape::new([2, -1])),
                    Box::new(Dense::new(3).activation(Activation::Sigmoid)),
                ],
            ),
        ),
        (
            "sequences",
            model(
                7,
                &[9, 3],
                vec![
                    Box::new(Conv1D::new(4, 3).padding(Padding::Causal).dilation_rate(2).activation(Activation::Relu)),
                    Box::new(MaxPooling1D::new(2).padding(Padding::Same)),
                    Box::new(Conv1D::new(3, 2).strides(2)),
                    Box::new(AveragePooling1D::new(2).strides(1).padding(Padding::Same)),
                    Box::new(Dense::new(2)),
                    Box::new(GlobalAveragePooling1D::new()),
                ],
            ),
        ),
        ("pooled_flat", model(8, &[6, 4], vec![Box::new(GlobalMaxPooling1D::new()), Box::new(Dense::new(2))])),
        ("gap2d", model(9, &[4, 4, 3], vec![Box::new(GlobalAveragePooling2D::new())])),
        (
            "recurrent",
            model(
                11,
                &[6, 3],
                vec![Box::new(LSTM::new(4).return_sequences(true)), Box::new(GRU::new(3)), Box::new(Dense::new(2))],
            ),
        ),
        (
            "recurrent_variants",
            model(
                12,
                &[5, 2],
                vec![
                    Box::new(GRU::new(3).reset_after(false).return_sequences(true)),
                    Box::new(SimpleRNN::new(2).activation(Activation::Relu).return_sequences(true)),
                    Box::new(SimpleRNN::new(3)),
                ],
            ),
        ),
        (
            "recurrent_backwards",
            model(
                14,
                &[5, 3],
                vec![
                    Box::new(LSTM::new(4).go_backwards(true).return_sequences(true)),
                    Box::new(GRU::new(3).go_backwards(true).return_sequences(true)),
                    Box::new(SimpleRNN::new(2).go_backwards(true)),
                ],
            ),
        ),
        (
            "text",
            model(
                13,
                &[7],
                vec![
                    Box::new(Embedding::new(20, 4)),
                    Box::new(LSTM::new(3).use_bias(false)),
                    Box::new(Dense::new(1).activation(Activation::Sigmoid)),
                ],
            ),
        ),
        (
            "normalized",
            model(
                10,
                &[5, 5, 2],
                vec![
                    Box::new(Conv2D::new(3, [2, 2]).activation(Activation::Relu)),
                    Box::new(BatchNormalization::new().momentum(0.5)),
                    Box::new(Flatten::new()),
                    Box::new(BatchNormalization::new().center(false).epsilon(0.01).momentum(0.3)),
                    Box::new(Reshape::new([4, -1])),
                    Box::new(LayerNormalization::new()),
                    Box::new(Dense::new(3)),
                    Box::new(LayerNormalization::new().scale(false).epsilon(0.1)),
                ],
            ),
        ),
    ]
}

#[test]
fn exported_models_predict_in_onnxruntime_as_in_kiln() {
    let dir = temp_dir("rt");
    let python = runtime_or_note();
    for (name, mut model) in models() {
        let x = inputs(&model, 33, 11);
        let rows: Vec<&[f32]> = (0..x.rows()).map(|i| x.row(i)).collect();
        let x_path = dir.join(format!("{name}.x.json"));
        std::fs::write(&x_path, serde_json::to_string(&rows).unwrap()).unwrap();
        let path = dir.join(format!("{name}.onnx"));
        kiln_onnx::export_onnx(&model, &path).unwrap();
        let Some(python) = &python else { continue };
        let got = onnxruntime_predictions(python, &path, &x_path);
        let want = model.predict(&x, 8).unwrap();
        assert_close(name, &got, &want);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// onnxruntime's rows `got` against kiln's predictions `want`, within `1e-6 + 4e-6·|w|`
/// (the runtimes sum products in different orders); prints the largest relative difference.
fn assert_close(name: &str, got: &[Vec<f64>], want: &Matrix) {
    assert_eq!((got.len(), got[0].len()), (want.rows(), want.cols()), "{name}");
    let mut worst = 0f64;
    for (i, row) in got.iter().enumerate() {
        for (j, &g) in row.iter().enumerate() {
            let w = want.row(i)[j] as f64;
            let tol = 1e-6 + 4e-6 * w.abs();
            assert!((g - w).abs() <= tol, "{name}: row {i} col {j}: onnxruntime {g}, kiln {w}");
            worst = worst.max((g - w).abs() / w.abs().max(1e-30));
        }
    }
    eprintln!("{name}: largest relative difference onnxruntime vs kiln {worst:.3e}");
}

#[test]
fn unsupported_and_unbuilt_models_are_refused_by_name() {
    let m = Sequential::new().add(Dense::new(2));
    let err = kiln_onnx::to_onnx_bytes(&m).unwrap_err().to_string();
    assert!(err.contains("not built"), "{err}");
}

/// Functional models: a residual Dense block with a projection, two inputs through every
/// elementwise merge and Concatenate, a residual convnet whose channels-first convolution
/// outputs feed merges (one of them feeding three layers), token ids beside values, and
/// Concatenate along the first axis of rank-3 samples. Each trained a little, so biases
/// and batch statistics are not their initial values.
fn functional_models() -> Vec<(&'static str, Sequential)> {
    let mut out = vec![
        ("residual_dense", residual_dense()),
        ("two_inputs", two_inputs()),
        ("residual_convnet", residual_convnet()),
        ("ids_and_values", ids_and_values()),
        ("concat_first_axis", concat_first_axis()),
    ];
    for (_, m) in &mut out {
        m.compile(Optimizer::new(RMSprop::default(), 0.01), Loss::mean_squared_error(), NO_METRICS).unwrap();
        let xs = graph_inputs(m, 64, 3);
        let parts: Vec<FeaturesRef<'_>> = xs.iter().map(FeaturesRef::from).collect();
        let y = uniform(64, m.output_width().unwrap(), 4);
        let opts = FitOptions::default().epochs(2).batch_size(16).verbose(Verbosity::Silent);
        m.fit(FeaturesRef::list(&parts), &y, opts).unwrap();
    }
    out
}

fn residual_dense() -> Sequential {
    let mut g = Functional::new().seed(21);
    let x = g.input([10]);
    let h = g.apply(Dense::new(16).activation(Activation::Relu), x);
    let h = g.apply(Dropout::new(0.3), h);
    let h = g.apply(Dense::new(16), h);
    let projection = g.apply(Dense::new(16).use_bias(false), x);
    let sum = g.merge(Add::new(), &[h, projection]);
    let out = g.apply(Dense::new(3).activation(Activation::Softmax), sum);
    g.model(out).unwrap()
}

fn two_inputs() -> Sequential {
    let mut g = Functional::new().seed(22);
    let (a, b) = (g.input([6]), g.input([6]));
    let da = g.apply(Dense::new(6).activation(Activation::Tanh), a);
    let db = g.apply(Dense::new(6).activation(Activation::Relu), b);
    let diff = g.merge(Subtract::new(), &[da, db]);
    let product = g.merge(Multiply::new(), &[da, db, diff]);
    let max = g.merge(Maximum::new(), &[da, b, product]);
    let min = g.merge(Minimum::new(), &[diff, product, a]);
    let mean = g.merge(Average::new(), &[max, min, da]);
    let joined = g.merge(Concatenate::new(), &[mean, diff, b]);
    let out = g.apply(Dense::new(2), joined);
    g.model(out).unwrap()
}

fn residual_convnet() -> Sequential {
    let mut g = Functional::new().seed(23);
    let x = g.input([6, 5, 3]);
    let stem = g.apply(Conv2D::new(4, [3, 3]).padding(Padding::Same).activation(Activation::Relu), x);
    // `stem` (channels-first) feeds a convolution and two merges: one transpose serves both.
    let conv = g.apply(Conv2D::new(4, [3, 3]).padding(Padding::Same), stem);
    let normalized = g.apply(BatchNormalization::new().momentum(0.5), conv);
    let normalized = g.apply(ActivationLayer::new(Activation::Tanh), normalized);
    let residual = g.merge(Add::new(), &[normalized, stem]);
    let gated = g.merge(Maximum::new(), &[residual, stem]);
    // A softmax over the channels of an image: the Activation layer's last axis.
    let gated = g.apply(ActivationLayer::new(Activation::Softmax), gated);
    let pooled = g.apply(MaxPooling2D::new([2, 2]), gated);
    let flat = g.apply(Flatten::new(), pooled);
    let out = g.apply(Dense::new(3), flat);
    g.model(out).unwrap()
}

fn ids_and_values() -> Sequential {
    let mut g = Functional::new().seed(24);
    let (ids, values) = (g.input([4]), g.input([5]));
    let embedded = g.apply(Embedding::new(10, 3), ids);
    let embedded = g.apply(Flatten::new(), embedded);
    let projected = g.apply(Dense::new(12), values);
    let sum = g.merge(Add::new(), &[embedded, projected]);
    let out = g.apply(Dense::new(2).activation(Activation::Sigmoid), sum);
    g.model(out).unwrap()
}

fn concat_first_axis() -> Sequential {
    let mut g = Functional::new().seed(25);
    let x = g.input([4, 3, 2]);
    let conv = g.apply(Conv2D::new(3, [2, 2]).padding(Padding::Same), x);
    let pooled = g.apply(MaxPooling2D::new([2, 1]), conv);
    let dense = g.apply(Dense::new(3), x);
    // [4,3,3] + [2,3,3] + [4,3,3] + [4,3,3] on axis 1 (the first sample axis): [14,3,3].
    let joined = g.merge(Concatenate::new().axis(1), &[conv, pooled, dense, conv]);
    let rows = g.merge(Concatenate::new().axis(-2), &[joined, joined]);
    let flat = g.apply(Flatten::new(), rows);
    let out = g.apply(Dense::new(2), flat);
    g.model(out).unwrap()
}

/// `rows` random samples for each input of `m`: token ids below the Embedding's
/// `input_dim` for an input an Embedding reads, else values in ±2.
fn graph_inputs(m: &Sequential, rows: usize, seed: u64) -> Vec<Matrix> {
    let shapes = m.model_input_shapes().unwrap();
    let sources = m.layer_sources().unwrap();
    (0..shapes.len())
        .map(|k| {
            let width = shapes[k].numel();
            let seed = seed + 100 * k as u64;
            let reader = m.layers().iter().zip(sources).find(|(_, r)| r.contains(&Source::Input(k))).unwrap().0;
            match reader.input_ids_limit() {
                Some(n) => {
                    let mut rng = Rng::seed_from_u64(seed);
                    let ids = (0..rows * width).map(|_| rng.below(n as u64) as f32).collect();
                    Matrix::from_vec(rows, width, ids).unwrap()
                }
                None => uniform(rows, width, seed),
            }
        })
        .collect()
}

/// The Python to run onnxruntime with; without one, a note (or a failure when
/// `KILN_REQUIRE_ONNXRUNTIME` demands the runtime), and only the exports are checked.
fn runtime_or_note() -> Option<String> {
    let python = onnx_python();
    if python.is_none() {
        assert!(
            std::env::var_os("KILN_REQUIRE_ONNXRUNTIME").is_none(),
            "KILN_REQUIRE_ONNXRUNTIME is set but no Python can import onnxruntime and onnx"
        );
        eprintln!("note: no Python with onnxruntime and onnx (set KILN_ONNX_PYTHON); checked the export runs only");
    }
    python
}

/// onnxruntime's predictions for the model at `model` on the inputs in `x` (JSON).
fn onnxruntime_predictions(python: &str, model: &Path, x: &Path) -> Vec<Vec<f64>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/run_onnxruntime.py");
    let out = Command::new(python).arg(script).arg(model).arg(x).output().unwrap();
    assert!(out.status.success(), "{}: onnxruntime failed: {}", model.display(), String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    serde_json::from_value(report["output"].clone()).unwrap()
}

#[test]
fn exported_functional_models_predict_in_onnxruntime_as_in_kiln() {
    let dir = temp_dir("functional");
    let python = runtime_or_note();
    for (name, mut model) in functional_models() {
        let xs = graph_inputs(&model, 33, 11);
        // Fed by name: {input name: rows}.
        let named: serde_json::Map<String, serde_json::Value> = model
            .graph()
            .unwrap()
            .inputs
            .iter()
            .zip(&xs)
            .map(|(input, x)| {
                let rows: Vec<&[f32]> = (0..x.rows()).map(|i| x.row(i)).collect();
                (input.name.clone(), serde_json::to_value(rows).unwrap())
            })
            .collect();
        let x_path = dir.join(format!("{name}.x.json"));
        std::fs::write(&x_path, serde_json::to_string(&named).unwrap()).unwrap();
        let path = dir.join(format!("{name}.onnx"));
        kiln_onnx::export_onnx(&model, &path).unwrap();
        let Some(python) = &python else { continue };
        let got = onnxruntime_predictions(python, &path, &x_path);
        let parts: Vec<FeaturesRef<'_>> = xs.iter().map(FeaturesRef::from).collect();
        let want = model.predict(FeaturesRef::list(&parts), 8).unwrap();
        assert_close(name, &got, &want);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn functional_inputs_onnx_cannot_declare_are_refused_by_name() {
    // One input read as token ids by an Embedding and as values by a Dense.
    let mut g = Functional::new();
    let x = g.input([4]);
    let embedded = g.apply(Embedding::new(10, 2), x);
    let embedded = g.apply(Flatten::new(), embedded);
    let values = g.apply(Dense::new(8).name("reads_values"), x);
    let out = g.merge(Add::new(), &[embedded, values]);
    let err = kiln_onnx::to_onnx_bytes(&g.model(out).unwrap()).unwrap_err().to_string();
    assert!(err.contains("reads_values") && err.contains("token ids"), "{err}");

    // An input named like the graph's output.
    let mut g = Functional::new();
    let x = g.named_input("output", [3]);
    let out = g.apply(Dense::new(2), x);
    let err = kiln_onnx::to_onnx_bytes(&g.model(out).unwrap()).unwrap_err().to_string();
    assert!(err.contains("`output` (InputLayer)"), "{err}");
}
