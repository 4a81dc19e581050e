//! What a layer reads: a dense batch or a sparse (CSR) one.

use kiln_tensor::{CsrMatrix, View};

/// A batch fed to a layer: dense rows, or CSR rows for sparse data such as multi-hot text.
#[derive(Debug, Clone, Copy)]
pub enum LayerInput<'a> {
    /// A row-major dense batch.
    Dense(View<'a>),
    /// A sparse batch.
    Sparse(&'a CsrMatrix),
}

impl LayerInput<'_> {
    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        match self {
            LayerInput::Dense(v) => v.rows,
            LayerInput::Sparse(s) => s.rows(),
        }
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        match self {
            LayerInput::Dense(v) => v.cols,
            LayerInput::Sparse(s) => s.cols(),
        }
    }
}
