//! One error type for code that uses several kiln crates.

/// Any kiln error: `?` converts each crate's error into it, and its `Display` is the
/// crate's message (which names the file, layer or argument at fault). `Debug` prints the
/// same message, so `fn main() -> Result<(), kiln::Error>` shows it, not the variant's
/// fields.
#[derive(thiserror::Error)]
pub enum Error {
    /// Building, training, evaluating, saving or loading a model.
    #[error(transparent)]
    Train(#[from] kiln_trainer::TrainError),
    /// Importing a Keras model or replaying a trace.
    #[cfg(feature = "keras")]
    #[error(transparent)]
    Keras(#[from] kiln_keras::KerasError),
    /// Loading a data set.
    #[cfg(feature = "datasets")]
    #[error(transparent)]
    Data(#[from] kiln_datasets::Error),
    /// Exporting ONNX.
    #[cfg(feature = "onnx")]
    #[error(transparent)]
    Onnx(#[from] kiln_onnx::OnnxError),
    /// An optimizer identifier kiln does not know (`"nadam"`).
    #[error(transparent)]
    Optimizer(#[from] kiln_optimizers::UnknownOptimizer),
    /// A layer's configuration or parameters.
    #[error(transparent)]
    Layer(#[from] kiln_layers::LayerError),
    /// A regularizer's configuration or computation.
    #[error(transparent)]
    Regularizer(#[from] kiln_regularizers::RegularizerError),
    /// A matrix of the wrong shape.
    #[error(transparent)]
    Shape(#[from] kiln_tensor::ShapeError),
    /// A file write or read.
    #[error(transparent)]
    File(#[from] kiln_fs::FileError),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_the_message_of_any_feature_set() {
        let err: Error = "nadam".parse::<kiln_optimizers::Optimizer>().unwrap_err().into();
        assert!(format!("{err:?}").starts_with("optimizer `nadam` is a Keras optimizer kiln does not implement"));
        assert_eq!(format!("{err:?}"), err.to_string());
    }

    #[cfg(feature = "datasets")]
    #[test]
    fn debug_prints_the_message_main_shows() {
        let err: Error = kiln_datasets::Error::InvalidArgument("`maxlen` must be at least 1".into()).into();
        assert_eq!(format!("{err:?}"), "invalid argument: `maxlen` must be at least 1");
        assert_eq!(format!("{err:?}"), err.to_string());
    }
}
