//! The chapter's experiments as data: one row per experiment, one builder for all.

use anyhow::{Context, bail};
use kiln_layers::{Activation, Dense, Dropout, Layer};
use kiln_optimizers::RMSprop;
use kiln_regularizers::{L1, L1L2, L2, Regularizer};
use kiln_trainer::{Loss, Sequential};

/// Which data set an experiment trains on; it fixes the fit settings the notebook uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSet {
    /// MNIST digits, pixels / 255.
    Mnist,
    /// IMDB reviews, 10,000-token multi-hot.
    Imdb,
}

impl DataSet {
    /// The notebook's `validation_split`.
    pub fn validation_split(self) -> f64 {
        match self {
            DataSet::Mnist => 0.2,
            DataSet::Imdb => 0.4,
        }
    }

    /// The notebook's `batch_size`.
    pub fn batch_size(self) -> usize {
        match self {
            DataSet::Mnist => 128,
            DataSet::Imdb => 512,
        }
    }

    /// The compiled loss.
    pub fn loss(self) -> Loss {
        match self {
            DataSet::Mnist => Loss::SparseCategoricalCrossentropy,
            DataSet::Imdb => Loss::BinaryCrossentropy,
        }
    }
}

/// A kernel regularizer of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reg {
    /// `l1(x)`.
    L1(f32),
    /// `l2(x)`.
    L2(f32),
    /// `l1_l2(l1, l2)`.
    L1L2(f32, f32),
    /// The regularizer named on the command line (`--regularizer`, from a plugin).
    Plugin,
}

/// One layer of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LayerSpec {
    /// `Dense(units, activation, kernel_regularizer)`.
    Dense(usize, Activation, Option<Reg>),
    /// `Dropout(rate)`.
    Dropout(f32),
}

/// One experiment of the chapter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Experiment {
    /// The name used on the command line, in file names and in the report.
    pub name: &'static str,
    /// The data it trains on.
    pub data: DataSet,
    /// The layer stack.
    pub layers: &'static [LayerSpec],
    /// RMSprop's learning rate.
    pub learning_rate: f32,
    /// Epochs (the notebook's), unless `--epochs` overrides them.
    pub epochs: usize,
    /// Run only when named with `--only` (it needs extra options).
    pub on_request: bool,
}

/// Keras' RMSprop default learning rate.
const DEFAULT_LR: f32 = 1e-3;

/// `Dense(units, relu)`.
const fn relu(units: usize) -> LayerSpec {
    LayerSpec::Dense(units, Activation::Relu, None)
}

/// `Dense(units, relu, kernel_regularizer=reg)`.
const fn relu_reg(units: usize, reg: Reg) -> LayerSpec {
    LayerSpec::Dense(units, Activation::Relu, Some(reg))
}

const SOFTMAX10: LayerSpec = LayerSpec::Dense(10, Activation::Softmax, None);
const SIGMOID1: LayerSpec = LayerSpec::Dense(1, Activation::Sigmoid, None);

/// An MNIST row of the table.
const fn mnist(name: &'static str, layers: &'static [LayerSpec], learning_rate: f32, epochs: usize) -> Experiment {
    Experiment { name, data: DataSet::Mnist, layers, learning_rate, epochs, on_request: false }
}

/// An IMDB row of the table (RMSprop default, 20 epochs).
const fn imdb(name: &'static str, layers: &'static [LayerSpec]) -> Experiment {
    Experiment { name, data: DataSet::Imdb, layers, learning_rate: DEFAULT_LR, epochs: 20, on_request: false }
}

/// Every experiment, in report order.
pub const EXPERIMENTS: &[Experiment] = &[
    mnist("mnist_lr1", &[relu(512), SOFTMAX10], 1.0, 10),
    mnist("mnist_lr001", &[relu(512), SOFTMAX10], 1e-2, 10),
    mnist("mnist_logreg", &[SOFTMAX10], DEFAULT_LR, 20),
    mnist("mnist_96x2", &[relu(96), relu(96), SOFTMAX10], DEFAULT_LR, 20),
    imdb("imdb_original", &[relu(16), relu(16), SIGMOID1]),
    imdb("imdb_smaller", &[relu(4), relu(4), SIGMOID1]),
    imdb("imdb_larger", &[relu(512), relu(512), SIGMOID1]),
    imdb("imdb_l2", &[relu_reg(16, Reg::L2(0.002)), relu_reg(16, Reg::L2(0.002)), SIGMOID1]),
    imdb("imdb_l1", &[relu_reg(16, Reg::L1(0.001)), relu_reg(16, Reg::L1(0.001)), SIGMOID1]),
    imdb("imdb_l1l2", &[relu_reg(16, Reg::L1L2(0.001, 0.001)), relu_reg(16, Reg::L1L2(0.001, 0.001)), SIGMOID1]),
    imdb("imdb_dropout", &[relu(16), LayerSpec::Dropout(0.5), relu(16), LayerSpec::Dropout(0.5), SIGMOID1]),
    Experiment {
        on_request: true,
        ..imdb("imdb_custom", &[relu_reg(16, Reg::Plugin), relu_reg(16, Reg::Plugin), SIGMOID1])
    },
];

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
    /// Whether a layer takes its regularizer from `--regularizer`.
    pub fn needs_plugin(&self) -> bool {
        self.layers.iter().any(|l| matches!(l, LayerSpec::Dense(_, _, Some(Reg::Plugin))))
    }

    /// The compiled, unbuilt model for `seed`; `plugin` fills the [`Reg::Plugin`] slots.
    pub fn model(&self, seed: u64, plugin: Option<&dyn Regularizer>) -> anyhow::Result<Sequential> {
        let mut model = Sequential::new().seed(seed).name(self.name);
        for spec in self.layers {
            model.push(layer(spec, plugin).with_context(|| format!("experiment {}", self.name))?);
        }
        model.compile(RMSprop::new(self.learning_rate), self.data.loss(), &["accuracy"])?;
        Ok(model)
    }

    /// Rough multiply-adds per training sample (first layer reading `nnz` inputs),
    /// used to start the longest runs first.
    pub fn cost_per_sample(&self, input_nnz: usize) -> usize {
        let mut width = input_nnz;
        let mut cost = 0;
        for spec in self.layers {
            if let LayerSpec::Dense(units, ..) = spec {
                cost += width * units;
                width = *units;
            }
        }
        cost
    }
}

/// One layer built from its spec.
fn layer(spec: &LayerSpec, plugin: Option<&dyn Regularizer>) -> anyhow::Result<Box<dyn Layer>> {
    Ok(match *spec {
        LayerSpec::Dropout(rate) => Box::new(Dropout::new(rate)),
        LayerSpec::Dense(units, activation, reg) => {
            let mut dense = Dense::new(units).activation(activation);
            dense.kernel_regularizer = match reg {
                None => None,
                Some(Reg::L1(a)) => Some(Box::new(L1::new(a))),
                Some(Reg::L2(a)) => Some(Box::new(L2::new(a))),
                Some(Reg::L1L2(a, b)) => Some(Box::new(L1L2::new(a, b))),
                Some(Reg::Plugin) => match plugin {
                    Some(r) => Some(r.clone_box()),
                    None => bail!("needs a plugin regularizer: pass --regularizer 'pkg>Name' --config '{{...}}'"),
                },
            };
            Box::new(dense)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_default_selection_skips_custom() {
        let all = select(&[]).unwrap();
        assert_eq!(all.len(), 11);
        assert!(all.iter().all(|e| e.name != "imdb_custom"));
        let mut names: Vec<_> = EXPERIMENTS.iter().map(|e| e.name).collect();
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
        assert!(find("imdb_custom").unwrap().model(0, None).is_err());
    }
}
