//! The data sets, loaded and vectorized once, then shared read-only by every run; each
//! with its common-sense baseline.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use kiln_datasets::{ImdbArgs, Loader, OutputMode, Provenance, Source, Split, TextVectorization, vectorize_sequences};
use kiln_tensor::Matrix;
use kiln_trainer::{Features, WindowOptions, Windows};

use super::experiments::{DataSet, Experiment, Input, WEATHER_STEPS};

/// Keras' `imdb.load_data` shuffles with seed 113; we use it for the review order too, so
/// the validation tail is the same whatever the model seed.
pub const IMDB_ORDER_SEED: u64 = 113;

/// Vocabulary size of the multi-hot encoding (`[UNK]` included).
pub const MAX_TOKENS: usize = 10_000;

/// A data set ready for `fit`: inputs, one-column labels and where they came from.
#[derive(Debug)]
pub struct Inputs {
    /// Training inputs (the validation tail included: `fit` splits it off).
    pub features: Features,
    /// Class ids (MNIST) or 0/1 (IMDB), one column.
    pub labels: Matrix,
    /// Where the data came from (`None`: the bundled weather series, which has no other
    /// form; `representation` says where it is).
    pub provenance: Option<Provenance>,
    /// Average non-zeros per row (784 for images), for scheduling.
    pub nnz_per_row: usize,
    /// How the inputs were made from the data, for the report.
    pub representation: String,
    /// Validation inputs and targets given apart (the weather's windows); `None`: `fit`
    /// splits the validation tail off `features`.
    pub validation: Option<(Features, Matrix)>,
    /// Test inputs and targets, evaluated after every epoch (the weather's).
    pub test: Option<(Features, Matrix)>,
    /// The common-sense baseline.
    pub baseline: Baseline,
}

impl Inputs {
    /// Samples trained on and samples only evaluated per epoch (validation, and test when
    /// there is one), for a `fit` with this validation `split` when none is given apart.
    pub fn sample_counts(&self, split: f64) -> (usize, usize) {
        let n = self.labels.rows();
        match &self.validation {
            Some((v, _)) => (n, v.as_ref().len() + self.test.as_ref().map_or(0, |(t, _)| t.as_ref().len())),
            None => {
                let train = (n as f64 * (1.0 - split)).floor() as usize;
                (train, n - train)
            }
        }
    }
}

/// A common-sense baseline: what it predicts and its score on the validation part (and on
/// the test part, where there is one), in the data set's metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// What it predicts, in words.
    pub what: String,
    /// Validation accuracy (classification) or MAE (weather).
    pub validation: f64,
    /// Test MAE (weather).
    pub test: Option<f64>,
}

/// The majority class of the training rows (the first `⌊n·(1 − split)⌋`), scored on the
/// validation tail: the accuracy of always predicting it.
pub fn majority_baseline(labels: &[f32], split: f64) -> Baseline {
    let train = (labels.len() as f64 * (1.0 - split)).floor() as usize;
    let mut counts = std::collections::BTreeMap::<i64, usize>::new();
    for &l in &labels[..train] {
        *counts.entry(l as i64).or_default() += 1;
    }
    // The most frequent class; ties to the smallest (numpy's argmax of bincount).
    let class = counts.iter().max_by_key(|&(c, n)| (*n, std::cmp::Reverse(*c))).map_or(0, |(c, _)| *c);
    let tail = &labels[train..];
    let hits = tail.iter().filter(|&&l| l as i64 == class).count();
    Baseline {
        what: format!("always class {class}, the training part's majority"),
        validation: hits as f64 / tail.len().max(1) as f64,
        test: None,
    }
}

/// `--imdb`: which form of IMDB the experiments train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImdbForm {
    /// Keras' integer form on full data (`imdb.npz`), the text form on the bundled subset.
    Auto,
    /// `imdb.load_data(num_words=10000)` + `vectorize_sequences`: the notebook's inputs
    /// (`--data bundled`: the bundled reviews in Keras' integer form).
    Keras,
    /// The aclImdb reviews through `TextVectorization(max_tokens=10000, output_mode="multi_hot")`.
    Text,
}

/// Seed of the data variants (the noise channels' values, the labels' permutation): fixed,
/// like the notebook's one draw, so runs of different seeds see the same data.
pub const VARIANT_SEED: u64 = 1;

/// The loaded data sets (only those the selected experiments need).
#[derive(Debug, Default)]
pub struct Data {
    /// MNIST, if needed.
    pub mnist: Option<Inputs>,
    /// IMDB, if needed.
    pub imdb: Option<Inputs>,
    /// MNIST variants (noise or zeros channels, shuffled labels), if needed.
    pub variants: std::collections::BTreeMap<Input, Inputs>,
    /// The weather windows, if needed.
    pub weather: Option<Inputs>,
}

impl Data {
    /// The inputs of `set` (loaded by [`load`] when an experiment needed them).
    pub fn get(&self, set: DataSet) -> &Inputs {
        match set {
            DataSet::Mnist => self.mnist.as_ref(),
            DataSet::Imdb => self.imdb.as_ref(),
            DataSet::Weather => self.weather.as_ref(),
        }
        .expect("data set loaded for every selected experiment")
    }

    /// What `exp` trains on: its data set, or the variant it asks for.
    pub fn inputs(&self, exp: &Experiment) -> &Inputs {
        match exp.input {
            Input::Plain => self.get(exp.data),
            v => self.variants.get(&v).expect("variant built for every selected experiment"),
        }
    }
}

/// Builds the MNIST `variant` from the loaded digits.
fn variant(base: &Inputs, variant: Input) -> anyhow::Result<Inputs> {
    let Features::Bytes { values, divisor } = &base.features else { anyhow::bail!("MNIST variants need pixel bytes") };
    let (n, w) = (values.rows(), values.cols());
    let mut rng = kiln_tensor::Rng::stream(VARIANT_SEED, variant_stream(variant));
    let (features, labels, representation) = match variant {
        Input::NoiseChannels => {
            // Pixels / 255, then 784 uniform values in [0, 1): np.concatenate([x, np.random.random(x.shape)], 1).
            let mut data = Vec::with_capacity(n * 2 * w);
            for i in 0..n {
                data.extend(values.row(i).iter().map(|&b| b as f32 / divisor));
                data.extend((0..w).map(|_| rng.uniform()));
            }
            let what = format!(
                "{}; then {w} uniform [0, 1) noise channels (stream `noise-channels`, seed {VARIANT_SEED})",
                base.representation
            );
            (Features::Dense(Matrix::from_vec(n, 2 * w, data)?), base.labels.clone(), what)
        }
        Input::ZerosChannels => {
            // Stored sparse: the zero channels (and blank pixels) cost nothing to multiply,
            // and a zero input contributes exactly nothing to outputs or gradients.
            let mut m = kiln_tensor::CsrMatrix::with_cols(2 * w);
            let (mut idx, mut val) = (Vec::with_capacity(w), Vec::with_capacity(w));
            for i in 0..n {
                idx.clear();
                val.clear();
                for (j, &b) in values.row(i).iter().enumerate().filter(|(_, b)| **b != 0) {
                    idx.push(j as u32);
                    val.push(b as f32 / divisor);
                }
                m.push_row(&idx, &val)?;
            }
            let what = format!("{}; then {w} zero channels (stored sparse)", base.representation);
            (Features::Sparse(m), base.labels.clone(), what)
        }
        Input::ShuffledLabels => {
            // np.random.shuffle(train_labels): every label, the validation tail's included.
            let mut labels = base.labels.as_slice().to_vec();
            rng.shuffle(&mut labels);
            let what = format!(
                "{}; labels randomly permuted (stream `shuffled-labels`, seed {VARIANT_SEED})",
                base.representation
            );
            (base.features.clone(), Matrix::from_vec(n, 1, labels)?, what)
        }
        Input::Plain => unreachable!("not a variant"),
    };
    let nnz_per_row = match &features {
        Features::Sparse(m) => m.nnz() / m.rows().max(1),
        f => f.width(),
    };
    let baseline = majority_baseline(labels.as_slice(), DataSet::Mnist.validation_split());
    Ok(Inputs {
        features,
        labels,
        provenance: base.provenance.clone(),
        nnz_per_row,
        representation,
        validation: None,
        test: None,
        baseline,
    })
}

/// The named random stream of a variant.
fn variant_stream(v: Input) -> &'static str {
    match v {
        Input::NoiseChannels => "noise-channels",
        Input::ShuffledLabels => "shuffled-labels",
        _ => "unused",
    }
}

/// Parses `--data`: `auto`, `bundled`, `full`, or a folder with `mnist/` and `imdb/` inside.
pub fn parse_source(arg: &str) -> Source {
    match arg {
        "auto" => Source::Auto,
        "bundled" => Source::Bundled,
        "full" => Source::Full,
        path => Source::Path(PathBuf::from(path)),
    }
}

/// Loads the data sets in `needed`, each once.
pub fn load(source: &Source, selected: &[&Experiment], form: ImdbForm) -> anyhow::Result<Data> {
    let loader = Loader::from_env();
    let mut data = Data::default();
    let needed: Vec<DataSet> = selected.iter().map(|e| e.data).collect();
    if needed.contains(&DataSet::Mnist) {
        let base = mnist(&loader, &per_set(source, "mnist"))?;
        for exp in selected.iter().filter(|e| e.input != Input::Plain) {
            if let std::collections::btree_map::Entry::Vacant(slot) = data.variants.entry(exp.input) {
                slot.insert(variant(&base, exp.input)?);
            }
        }
        data.mnist = Some(base);
    }
    if needed.contains(&DataSet::Imdb) {
        let source = per_set(source, "imdb");
        data.imdb = Some(match (form, &source) {
            (ImdbForm::Keras, _) => imdb_keras(&loader, &source)?,
            (ImdbForm::Text, _) | (ImdbForm::Auto, Source::Bundled) => imdb_text(&loader, &source)?,
            (ImdbForm::Auto, Source::Path(p)) if is_npz(p) => imdb_keras(&loader, &source)?,
            (ImdbForm::Auto, Source::Path(_)) => imdb_text(&loader, &source)?,
            (ImdbForm::Auto, Source::Full) => imdb_keras(&loader, &Source::Full)?,
            // Auto: the notebook's imdb.npz when it can be had, else today's bundled text
            // subset (so offline runs keep their numbers), saying why.
            (ImdbForm::Auto, Source::Auto) => {
                match imdb_keras(&Loader { verbose: false, ..loader.clone() }, &Source::Full) {
                    Ok(inputs) => {
                        if let Some(p) = &inputs.provenance {
                            eprintln!("kiln-datasets: {}", p.message);
                        }
                        inputs
                    }
                    Err(e) => {
                        let mut inputs = imdb_text(&Loader { verbose: false, ..loader.clone() }, &Source::Bundled)?;
                        if let Some(p) = inputs.provenance.as_mut() {
                            p.message = format!("{} because imdb.npz is not at hand: {e:#}", p.message);
                            eprintln!("kiln-datasets: {}", p.message);
                        }
                        inputs
                    }
                }
            }
        });
    }
    if needed.contains(&DataSet::Weather) {
        data.weather = Some(weather()?);
    }
    Ok(data)
}

/// The weather windows of `docs/progression.md`: the bundled series' ten features
/// normalized with the training part's mean and standard deviation (`ddof = 0`), windows
/// of 120 hours over `raw[:-delay]` with targets `temperature[delay:]` (`delay = 143`:
/// the temperature 24 hours after a window's last hour), split by time into half training,
/// a quarter validation and the rest test. The windows are start positions over one shared
/// series, never copies. The baseline predicts the window's last temperature.
fn weather() -> anyhow::Result<Inputs> {
    let w = kiln_datasets::beijing_weather().context("loading the weather series")?;
    let (n, cols) = (w.features.rows(), w.features.cols());
    let (num_train, num_val) = (n / 2, n / 4);
    let mut raw = w.features;
    let mut moments = Vec::with_capacity(cols);
    for j in 0..cols {
        let mean = (0..num_train).map(|i| f64::from(raw.get(i, j))).sum::<f64>() / num_train as f64;
        let var = (0..num_train).map(|i| (f64::from(raw.get(i, j)) - mean).powi(2)).sum::<f64>() / num_train as f64;
        moments.push((mean, var.sqrt()));
    }
    for i in 0..n {
        for (v, &(mean, std)) in raw.row_mut(i).iter_mut().zip(&moments) {
            *v = ((f64::from(*v) - mean) / std) as f32;
        }
    }
    let delay = WEATHER_STEPS + 24 - 1;
    let series = Arc::new(raw.slice_rows(0, n - delay));
    let targets = Matrix::from_vec(n - delay, 1, w.temperature[delay..].to_vec())?;
    let cut = |start: usize, end: Option<usize>| -> anyhow::Result<(Windows, Matrix)> {
        let options = WindowOptions { start_index: Some(start), end_index: end, ..WindowOptions::new(WEATHER_STEPS) };
        let (windows, y) = Windows::new(series.clone(), Some(&targets), &options)?;
        Ok((windows, y.expect("targets given")))
    };
    let (train, train_y) = cut(0, Some(num_train))?;
    let (val, val_y) = cut(num_train, Some(num_train + num_val))?;
    let (test, test_y) = cut(num_train + num_val, None)?;
    // The last hour's temperature (feature 1), de-normalized, against each target.
    let (mean, std) = moments[1];
    let baseline_mae = |windows: &Windows, y: &Matrix| {
        let total: f64 = (0..windows.len())
            .map(|k| {
                let last = windows.start(k) + WEATHER_STEPS - 1;
                (f64::from(series.get(last, 1)) * std + mean - f64::from(y.get(k, 0))).abs()
            })
            .sum();
        total / windows.len() as f64
    };
    let baseline = Baseline {
        what: "the window's last temperature".into(),
        validation: baseline_mae(&val, &val_y),
        test: Some(baseline_mae(&test, &test_y)),
    };
    let representation = format!(
        "{n} hours × 10 features ({}), normalized with the first {num_train} hours' mean and std; windows of \
         {WEATHER_STEPS} hours, target the temperature 24 hours after the last: {} training, {} validation, {} test \
         windows (views of one series); {}",
        kiln_datasets::WEATHER_FEATURES.join(", "),
        train.len(),
        val.len(),
        test.len(),
        w.path.display()
    );
    Ok(Inputs {
        nnz_per_row: WEATHER_STEPS * cols,
        features: Features::Windows(train),
        labels: train_y,
        provenance: None,
        representation,
        validation: Some((Features::Windows(val), val_y)),
        test: Some((Features::Windows(test), test_y)),
        baseline,
    })
}

/// An `.npz` file, or a folder holding `imdb.npz`.
fn is_npz(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "npz") || p.join("imdb.npz").is_file()
}

/// For `--data PATH`, the data set's own folder inside PATH.
fn per_set(source: &Source, name: &str) -> Source {
    match source {
        Source::Path(root) => Source::Path(imdb_archive(&root.join(name))),
        other => other.clone(),
    }
}

/// `dir/imdb.npz`, `dir/mnist.npz`, `dir/aclImdb_v1.tar.gz` or `dir/aclImdb` when present,
/// else `dir` itself.
fn imdb_archive(dir: &Path) -> PathBuf {
    ["imdb.npz", "mnist.npz", "aclImdb_v1.tar.gz", "aclImdb"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .unwrap_or_else(|| dir.into())
}

/// MNIST training digits (Keras' `mnist.npz` when full), kept as bytes and scaled by 1/255
/// per batch.
fn mnist(loader: &Loader, source: &Source) -> anyhow::Result<Inputs> {
    let loaded = loader.keras_mnist(source, Split::Train).context("loading MNIST")?;
    let set = loaded.data;
    let labels = Matrix::from_vec(set.labels.len(), 1, set.labels.iter().map(|&l| f32::from(l)).collect())?;
    let nnz_per_row = set.images.cols();
    let baseline = majority_baseline(labels.as_slice(), DataSet::Mnist.validation_split());
    Ok(Inputs {
        features: Features::Bytes { values: set.images, divisor: 255.0 },
        labels,
        provenance: Some(loaded.provenance),
        nnz_per_row,
        representation: "28×28 uint8 pixels / 255, flattened to 784".into(),
        validation: None,
        test: None,
        baseline,
    })
}

/// The notebook's IMDB: `imdb.load_data(num_words=10000)`'s training split (shuffled by
/// `RandomState(113)`), multi-hot by `vectorize_sequences(dimension=10000)`.
fn imdb_keras(loader: &Loader, source: &Source) -> anyhow::Result<Inputs> {
    let args = ImdbArgs { num_words: Some(MAX_TOKENS as i64), ..ImdbArgs::default() };
    let loaded = loader.keras_imdb(source, &args).context("loading IMDB (Keras' integer form)")?;
    let train = loaded.data.train;
    let x = vectorize_sequences(&train.x, MAX_TOKENS)?;
    let labels = Matrix::from_vec(train.y.len(), 1, train.y.iter().map(|&l| l as f32).collect())?;
    let nnz_per_row = x.nnz() / x.rows().max(1);
    let baseline = majority_baseline(labels.as_slice(), DataSet::Imdb.validation_split());
    Ok(Inputs {
        features: Features::Sparse(x),
        labels,
        provenance: Some(loaded.provenance),
        nnz_per_row,
        validation: None,
        test: None,
        baseline,
        representation: format!(
            "Keras' integer form: imdb.load_data(num_words={MAX_TOKENS}) (RandomState(113) order), \
             vectorize_sequences(dimension={MAX_TOKENS})"
        ),
    })
}

/// IMDB training reviews as 10,000-token multi-hot rows; the vocabulary is adapted on the
/// whole training split, validation tail included, as the notebook does.
fn imdb_text(loader: &Loader, source: &Source) -> anyhow::Result<Inputs> {
    let loaded = loader.imdb(source, Split::Train, IMDB_ORDER_SEED).context("loading IMDB")?;
    let reviews = loaded.data;
    let mut tv = TextVectorization::new(OutputMode::MultiHot, Some(MAX_TOKENS))?;
    tv.adapt(&reviews.texts);
    let x = tv.multi_hot(&reviews.texts);
    let labels = Matrix::from_vec(reviews.labels.len(), 1, reviews.labels.iter().map(|&l| f32::from(l)).collect())?;
    let nnz_per_row = x.nnz() / x.rows().max(1);
    let baseline = majority_baseline(labels.as_slice(), DataSet::Imdb.validation_split());
    Ok(Inputs {
        features: Features::Sparse(x),
        labels,
        provenance: Some(loaded.provenance),
        nnz_per_row,
        validation: None,
        test: None,
        baseline,
        representation: format!(
            "aclImdb text: TextVectorization(max_tokens={MAX_TOKENS}, output_mode=\"multi_hot\") adapted on the \
             training reviews (seeded ChaCha8 order, seed {IMDB_ORDER_SEED})"
        ),
    })
}
