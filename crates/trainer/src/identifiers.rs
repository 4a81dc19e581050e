//! Keras' string identifiers where `compile` takes a loss or metrics
//! (`compile("rmsprop", "binary_crossentropy", ["accuracy"])`), beside kiln's typed values.

use std::str::FromStr;

use crate::{Loss, Metric, NamedMetric, TrainError};

/// The loss identifiers kiln computes.
pub const KNOWN_LOSSES: &str = "sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy (bce), \
                                mean_squared_error (mse), mean_absolute_error (mae), and their class names";

/// Keras losses kiln does not compute, so the error can say so rather than "unknown"
/// (`keras/src/losses/__init__.py`).
const KERAS_ONLY_LOSSES: &[&str] = &[
    "kl_divergence",
    "kld",
    "poisson",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "mean_absolute_percentage_error",
    "mape",
    "mean_squared_logarithmic_error",
    "msle",
    "cosine_similarity",
    "log_cosh",
    "huber",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "dice",
    "tversky",
    "circle",
    "ctc",
];

impl FromStr for Loss {
    type Err = TrainError;

    /// [`Loss::from_keras`], with an error that lists what kiln knows.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Loss::from_keras(name).ok_or_else(|| {
            // Keras' `compile_utils.get_loss` picks binary, sparse or categorical
            // crossentropy for these from the labels' and outputs' shapes.
            if ["crossentropy", "ce"].contains(&name.to_lowercase().as_str()) {
                return TrainError::Config(format!(
                    "loss `{name}`: Keras chooses the crossentropy from the labels' shape; kiln asks you to name \
                     it: binary_crossentropy, sparse_categorical_crossentropy or categorical_crossentropy"
                ));
            }
            let snake = crate::keras_snake_case(name);
            let why = if KERAS_ONLY_LOSSES.contains(&name.to_lowercase().as_str())
                || KERAS_ONLY_LOSSES.contains(&snake.as_str())
            {
                "is a Keras loss kiln does not implement"
            } else {
                "is not a loss"
            };
            TrainError::Config(format!("loss `{name}` {why} (kiln knows: {KNOWN_LOSSES})"))
        })
    }
}

/// What `compile` accepts as a loss: a [`Loss`] or a Keras identifier (`"mse"`).
pub trait IntoLoss {
    /// The loss, or why the identifier names none.
    fn into_loss(self) -> Result<Loss, TrainError>;
}

impl IntoLoss for Loss {
    fn into_loss(self) -> Result<Loss, TrainError> {
        Ok(self)
    }
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<Loss, TrainError> {
        self.parse()
    }
}

impl IntoLoss for String {
    fn into_loss(self) -> Result<Loss, TrainError> {
        self.parse()
    }
}

impl FromStr for NamedMetric {
    type Err = TrainError;

    /// [`Metric::from_keras`]: Keras' `compile(metrics=["…"])` reading of a string.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Metric::from_keras(name)
    }
}

/// What `compile`'s metric list holds: [`Metric`]s, [`NamedMetric`]s or Keras identifiers
/// (`"accuracy"`, `"mae"`). For no metrics, pass [`NO_METRICS`](crate::NO_METRICS).
pub trait IntoMetric {
    /// The metric with its log key, or why the identifier names none.
    fn into_metric(self) -> Result<NamedMetric, TrainError>;
}

impl IntoMetric for NamedMetric {
    fn into_metric(self) -> Result<NamedMetric, TrainError> {
        Ok(self)
    }
}

impl IntoMetric for Metric {
    fn into_metric(self) -> Result<NamedMetric, TrainError> {
        Ok(self.into())
    }
}

impl IntoMetric for &str {
    fn into_metric(self) -> Result<NamedMetric, TrainError> {
        self.parse()
    }
}

impl IntoMetric for String {
    fn into_metric(self) -> Result<NamedMetric, TrainError> {
        self.parse()
    }
}

impl IntoMetric for &Metric {
    fn into_metric(self) -> Result<NamedMetric, TrainError> {
        Ok(self.clone().into())
    }
}

impl IntoMetric for &NamedMetric {
    fn into_metric(self) -> Result<NamedMetric, TrainError> {
        Ok(self.clone())
    }
}
