//! The benchmark workloads: synthetic data of the notebook's shapes, trained through the
//! ordinary `fit` path, with the floating-point work each epoch does.

use kiln_layers::{Activation, Conv2D, Dense, Embedding, Flatten, LSTM, MaxPooling2D};
use kiln_optimizers::{Optimizer, RMSprop};
use kiln_tensor::{ByteMatrix, IdMatrix, Matrix, Parallelism, Rng};
use kiln_trainer::{Features, Loss, Metric, Sequential};

/// Every workload's name, in the order they run by default.
pub const NAMES: [&str; 10] = ["W1", "W1r", "W1b", "W1c", "W2", "W2L", "W3", "W4", "W5", "W1u"];

/// The ones `cargo xtask bench` runs when `--only` is not given (`W1u` is opt-in; so are
/// `W3`–`W5`, each several times W1's work).
pub const DEFAULT: [&str; 6] = ["W1", "W1r", "W1b", "W1c", "W2", "W2L"];

/// A workload ready to train.
pub struct Workload {
    /// The compiled model.
    pub model: Sequential,
    /// Inputs (train and validation rows; validation is the last `split` of them).
    pub x: Features,
    /// Labels.
    pub y: Matrix,
    /// Batch size.
    pub batch: usize,
    /// Fraction of rows held out for validation.
    pub split: f64,
    /// Floating-point operations of one epoch (multiply-adds count two).
    pub flops_per_epoch: f64,
}

/// Builds the workload `name` (one of [`NAMES`]) with matrix products on `par`.
pub fn build(name: &str, par: Parallelism) -> anyhow::Result<Workload> {
    let mut w = match name {
        "W1" => mnist_like(&[512], false, 128)?,
        "W1b" => mnist_like(&[], false, 128)?,
        "W1c" => mnist_like(&[96, 96], false, 128)?,
        "W1u" => mnist_like(&[512], true, 128)?,
        "W1r" => real_mnist()?,
        "W2" => imdb_like(&[16, 16], 10_000)?,
        "W2L" => imdb_like(&[512, 512], 10_000)?,
        "W3" => mnist_convnet()?,
        "W4" => weather_lstm()?,
        "W5" => imdb_lstm()?,
        other => anyhow::bail!("unknown workload `{other}` (known: {})", NAMES.join(", ")),
    };
    w.model.set_parallelism(par);
    Ok(w)
}

/// Multiply-adds of one epoch of a dense stack, for `train` and `val` rows whose first
/// layer costs `first` multiply-adds per row and per unit (see [`super::epoch_macs`]).
fn stack_macs(first: f64, widths: &[usize], train: f64, val: f64) -> f64 {
    let first_layer = first * widths[0] as f64;
    let rest: f64 = widths.windows(2).map(|p| (p[0] * p[1]) as f64).sum();
    super::epoch_macs(first_layer, rest, train, val)
}

/// 60,000 rows of 784 uniform pixels in [0, 1) with random labels of 10 classes,
/// `hidden` ReLU layers then softmax; RMSprop(1e-2), 20 % validation (the workloads use
/// batches of 128). `bytes` stores the pixels as `u8` scaled by 1/255 when batches are
/// gathered.
pub fn mnist_like(hidden: &[usize], bytes: bool, batch: usize) -> anyhow::Result<Workload> {
    let n = 60_000;
    let mut rng = Rng::seed_from_u64(1);
    let x = if bytes {
        let pixels = (0..n * 784).map(|_| (rng.next_u32() >> 24) as u8).collect();
        Features::Bytes { values: ByteMatrix::from_vec(n, 784, pixels)?, divisor: 255.0 }
    } else {
        Features::Dense(Matrix::from_vec(n, 784, (0..n * 784).map(|_| rng.uniform()).collect())?)
    };
    let y = Matrix::from_vec(n, 1, (0..n).map(|_| rng.below(10) as f32).collect())?;
    let mut model = Sequential::new();
    for &units in hidden {
        model = model.add(Dense::new(units).activation(Activation::Relu));
    }
    model = model.add(Dense::new(10).activation(Activation::Softmax));
    model.compile(
        Optimizer::new(RMSprop::default(), 1e-2),
        Loss::sparse_categorical_crossentropy(),
        [Metric::Accuracy],
    )?;
    let widths: Vec<usize> = hidden.iter().copied().chain([10]).collect();
    let flops_per_epoch = 2.0 * stack_macs(784.0, &widths, 48_000.0, 12_000.0);
    Ok(Workload { model, x, y, batch, split: 0.2, flops_per_epoch })
}

/// W1's model on real digits: the bundled 10,000 MNIST training images repeated to
/// 60,000 rows (as `u8`, scaled by 1/255 per batch) with their real labels.
pub fn real_mnist() -> anyhow::Result<Workload> {
    let set = kiln_datasets::read_idx_dir(&real_digits_dir(), kiln_datasets::Split::Train)?;
    let n = 60_000;
    let pixels: Vec<u8> = set.images.as_slice().iter().copied().cycle().take(n * 784).collect();
    let labels: Vec<f32> = set.labels.iter().map(|&l| f32::from(l)).cycle().take(n).collect();
    let mut w = mnist_like(&[512], true, 128)?;
    w.x = Features::Bytes { values: ByteMatrix::from_vec(n, 784, pixels)?, divisor: 255.0 };
    w.y = Matrix::from_vec(n, 1, labels)?;
    Ok(w)
}

/// The folder of the bundled MNIST digits (IDX), written out on first use.
pub fn real_digits_dir() -> std::path::PathBuf {
    kiln_datasets::bundled_dir().join("mnist-10k")
}

/// 25,000 multi-hot rows over `vocab` words (10,000 in the workloads) with exactly 128
/// ones each (the real reviews' mean) and random labels, `hidden` ReLU layers then a
/// sigmoid unit; RMSprop(1e-3), batch 512, 40 % validation (15,000 / 10,000).
pub fn imdb_like(hidden: &[usize], vocab: usize) -> anyhow::Result<Workload> {
    let (n, words) = (25_000, 128);
    let x = kiln_benches::multi_hot(n, vocab, words, 2);
    let mut rng = Rng::seed_from_u64(3);
    let y = Matrix::from_vec(n, 1, (0..n).map(|_| rng.below(2) as f32).collect())?;
    let mut model = Sequential::new();
    for &units in hidden {
        model = model.add(Dense::new(units).activation(Activation::Relu));
    }
    model = model.add(Dense::new(1).activation(Activation::Sigmoid));
    model.compile(RMSprop::default(), Loss::binary_crossentropy(), [Metric::Accuracy])?;
    let widths: Vec<usize> = hidden.iter().copied().chain([1]).collect();
    let flops_per_epoch = 2.0 * stack_macs(words as f64, &widths, 15_000.0, 10_000.0);
    Ok(Workload { model, x: Features::Sparse(x), y, batch: 512, split: 0.4, flops_per_epoch })
}

/// The Keras MNIST convnet of `docs/progression.md` on W1's data as `[28, 28, 1]` images:
/// Conv2D(32, 3, relu) → MaxPooling2D(2) → Conv2D(64, 3, relu) → MaxPooling2D(2) →
/// Conv2D(128, 3, relu) → Flatten → Dense(10, softmax); RMSprop (Keras' defaults), batch
/// 64, 20 % validation.
pub fn mnist_convnet() -> anyhow::Result<Workload> {
    let n = 60_000;
    let mut rng = Rng::seed_from_u64(1);
    let x = Matrix::from_vec(n, 784, (0..n * 784).map(|_| rng.uniform()).collect())?;
    let y = Matrix::from_vec(n, 1, (0..n).map(|_| rng.below(10) as f32).collect())?;
    let mut model = Sequential::new()
        .input_shape([28, 28, 1])
        .add(Conv2D::new(32, [3, 3]).activation(Activation::Relu))
        .add(MaxPooling2D::new([2, 2]))
        .add(Conv2D::new(64, [3, 3]).activation(Activation::Relu))
        .add(MaxPooling2D::new([2, 2]))
        .add(Conv2D::new(128, [3, 3]).activation(Activation::Relu))
        .add(Flatten::new())
        .add(Dense::new(10).activation(Activation::Softmax));
    model.compile(RMSprop::default(), Loss::sparse_categorical_crossentropy(), [Metric::Accuracy])?;
    // Multiply-adds per sample: output pixels × kernel taps × channels in × out.
    let conv1 = (26 * 26 * 9 * 32) as f64;
    let rest = (11 * 11 * 288 * 64 + 3 * 3 * 576 * 128 + 1152 * 10) as f64;
    let flops_per_epoch = 2.0 * super::epoch_macs(conv1, rest, 48_000.0, 12_000.0);
    Ok(Workload { model, x: Features::Dense(x), y, batch: 64, split: 0.2, flops_per_epoch })
}

/// Multiply-adds of an LSTM over `steps` steps of `features` inputs, per sample:
/// `(input products, recurrent products)`, each step `features·4·units` and
/// `units·4·units`. Training runs the recurrent product three times (forward, the
/// recurrent kernel's gradient, and the gradient into the previous step's state), so it
/// counts with the `rest` of [`super::epoch_macs`], never as a first layer's.
fn lstm_macs(steps: usize, features: usize, units: usize) -> (f64, f64) {
    ((steps * features * 4 * units) as f64, (steps * units * 4 * units) as f64)
}

/// LSTM(32) → Dense(1) on 10,000 windows of 120 hourly steps of 10 features (the weather
/// windows' shape, synthetic values), mse, RMSprop, batch 32, 20 % validation.
pub fn weather_lstm() -> anyhow::Result<Workload> {
    let (n, steps, features) = (10_000, 120, 10);
    let mut rng = Rng::seed_from_u64(4);
    let x =
        Matrix::from_vec(n, steps * features, (0..n * steps * features).map(|_| rng.uniform_in(-1.0, 1.0)).collect())?;
    let y = Matrix::from_vec(n, 1, (0..n).map(|_| rng.uniform_in(-1.0, 1.0)).collect())?;
    let mut model = Sequential::new().input_shape([steps, features]).add(LSTM::new(32)).add(Dense::new(1));
    model.compile(RMSprop::default(), Loss::mean_squared_error(), [Metric::MeanAbsoluteError])?;
    // The input products need no input gradient here (the LSTM reads the model's input).
    let (input, recurrent) = lstm_macs(steps, features, 32);
    let flops_per_epoch = 2.0 * super::epoch_macs(input, recurrent + 32.0, 8_000.0, 2_000.0);
    Ok(Workload { model, x: Features::Dense(x), y, batch: 32, split: 0.2, flops_per_epoch })
}

/// Embedding(10000, 32) → LSTM(32) → Dense(1, sigmoid) on 25,000 sequences of 200 token
/// ids (IMDB padded to 200; synthetic ids), binary crossentropy, RMSprop, batch 128, 40 %
/// validation.
pub fn imdb_lstm() -> anyhow::Result<Workload> {
    let (n, steps, vocab) = (25_000, 200, 10_000);
    let mut rng = Rng::seed_from_u64(5);
    let ids = IdMatrix::from_vec(n, steps, (0..n * steps).map(|_| rng.below(vocab as u64) as u32).collect())?;
    let y = Matrix::from_vec(n, 1, (0..n).map(|_| rng.below(2) as f32).collect())?;
    let mut model = Sequential::new()
        .input_shape([steps])
        .add(Embedding::new(vocab, 32))
        .add(LSTM::new(32))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    model.compile(RMSprop::default(), Loss::binary_crossentropy(), [Metric::Accuracy])?;
    // The lookup is no arithmetic; the LSTM's input products need their input gradient
    // (the embedding trains), so every product counts three times in training.
    let (input, recurrent) = lstm_macs(steps, 32, 32);
    let flops_per_epoch = 2.0 * super::epoch_macs(0.0, input + recurrent + 32.0, 15_000.0, 10_000.0);
    Ok(Workload { model, x: Features::Ids(ids), y, batch: 128, split: 0.4, flops_per_epoch })
}
