//! The chapter's experiments as data: one row per experiment, each building its real
//! layers (the same `Dense`/`Dropout`/`Conv2D`/`LSTM` a user writes), one builder for all.
//! The architecture-prior runs (MNIST dense vs convnet, the weather models) follow
//! `docs/progression.md`.

use anyhow::Context;
use kiln_layers::{
    Activation, Conv1D, Conv2D, Dense, Dropout, Flatten, GRU, GlobalAveragePooling1D, LSTM, Layer, MaxPooling1D,
    MaxPooling2D,
};
use kiln_optimizers::{Optimizer, RMSprop};
use kiln_regularizers::{L1, L1L2, L2, Regularizer};
use kiln_tensor::Shape;
use kiln_trainer::{Loss, Metric, NamedMetric, Sequential};

/// Which data set an experiment trains on; it fixes the fit settings the notebook uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSet {
    /// MNIST digits, pixels / 255.
    Mnist,
    /// IMDB reviews, 10,000-token multi-hot.
    Imdb,
    /// The hourly Beijing weather series, cut into windows of five days (train, validation
    /// and test windows apart, as `docs/progression.md` fixes them).
    Weather,
}

impl DataSet {
    /// The notebook's `validation_split` (0 for the weather, whose validation windows are
    /// given apart).
    pub fn validation_split(self) -> f64 {
        match self {
            DataSet::Mnist => 0.2,
            DataSet::Imdb => 0.4,
            DataSet::Weather => 0.0,
        }
    }

    /// The notebook's `batch_size`.
    pub fn batch_size(self) -> usize {
        match self {
            DataSet::Mnist => 128,
            DataSet::Imdb => 512,
            DataSet::Weather => 32,
        }
    }

    /// The compiled loss.
    pub fn loss(self) -> Loss {
        match self {
            DataSet::Mnist => Loss::sparse_categorical_crossentropy(),
            DataSet::Imdb => Loss::binary_crossentropy(),
            DataSet::Weather => Loss::mean_squared_error(),
        }
    }

    /// The compiled metric: `accuracy` for the classifiers, `mae` for the weather.
    pub fn metric(self) -> NamedMetric {
        match self {
            DataSet::Mnist | DataSet::Imdb => Metric::Accuracy.named("accuracy"),
            DataSet::Weather => Metric::MeanAbsoluteError.named("mae"),
        }
    }

    /// The history key of the compiled metric.
    pub fn metric_key(self) -> &'static str {
        match self {
            DataSet::Mnist | DataSet::Imdb => "accuracy",
            DataSet::Weather => "mae",
        }
    }
}

/// What an experiment feeds the model: its data set as loaded, or a variant of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Input {
    /// The data set as loaded.
    Plain,
    /// MNIST pixels followed by 784 uniform random values in [0, 1) (`np.random.random`).
    NoiseChannels,
    /// MNIST pixels followed by 784 zeros.
    ZerosChannels,
    /// MNIST pixels with the training labels randomly permuted.
    ShuffledLabels,
}

/// The regularizer named on the command line (`--regularizer`, from a plugin), for the
/// experiments that take one.
pub type PluginReg<'a> = Option<&'a (dyn Regularizer + 'static)>;

/// Builds an experiment's layer stack.
pub type Layers = fn(PluginReg<'_>) -> anyhow::Result<Vec<Box<dyn Layer>>>;

/// One experiment of the chapter.
#[derive(Debug, Clone, Copy)]
pub struct Experiment {
    /// The name used on the command line, in file names and in the report.
    pub name: &'static str,
    /// The data it trains on.
    pub data: DataSet,
    /// The form of that data it is fed.
    pub input: Input,
    /// The layer stack.
    pub layers: Layers,
    /// RMSprop's learning rate.
    pub learning_rate: f64,
    /// Epochs (the notebook's), unless `--epochs` overrides them.
    pub epochs: usize,
    /// Run only when named with `--only` (it needs extra options).
    pub on_request: bool,
    /// The per-sample input shape, for models of shaped samples (`[28, 28, 1]` images,
    /// `[120, 10]` windows); `None`: flat rows.
    pub input_shape: Option<&'static [usize]>,
    /// The batch size when it is not the data set's (the architecture-prior runs').
    pub batch_size: Option<usize>,
    /// The common-sense baseline of the weather: no model, nothing trained; its history
    /// holds the baseline's MAE at every epoch.
    pub baseline: bool,
}

impl PartialEq for Experiment {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// Keras' RMSprop default learning rate.
const DEFAULT_LR: f64 = 1e-3;

/// `Dense(units, activation)`.
fn dense(units: usize, activation: Activation) -> Box<dyn Layer> {
    Box::new(Dense::new(units).activation(activation))
}

/// `Dense(units, relu, kernel_regularizer=reg)`.
fn relu_with(units: usize, reg: impl Regularizer + Clone + 'static) -> Box<dyn Layer> {
    Box::new(Dense::new(units).activation(Activation::Relu).kernel_regularizer(reg))
}

/// `Dense(units, relu)`.
fn relu(units: usize) -> Box<dyn Layer> {
    dense(units, Activation::Relu)
}

/// The MNIST head, `Dense(10, softmax)`.
fn softmax10() -> Box<dyn Layer> {
    dense(10, Activation::Softmax)
}

/// The IMDB head, `Dense(1, sigmoid)`.
fn sigmoid1() -> Box<dyn Layer> {
    dense(1, Activation::Sigmoid)
}

/// `Dropout(rate)`.
fn dropout(rate: f64) -> Box<dyn Layer> {
    Box::new(Dropout::new(rate))
}

/// A row of the table with the defaults of every field but these.
const fn row(name: &'static str, data: DataSet, layers: Layers, learning_rate: f64, epochs: usize) -> Experiment {
    Experiment {
        name,
        data,
        input: Input::Plain,
        layers,
        learning_rate,
        epochs,
        on_request: false,
        input_shape: None,
        batch_size: None,
        baseline: false,
    }
}

/// An MNIST row of the table.
const fn mnist(name: &'static str, layers: Layers, learning_rate: f64, epochs: usize) -> Experiment {
    row(name, DataSet::Mnist, layers, learning_rate, epochs)
}

/// An IMDB row of the table (RMSprop default, 20 epochs).
const fn imdb(name: &'static str, layers: Layers) -> Experiment {
    row(name, DataSet::Imdb, layers, DEFAULT_LR, 20)
}

/// MNIST digits as `[28, 28, 1]` images: `docs/progression.md`'s dense-vs-convnet runs
/// (RMSprop default, 5 epochs, batch 64).
const fn mnist_images(name: &'static str, layers: Layers) -> Experiment {
    Experiment {
        input_shape: Some(&[28, 28, 1]),
        batch_size: Some(64),
        ..row(name, DataSet::Mnist, layers, DEFAULT_LR, 5)
    }
}

/// Window length of the weather runs: five days of hours.
pub const WEATHER_STEPS: usize = 120;

/// A weather model on `[120, 10]` windows (RMSprop default, 10 epochs, batch 32).
const fn weather(name: &'static str, layers: Layers) -> Experiment {
    Experiment { input_shape: Some(&[WEATHER_STEPS, 10]), ..row(name, DataSet::Weather, layers, DEFAULT_LR, 10) }
}

/// The notebook's `Dense(512, relu) → Dense(10, softmax)`.
fn mnist_512(_: PluginReg<'_>) -> anyhow::Result<Vec<Box<dyn Layer>>> {
    Ok(vec![relu(512), softmax10()])
}

/// Epochs of `mnist_shuffled_labels` by default. The notebook trains 100; memorizing the
/// bundled 8,000 training digits shows well before that, and 100 epochs would triple the
/// default run's time. `--epochs 100` runs the notebook's length.
pub const SHUFFLED_LABELS_EPOCHS: usize = 20;

/// Every experiment, in report order.
pub const EXPERIMENTS: &[Experiment] = &[
    mnist("mnist_lr1", |_| Ok(vec![relu(512), softmax10()]), 1.0, 10),
    mnist("mnist_lr001", |_| Ok(vec![relu(512), softmax10()]), 1e-2, 10),
    mnist("mnist_logreg", |_| Ok(vec![softmax10()]), DEFAULT_LR, 20),
    mnist("mnist_96x2", |_| Ok(vec![relu(96), relu(96), softmax10()]), DEFAULT_LR, 20),
    Experiment { input: Input::NoiseChannels, ..mnist("mnist_noise_channels", mnist_512, DEFAULT_LR, 10) },
    Experiment { input: Input::ZerosChannels, ..mnist("mnist_zeros_channels", mnist_512, DEFAULT_LR, 10) },
    Experiment {
        input: Input::ShuffledLabels,
        ..mnist("mnist_shuffled_labels", mnist_512, DEFAULT_LR, SHUFFLED_LABELS_EPOCHS)
    },
    imdb("imdb_original", |_| Ok(vec![relu(16), relu(16), sigmoid1()])),
    imdb("imdb_smaller", |_| Ok(vec![relu(4), relu(4), sigmoid1()])),
    imdb("imdb_larger", |_| Ok(vec![relu(512), relu(512), sigmoid1()])),
    imdb("imdb_l2", |_| Ok(vec![relu_with(16, L2::new(0.002)), relu_with(16, L2::new(0.002)), sigmoid1()])),
    imdb("imdb_l1", |_| Ok(vec![relu_with(16, L1::new(0.001)), relu_with(16, L1::new(0.001)), sigmoid1()])),
    imdb("imdb_l1l2", |_| {
        Ok(vec![relu_with(16, L1L2::new(0.001, 0.001)), relu_with(16, L1L2::new(0.001, 0.001)), sigmoid1()])
    }),
    imdb("imdb_dropout", |_| Ok(vec![relu(16), dropout(0.5), relu(16), dropout(0.5), sigmoid1()])),
    mnist_images("mnist_dense_5ep", |_| Ok(vec![Box::new(Flatten::new()), relu(512), softmax10()])),
    mnist_images("mnist_convnet", |_| {
        let conv = |filters| -> Box<dyn Layer> { Box::new(Conv2D::new(filters, [3, 3]).activation(Activation::Relu)) };
        let pool = || -> Box<dyn Layer> { Box::new(MaxPooling2D::new([2, 2])) };
        Ok(vec![conv(32), pool(), conv(64), pool(), conv(128), Box::new(Flatten::new()), softmax10()])
    }),
    Experiment { baseline: true, ..weather("weather_baseline", |_| Ok(Vec::new())) },
    weather("weather_dense", |_| Ok(vec![Box::new(Flatten::new()), relu(16), dense(1, Activation::Linear)])),
    weather("weather_conv1d", |_| {
        let conv = |k| -> Box<dyn Layer> { Box::new(Conv1D::new(8, k).activation(Activation::Relu)) };
        let pool = || -> Box<dyn Layer> { Box::new(MaxPooling1D::new(2)) };
        Ok(vec![
            conv(24),
            pool(),
            conv(12),
            pool(),
            conv(6),
            Box::new(GlobalAveragePooling1D::new()),
            dense(1, Activation::Linear),
        ])
    }),
    weather("weather_lstm", |_| Ok(vec![Box::new(LSTM::new(16)), dense(1, Activation::Linear)])),
    weather("weather_gru", |_| Ok(vec![Box::new(GRU::new(16)), dense(1, Activation::Linear)])),
    Experiment { on_request: true, ..imdb("imdb_custom", custom_layers) },
];

/// `imdb_original` with the `--regularizer` on both hidden kernels.
fn custom_layers(plugin: PluginReg<'_>) -> anyhow::Result<Vec<Box<dyn Layer>>> {
    let reg = plugin.context("needs a plugin regularizer: pass --regularizer 'pkg>Name' --config '{...}'")?;
    let hidden = || -> Box<dyn Layer> {
        let mut d = Dense::new(16).activation(Activation::Relu);
        d.kernel_regularizer = Some(dyn_clone::clone_box(reg));
        Box::new(d)
    };
    Ok(vec![hidden(), hidden(), sigmoid1()])
}

/// The experiment called `name`.
pub fn find(name: &str) -> Option<&'static Experiment> {
    EXPERIMENTS.iter().find(|e| e.name == name)
}

/// The experiments to run: all but the on-request ones, or exactly those named in `only`.
pub fn select(only: &[String]) -> anyhow::Result<Vec<&'static Experiment>> {
    if only.is_empty() {
        return Ok(EXPERIMENTS.iter().filter(|e| !e.on_request).collect());
    }
    let mut picked = Vec::new();
    for name in only {
        let exp = find(name.trim()).with_context(|| {
            let known: Vec<_> = EXPERIMENTS.iter().map(|e| e.name).collect();
            format!("unknown experiment `{name}`; known: {}", known.join(", "))
        })?;
        if !picked.contains(&exp) {
            picked.push(exp);
        }
    }
    // Keep report order whatever order the user typed.
    picked.sort_by_key(|e| EXPERIMENTS.iter().position(|x| x == *e));
    Ok(picked)
}

impl Experiment {
    /// Whether the experiment takes its regularizer from `--regularizer`.
    pub fn needs_plugin(&self) -> bool {
        (self.layers)(None).is_err()
    }

    /// The compiled, unbuilt model for `seed`; `plugin` is the `--regularizer`.
    pub fn model(&self, seed: u64, plugin: PluginReg<'_>) -> anyhow::Result<Sequential> {
        let mut model = Sequential::new().seed(seed).name(self.name);
        if let Some(shape) = self.input_shape {
            model = model.input_shape(shape);
        }
        for layer in (self.layers)(plugin).with_context(|| format!("experiment {}", self.name))? {
            model.push(layer);
        }
        let optimizer = Optimizer::new(RMSprop::default(), self.learning_rate);
        model.compile(optimizer, self.data.loss(), [self.data.metric()])?;
        Ok(model)
    }

    /// The keys every run's history has: Keras' with `accuracy` for the classifiers; with
    /// `mae` and the test windows' `test_mae` for the weather models; the baseline's
    /// validation and test MAE for the baseline.
    pub fn history_keys(&self) -> &'static [&'static str] {
        match (self.data, self.baseline) {
            (DataSet::Weather, true) => &["val_mae", "test_mae"],
            (DataSet::Weather, false) => &["loss", "mae", "val_loss", "val_mae", "test_mae"],
            _ => &["loss", "accuracy", "val_loss", "val_accuracy"],
        }
    }

    /// The batch size of its `fit`.
    pub fn batch_size(&self) -> usize {
        self.batch_size.unwrap_or(self.data.batch_size())
    }

    /// The parameter count of its model on inputs of `input_width` values per sample.
    pub fn param_count(&self, input_width: usize) -> Option<usize> {
        let mut model = self.model(0, None).ok()?;
        model.build(input_width).ok()?;
        Some(model.param_count())
    }

    /// Rough multiply-adds per training sample, read off the built kernels (the first
    /// layer reads `input_nnz` inputs per row): used to start the longest runs first.
    pub fn cost_per_sample(&self, input_width: usize, input_nnz: usize, plugin: PluginReg<'_>) -> usize {
        let (first, rest) = self.kernel_macs(input_width, input_nnz, plugin);
        first + rest
    }

    /// Floating-point operations of one run's products over `epochs` on `rows` samples
    /// (split as `fit` splits them, `⌊n·(1 − split)⌋` for training):
    /// `2·epochs·`[`epoch_macs`](crate::bench::epoch_macs)`(k₀, Σᵢ₌₁ kᵢ, train, validation)`,
    /// `kᵢ` the multiply-adds per sample of kernel `i` (biases, activations and the loss
    /// are left out).
    ///
    /// `(train, evaluated)` are the samples trained on and the samples only evaluated (the
    /// validation part, and the weather's test windows) per epoch.
    pub fn product_flops(
        &self,
        input_width: usize,
        input_nnz: usize,
        (train, evaluated): (usize, usize),
        epochs: usize,
        plugin: PluginReg<'_>,
    ) -> f64 {
        let (first, rest) = self.kernel_macs(input_width, input_nnz, plugin);
        2.0 * epochs as f64 * crate::bench::epoch_macs(first as f64, rest as f64, train as f64, evaluated as f64)
    }

    /// Multiply-adds per sample of the forward products: `(first, rest)`, where `first` is
    /// the products with the model's input (which need no input gradient) and `rest` the
    /// others. Dense counts its kernel once per row it is applied to (the first reads
    /// `input_nnz` inputs), a convolution once per output position, a recurrent layer its
    /// kernel and recurrent kernel once per step (the recurrent product is in `rest`:
    /// backpropagation through time needs its input gradient). `(0, 0)` when the model
    /// cannot be built.
    fn kernel_macs(&self, input_width: usize, input_nnz: usize, plugin: PluginReg<'_>) -> (usize, usize) {
        let Ok(mut model) = self.model(0, plugin) else { return (0, 0) };
        if model.build(input_width).is_err() {
            return (0, 0);
        }
        let Some(input) = model.model_input_shape().cloned() else { return (0, 0) };
        let shapes = model.layer_shapes().unwrap_or_default();
        let (mut first, mut rest, mut seen) = (0, 0, false);
        let mut shape_in = &input;
        for (layer, out) in model.layers().iter().zip(shapes) {
            // The first layer with products reads the model's input (Flatten and pooling
            // before it move values, they do not compute).
            let nnz = if seen { usize::MAX } else { input_nnz };
            let (inputs, recurrent) = layer_macs(layer.as_ref(), shape_in, out, nnz);
            if seen {
                rest += inputs + recurrent;
            } else if inputs + recurrent > 0 {
                (first, rest, seen) = (inputs, recurrent, true);
            }
            shape_in = out;
        }
        (first, rest)
    }
}

/// One layer's forward multiply-adds per sample from its input and output shapes:
/// `(products with its input, recurrent products)`.
fn layer_macs(layer: &dyn Layer, input: &Shape, output: &Shape, input_nnz: usize) -> (usize, usize) {
    let numel = |name: &str| layer.params().iter().find(|p| p.name() == name).map_or(0, |p| p.shape().iter().product());
    let kernel = numel("kernel");
    match layer.class_name() {
        "Dense" => {
            let Some(param) = layer.params().iter().find(|p| p.name() == "kernel") else { return (0, 0) };
            let (rows, units) = (param.shape()[0], param.shape()[1]);
            let positions = input.numel() / rows.max(1);
            (positions * input_nnz.min(rows) * units, 0)
        }
        "Conv1D" | "Conv2D" => {
            let filters = output.dims().last().copied().unwrap_or(1).max(1);
            (output.numel() / filters * kernel, 0)
        }
        "SimpleRNN" | "LSTM" | "GRU" => {
            let time = input.dims().first().copied().unwrap_or(0);
            (time * kernel, time * numel("recurrent_kernel"))
        }
        _ => (0, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_flops_count_forward_and_backward_products() {
        let exp = find("mnist_96x2").unwrap();
        // 100 rows at split 0.2: 80 train, 20 validation; kernels 784×96, 96×96, 96×10.
        let (k0, rest) = (784 * 96, 96 * 96 + 96 * 10);
        let expected = 2.0 * 3.0 * (80.0 * (2 * k0 + 3 * rest) as f64 + 20.0 * (k0 + rest) as f64);
        assert_eq!(exp.product_flops(784, 784, (80, 20), 3, None), expected);
        // A sparse first layer costs its stored entries, not its width.
        let imdb = find("imdb_original").unwrap();
        let (k0, rest) = (128 * 16, 16 * 16 + 16);
        let expected = 2.0 * (60.0 * (2 * k0 + 3 * rest) as f64 + 40.0 * (k0 + rest) as f64);
        assert_eq!(imdb.product_flops(10_000, 128, (60, 40), 1, None), expected);
        // A convolution per output position, a recurrent layer per step.
        let conv = find("weather_conv1d").unwrap();
        let (c1, c2, c3) = (97 * 24 * 10 * 8, 37 * 12 * 8 * 8, 13 * 6 * 8 * 8);
        assert_eq!(conv.kernel_macs(1200, 1200, None), (c1, c2 + c3 + 8));
        let lstm = find("weather_lstm").unwrap();
        assert_eq!(lstm.kernel_macs(1200, 1200, None), (120 * 10 * 64, 120 * 16 * 64 + 16));
        let convnet = find("mnist_convnet").unwrap();
        let k = 26 * 26 * 9 * 32 + 11 * 11 * 9 * 32 * 64 + 3 * 3 * 9 * 64 * 128 + 1152 * 10;
        assert_eq!(convnet.cost_per_sample(784, 784, None), k);
    }

    #[test]
    fn names_are_unique_and_default_selection_skips_custom() {
        let all = select(&[]).unwrap();
        assert_eq!(all.len(), 21);
        assert!(all.iter().all(|e| e.name != "imdb_custom"));
        let mut names: Vec<_> = EXPERIMENTS.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EXPERIMENTS.len());
    }

    #[test]
    fn only_keeps_table_order_and_rejects_unknown_names() {
        let picked = select(&["imdb_smaller".into(), "mnist_logreg".into()]).unwrap();
        assert_eq!(picked.iter().map(|e| e.name).collect::<Vec<_>>(), ["mnist_logreg", "imdb_smaller"]);
        assert!(select(&["nope".into()]).unwrap_err().to_string().contains("imdb_original"));
    }

    #[test]
    fn models_match_the_notebook_parameter_counts() {
        // Parameter counts of the notebook's model.summary() (fixtures/keras/summary_*.txt).
        let count = |name: &str, width: usize| {
            let mut m = find(name).unwrap().model(0, None).unwrap();
            m.build(width).unwrap();
            m.param_count()
        };
        assert_eq!(count("mnist_lr1", 784), 407_050);
        assert_eq!(count("mnist_logreg", 784), 7_850);
        assert_eq!(count("mnist_96x2", 784), 85_642);
        assert_eq!(count("imdb_original", 10_000), 160_305);
        assert_eq!(count("imdb_smaller", 10_000), 40_029);
        assert_eq!(count("imdb_larger", 10_000), 5_383_681);
        // docs/progression.md: the convnet has a quarter of the dense model's parameters.
        assert_eq!(find("mnist_dense_5ep").unwrap().param_count(784), Some(407_050));
        assert_eq!(find("mnist_convnet").unwrap().param_count(784), Some(104_202));
        assert_eq!(find("weather_lstm").unwrap().param_count(1200), Some(4 * 16 * (10 + 16 + 1) + 17));
        assert_eq!(find("weather_gru").unwrap().param_count(1200), Some(3 * 16 * (10 + 16 + 2) + 17));
        assert!(find("imdb_custom").unwrap().model(0, None).is_err());
        assert!(find("imdb_custom").unwrap().needs_plugin() && !find("imdb_l2").unwrap().needs_plugin());
    }

    #[test]
    fn cost_reads_the_kernels() {
        // 128 words × 16 units + 16 × 16 + 16 × 1.
        assert_eq!(find("imdb_original").unwrap().cost_per_sample(10_000, 128, None), 128 * 16 + 256 + 16);
        assert_eq!(find("mnist_logreg").unwrap().cost_per_sample(784, 784, None), 7_840);
    }
}
