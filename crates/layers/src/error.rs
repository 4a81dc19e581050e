//! Errors a layer reports to its user.

/// What can go wrong configuring a layer or setting its parameters.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayerError {
    /// A configuration value is out of range.
    #[error("layer `{layer}`: {message}")]
    Config {
        /// The layer's name.
        layer: String,
        /// What is wrong.
        message: String,
    },
    /// A parameter name this layer does not have.
    #[error("layer `{layer}` has no parameter `{param}` (it has: {available})")]
    UnknownParam {
        /// The layer's name.
        layer: String,
        /// The requested parameter.
        param: String,
        /// The parameters it does have.
        available: String,
    },
    /// An activation identifier kiln does not compute.
    #[error("unknown activation `{name}` (kiln knows: {known})")]
    UnknownActivation {
        /// The identifier as given.
        name: String,
        /// The ones kiln knows.
        known: &'static str,
    },
    /// Parameter values of the wrong length or shape.
    #[error("layer `{layer}`, parameter `{param}`: expected shape {expected:?}, got {got} values")]
    ParamShape {
        /// The layer's name.
        layer: String,
        /// The parameter.
        param: String,
        /// Its shape.
        expected: Vec<usize>,
        /// How many values were given.
        got: usize,
    },
}
