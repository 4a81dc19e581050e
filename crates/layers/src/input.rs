//! What a layer reads: a dense batch, a sparse (CSR) one, or token ids.

use kiln_tensor::{CsrMatrix, IdView, View};

/// A batch fed to a layer: dense rows, or CSR rows for sparse data such as multi-hot text.
#[derive(Debug, Clone, Copy)]
pub enum LayerInput<'a> {
    /// A row-major dense batch.
    Dense(View<'a>),
    /// A sparse batch.
    Sparse(&'a CsrMatrix),
    /// Integer token ids, one sequence per row (for `Embedding`).
    Ids(IdView<'a>),
}

impl LayerInput<'_> {
    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        match self {
            LayerInput::Dense(v) => v.rows,
            LayerInput::Sparse(s) => s.rows(),
            LayerInput::Ids(v) => v.rows,
        }
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        match self {
            LayerInput::Dense(v) => v.cols,
            LayerInput::Sparse(s) => s.cols(),
            LayerInput::Ids(v) => v.cols,
        }
    }
}
