//! Keras' optimizer identifiers (`"adam"`, `"RMSprop"`, …) as kiln optimizers, following
//! `keras/src/optimizers/__init__.py` (`get`: a string is a class name, matched without case).

use std::str::FromStr;

use crate::{Adam, AdamW, Optimizer, RMSprop, Sgd, UpdateRule};

/// The identifiers kiln computes, as Keras spells them.
pub const KNOWN_OPTIMIZERS: &str = "sgd, rmsprop, adam, adamw (any case, as Keras reads them)";

/// Keras optimizers kiln does not compute, so the error can say so rather than "unknown".
const KERAS_ONLY: &[&str] = &[
    "adadelta",
    "adafactor",
    "adagrad",
    "adamax",
    "ftrl",
    "lion",
    "lossscaleoptimizer",
    "multioptimizer",
    "optimizermap",
    "muon",
    "nadam",
    "schedulefreeadamw",
];

/// An optimizer identifier kiln cannot turn into an optimizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOptimizer {
    /// The identifier as given.
    pub name: String,
    /// Whether Keras has it (kiln does not compute it) or nobody does (a typo).
    pub in_keras: bool,
}

impl std::fmt::Display for UnknownOptimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = if self.in_keras { "is a Keras optimizer kiln does not implement" } else { "is not an optimizer" };
        write!(f, "optimizer `{}` {why} (kiln knows: {KNOWN_OPTIMIZERS})", self.name)
    }
}

impl std::error::Error for UnknownOptimizer {}

impl FromStr for Optimizer {
    type Err = UnknownOptimizer;

    /// Keras' `optimizers.get("adam")`: the rule with Keras' defaults, including its
    /// default learning rate (0.01 for SGD, 0.001 for the others).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let lower = name.to_lowercase();
        Ok(match lower.as_str() {
            "sgd" => Sgd::default().into(),
            "rmsprop" => RMSprop::default().into(),
            "adam" => Adam::default().into(),
            "adamw" => AdamW::default().into(),
            _ => {
                return Err(UnknownOptimizer {
                    name: name.to_string(),
                    in_keras: KERAS_ONLY.contains(&lower.as_str()),
                });
            }
        })
    }
}

/// What `compile` accepts as an optimizer: an [`Optimizer`], a bare [`UpdateRule`] (Keras'
/// default learning rate) or a Keras identifier (`"rmsprop"`).
pub trait IntoOptimizer {
    /// The optimizer, or why the identifier names none.
    fn into_optimizer(self) -> Result<Optimizer, UnknownOptimizer>;
}

impl IntoOptimizer for Optimizer {
    fn into_optimizer(self) -> Result<Optimizer, UnknownOptimizer> {
        Ok(self)
    }
}

impl<R: UpdateRule + 'static> IntoOptimizer for R {
    fn into_optimizer(self) -> Result<Optimizer, UnknownOptimizer> {
        Ok(self.into())
    }
}

impl IntoOptimizer for &str {
    fn into_optimizer(self) -> Result<Optimizer, UnknownOptimizer> {
        self.parse()
    }
}

impl IntoOptimizer for String {
    fn into_optimizer(self) -> Result<Optimizer, UnknownOptimizer> {
        self.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_identifiers_in_any_case_with_keras_default_rates() {
        for (name, rate) in [("sgd", 0.01), ("SGD", 0.01), ("rmsprop", 0.001), ("RMSprop", 0.001), ("Adam", 0.001)] {
            let opt: Optimizer = name.parse().unwrap();
            assert_eq!(opt.learning_rate(), rate as f32, "{name}");
        }
        let adamw: Optimizer = "adamw".parse().unwrap();
        assert_eq!(format!("{adamw:?}"), format!("{:?}", Optimizer::from(AdamW::default())));
    }

    #[test]
    fn unknown_identifiers_say_whether_keras_has_them() {
        let nadam = "Nadam".parse::<Optimizer>().unwrap_err().to_string();
        assert!(nadam.contains("`Nadam` is a Keras optimizer kiln does not implement"), "{nadam}");
        assert!(nadam.contains("sgd, rmsprop, adam, adamw"), "{nadam}");
        let typo = "adma".parse::<Optimizer>().unwrap_err().to_string();
        assert!(typo.contains("`adma` is not an optimizer"), "{typo}");
    }
}
