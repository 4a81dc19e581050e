//! Model inputs: dense, raw bytes (scaled on the fly), sparse rows or token ids, owned or borrowed,
//! gathered into reusable batches.

use kiln_layers::LayerInput;
use kiln_tensor::pool::{for_row_blocks, row_blocks};
use kiln_tensor::prefetch::prefetch;
use kiln_tensor::{ByteMatrix, CsrMatrix, IdMatrix, Matrix, Parallelism, View};

/// Fewest values a thread gathers (below that, one thread is faster).
const MIN_GATHER_PER_THREAD: usize = 32 * 1024;

/// A data set's inputs, one sample per row (owned; pass `&features` to `fit`).
#[derive(Debug, Clone)]
pub enum Features {
    /// Dense `f32` rows.
    Dense(Matrix),
    /// `u8` rows divided by `divisor` when a batch is gathered (images stay 1 byte a pixel).
    Bytes {
        /// The raw values.
        values: ByteMatrix,
        /// What each byte is divided by (255 for pixels).
        divisor: f32,
    },
    /// Sparse rows (multi-hot text).
    Sparse(CsrMatrix),
    /// Integer token ids, one sequence per row (the input of an `Embedding`).
    Ids(IdMatrix),
    /// Windows over one timeseries (Keras' `timeseries_dataset_from_array`), gathered
    /// batch by batch from the series.
    Windows(crate::Windows),
}

/// Borrowed inputs: what `fit`, `evaluate` and `predict` read. Every owned form converts
/// (`&Matrix`, `&CsrMatrix`, `&Features`), so the data set is never copied.
#[derive(Debug, Clone, Copy)]
pub enum FeaturesRef<'a> {
    /// Dense `f32` rows.
    Dense(&'a Matrix),
    /// `u8` rows divided by `divisor` when a batch is gathered.
    Bytes {
        /// The raw values.
        values: &'a ByteMatrix,
        /// What each byte is divided by.
        divisor: f32,
    },
    /// Sparse rows.
    Sparse(&'a CsrMatrix),
    /// Token ids.
    Ids(&'a IdMatrix),
    /// Windows over a timeseries.
    Windows(&'a crate::Windows),
    /// One input per model input, in the model's input order (Keras' `fit([xa, xb], y)`),
    /// each with the same number of samples. See [`FeaturesRef::list`].
    Multi(&'a [FeaturesRef<'a>]),
}

impl Features {
    /// A borrowed view.
    pub fn as_ref(&self) -> FeaturesRef<'_> {
        match self {
            Self::Dense(m) => FeaturesRef::Dense(m),
            Self::Bytes { values, divisor } => FeaturesRef::Bytes { values, divisor: *divisor },
            Self::Sparse(s) => FeaturesRef::Sparse(s),
            Self::Ids(m) => FeaturesRef::Ids(m),
            Self::Windows(w) => FeaturesRef::Windows(w),
        }
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.as_ref().len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of features per sample.
    pub fn width(&self) -> usize {
        self.as_ref().width()
    }
}

impl<'a> FeaturesRef<'a> {
    /// The inputs of a model with several (Keras' `[xa, xb]`), in the model's input order:
    /// `model.fit(FeaturesRef::list(&[(&xa).into(), (&xb).into()]), &y, opts)`.
    pub fn list(inputs: &'a [FeaturesRef<'a>]) -> Self {
        Self::Multi(inputs)
    }

    /// Each model input's features: the parts of a list, or this one alone.
    pub fn parts(&self) -> &[FeaturesRef<'a>] {
        match self {
            Self::Multi(parts) => parts,
            other => std::slice::from_ref(other),
        }
    }

    /// True for values (dense, bytes, windows), false for sparse rows, ids and lists.
    pub(crate) fn is_values(self) -> bool {
        matches!(self, Self::Dense(_) | Self::Bytes { .. } | Self::Windows(_))
    }

    /// Number of samples.
    pub fn len(self) -> usize {
        match self {
            Self::Multi(parts) => parts.first().map_or(0, |p| p.len()),
            Self::Dense(m) => m.rows(),
            Self::Bytes { values, .. } => values.rows(),
            Self::Sparse(s) => s.rows(),
            Self::Ids(m) => m.rows(),
            Self::Windows(w) => w.len(),
        }
    }

    /// True when there are no samples.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// Number of features per sample (over all inputs of a list).
    pub fn width(self) -> usize {
        match self {
            Self::Multi(parts) => parts.iter().map(|p| p.width()).sum(),
            Self::Dense(m) => m.cols(),
            Self::Bytes { values, .. } => values.cols(),
            Self::Sparse(s) => s.cols(),
            Self::Ids(m) => m.cols(),
            Self::Windows(w) => w.width(),
        }
    }

    /// The first non-finite value, as `(row, column, value)`, in one pass (bytes are always
    /// finite; the divisor is checked).
    pub fn first_non_finite(self) -> Option<(usize, usize, f32)> {
        let at = |i: usize, width: usize, v: f32| (i / width.max(1), i % width.max(1), v);
        match self {
            // A list reports columns counted across its inputs, in order.
            Self::Multi(parts) => {
                let mut offset = 0;
                parts.iter().find_map(|p| {
                    let found = p.first_non_finite().map(|(r, c, v)| (r, c + offset, v));
                    offset += p.width();
                    found
                })
            }
            Self::Dense(m) => {
                m.as_slice().iter().position(|v| !v.is_finite()).map(|i| at(i, m.cols(), m.as_slice()[i]))
            }
            Self::Bytes { divisor, .. } => (!(divisor.is_finite() && divisor != 0.0)).then_some((0, 0, divisor)),
            Self::Ids(_) => None,
            // A value of the series, reported at the window that starts on its row or
            // the first one reading it (row 0 of the first window at worst).
            Self::Windows(w) => {
                let s = w.series();
                s.as_slice().iter().position(|v| !v.is_finite()).map(|i| (0, i % s.cols().max(1), s.as_slice()[i]))
            }
            Self::Sparse(s) => (0..s.rows()).find_map(|r| {
                let (ind, val) = s.row(r);
                ind.iter().zip(val).find(|(_, v)| !v.is_finite()).map(|(&c, &v)| (r, c as usize, v))
            }),
        }
    }

    /// The sample shape the data itself states (`[sequence_length, features]` for
    /// windows); `None` for rows, whose shape the model declares.
    pub fn sample_dims(self) -> Option<Vec<usize>> {
        match self {
            Self::Windows(w) => Some(w.sample_dims().to_vec()),
            Self::Multi(parts) if parts.len() == 1 => parts[0].sample_dims(),
            _ => None,
        }
    }

    /// Sizes `batch` for `batch_size` rows up front, so no later batch reallocates.
    pub(crate) fn reserve(self, batch_size: usize, batch: &mut Batch) {
        let rows = batch_size.min(self.len());
        match self {
            Self::Dense(_) | Self::Bytes { .. } if batch.nonzeros_only => {
                batch.csr.reserve(rows, rows * self.width());
            }
            Self::Dense(m) => batch.dense.resize(rows, m.cols()),
            Self::Bytes { values, .. } => batch.dense.resize(rows, values.cols()),
            Self::Sparse(s) => batch.csr.reserve(rows, rows * s.max_row_nnz()),
            Self::Ids(m) => batch.ids.resize(rows, m.cols()),
            Self::Windows(w) => batch.dense.resize(rows, w.width()),
            Self::Multi(parts) => {
                batch.parts.resize_with(parts.len(), Batch::default);
                parts.iter().zip(&mut batch.parts).for_each(|(p, b)| p.reserve(batch_size, b));
            }
        }
    }

    /// Samples `idx` as a first-layer input. Consecutive dense rows (every evaluation and
    /// prediction chunk) are read in place, a view of the data itself; other rows are
    /// gathered into `batch`. Both hand the layers the same values in the same layout.
    pub(crate) fn batch_input<'b>(self, idx: &[usize], batch: &'b mut Batch, par: Parallelism) -> BatchInputs<'b>
    where
        'a: 'b,
    {
        if let Some(view) = self.consecutive_view(idx).filter(|_| !batch.nonzeros_only) {
            return BatchInputs::One(LayerInput::Dense(view));
        }
        self.gather(idx, batch, par);
        batch.inputs()
    }

    /// Dense rows `idx` as a view of the data, when they are consecutive and ascending.
    fn consecutive_view(self, idx: &[usize]) -> Option<View<'a>> {
        let Self::Dense(m) = self else { return None };
        let first = *idx.first()?;
        if !idx.windows(2).all(|w| w[1] == w[0] + 1) || first + idx.len() > m.rows() {
            return None;
        }
        let cols = m.cols();
        View::new(idx.len(), cols, &m.as_slice()[first * cols..(first + idx.len()) * cols]).ok()
    }

    /// Copies the samples `idx` into `batch`, reusing its buffers; dense and byte rows are
    /// copied by `par`'s threads.
    pub(crate) fn gather(self, idx: &[usize], batch: &mut Batch, par: Parallelism) {
        let width = self.width();
        let blocks = row_blocks(par, idx.len(), MIN_GATHER_PER_THREAD / width.max(1));
        match self {
            Self::Multi(parts) => {
                batch.kind = BatchKind::Multi;
                batch.parts.resize_with(parts.len(), Batch::default);
                parts.iter().zip(&mut batch.parts).for_each(|(p, b)| p.gather(idx, b, par));
            }
            // The non-zero values alone, as CSR rows (see `Layer::prefers_nonzeros`),
            // scaled exactly as the dense rows would be.
            Self::Dense(m) if batch.nonzeros_only => {
                batch.kind = BatchKind::Sparse;
                batch.csr.assign_nonzeros(width, idx.len(), |k| m.row(idx[k]), |v| v, par);
            }
            Self::Bytes { values, divisor } if batch.nonzeros_only => {
                batch.kind = BatchKind::Sparse;
                batch.csr.assign_nonzeros(width, idx.len(), |k| values.row(idx[k]), |b| b as f32 / divisor, par);
            }
            Self::Dense(m) => {
                batch.kind = BatchKind::Dense;
                batch.dense.resize(idx.len(), width);
                for_row_blocks(par, batch.dense.as_mut_slice(), width, &blocks, |k0, out| {
                    for (k, (row, &i)) in out.chunks_exact_mut(width).zip(&idx[k0..]).enumerate() {
                        if let Some(&next) = idx.get(k0 + k + 1) {
                            prefetch(m.row(next));
                        }
                        row.copy_from_slice(m.row(i));
                    }
                });
            }
            Self::Bytes { values, divisor } => {
                batch.kind = BatchKind::Dense;
                batch.dense.resize(idx.len(), width);
                // Division, not multiplication by a reciprocal: NumPy's `x / 255.0` bit for bit.
                for_row_blocks(par, batch.dense.as_mut_slice(), width, &blocks, |k0, out| {
                    for (k, (row, &i)) in out.chunks_exact_mut(width).zip(&idx[k0..]).enumerate() {
                        if let Some(&next) = idx.get(k0 + k + 1) {
                            prefetch(values.row(next));
                        }
                        row.iter_mut().zip(values.row(i)).for_each(|(o, &b)| *o = b as f32 / divisor);
                    }
                });
            }
            Self::Sparse(s) => {
                batch.kind = BatchKind::Sparse;
                s.gather_rows_into(idx, &mut batch.csr);
            }
            Self::Windows(w) => {
                batch.kind = BatchKind::Dense;
                batch.dense.resize(idx.len(), width);
                for (row, &i) in batch.dense.as_mut_slice().chunks_exact_mut(width).zip(idx) {
                    w.copy_window(i, row);
                }
            }
            Self::Ids(m) => {
                batch.kind = BatchKind::Ids;
                batch.ids.resize(idx.len(), width);
                for (k, &i) in idx.iter().enumerate() {
                    batch.ids.row_mut(k).copy_from_slice(m.row(i));
                }
            }
        }
    }
}

impl<'a> From<&'a Matrix> for FeaturesRef<'a> {
    fn from(m: &'a Matrix) -> Self {
        Self::Dense(m)
    }
}

impl<'a> From<&'a CsrMatrix> for FeaturesRef<'a> {
    fn from(s: &'a CsrMatrix) -> Self {
        Self::Sparse(s)
    }
}

impl<'a> From<&'a Features> for FeaturesRef<'a> {
    fn from(f: &'a Features) -> Self {
        f.as_ref()
    }
}

impl From<Matrix> for Features {
    fn from(m: Matrix) -> Self {
        Self::Dense(m)
    }
}

impl From<CsrMatrix> for Features {
    fn from(s: CsrMatrix) -> Self {
        Self::Sparse(s)
    }
}

impl From<IdMatrix> for Features {
    fn from(m: IdMatrix) -> Self {
        Self::Ids(m)
    }
}

impl<'a> From<&'a IdMatrix> for FeaturesRef<'a> {
    fn from(m: &'a IdMatrix) -> Self {
        Self::Ids(m)
    }
}

/// Rows `idx` of `targets` into `out`, reusing its buffer.
pub(crate) fn gather_targets(targets: &Matrix, idx: &[usize], out: &mut Matrix) {
    out.resize(idx.len(), targets.cols());
    for (k, &i) in idx.iter().enumerate() {
        out.row_mut(k).copy_from_slice(targets.row(i));
    }
}

/// Entries `idx` of `weights` into `out`, reusing its buffer; returns them.
pub(crate) fn gather_weights<'o>(weights: &[f32], idx: &[usize], out: &'o mut Vec<f32>) -> &'o [f32] {
    out.clear();
    out.extend(idx.iter().map(|&i| weights[i]));
    out
}

/// Which buffer of a [`Batch`] holds the current batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchKind {
    #[default]
    Dense,
    Sparse,
    Ids,
    /// One batch per model input, in `parts`.
    Multi,
}

/// A reusable batch buffer: dense, sparse or ids, whichever the features are.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub dense: Matrix,
    pub csr: CsrMatrix,
    pub ids: IdMatrix,
    /// A batch per input of a multi-input model.
    pub parts: Vec<Batch>,
    pub kind: BatchKind,
    /// Dense and byte rows are gathered as their non-zero values (CSR), for a first
    /// layer that prefers them.
    pub nonzeros_only: bool,
}

impl Batch {
    /// An empty batch; `nonzeros_only` gathers dense rows as CSR.
    pub fn new(nonzeros_only: bool) -> Self {
        Self { nonzeros_only, ..Self::default() }
    }

    /// A batch for `batch_size` rows of `x`. When gathering non-zero values, room for a
    /// whole batch of them is reserved, so that no later batch — denser than the first —
    /// reallocates. (Dense rows need nothing up front: consecutive rows are read in place.)
    pub fn for_batches_of(x: FeaturesRef<'_>, batch_size: usize, nonzeros_only: bool) -> Self {
        let mut batch = Self::new(nonzeros_only);
        if nonzeros_only {
            x.reserve(batch_size, &mut batch);
        }
        batch
    }
}

impl Batch {
    /// The batch as the input of a single-input model (or of one input, for a part).
    pub fn input(&self) -> LayerInput<'_> {
        match self.kind {
            BatchKind::Dense => LayerInput::Dense(self.dense.view()),
            BatchKind::Sparse => LayerInput::Sparse(&self.csr),
            BatchKind::Ids => LayerInput::Ids(self.ids.view()),
            BatchKind::Multi => self.parts[0].input(),
        }
    }

    /// The batch as the model's inputs.
    pub fn inputs(&self) -> BatchInputs<'_> {
        match self.kind {
            BatchKind::Multi => BatchInputs::Parts(&self.parts),
            _ => BatchInputs::One(self.input()),
        }
    }
}

/// A batch of every model input, as the layers read them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BatchInputs<'a> {
    /// The one input of a single-input model.
    One(LayerInput<'a>),
    /// One batch per input.
    Parts(&'a [Batch]),
}

impl<'a> BatchInputs<'a> {
    /// Input `k`'s batch.
    pub fn get(self, k: usize) -> LayerInput<'a> {
        match self {
            Self::One(x) => x,
            Self::Parts(parts) => parts[k].input(),
        }
    }
}

impl From<crate::Windows> for Features {
    fn from(w: crate::Windows) -> Self {
        Self::Windows(w)
    }
}

impl<'a> From<&'a crate::Windows> for FeaturesRef<'a> {
    fn from(w: &'a crate::Windows) -> Self {
        Self::Windows(w)
    }
}

impl<'a> From<&'a [FeaturesRef<'a>]> for FeaturesRef<'a> {
    fn from(parts: &'a [FeaturesRef<'a>]) -> Self {
        Self::Multi(parts)
    }
}

impl<'a, const N: usize> From<&'a [FeaturesRef<'a>; N]> for FeaturesRef<'a> {
    fn from(parts: &'a [FeaturesRef<'a>; N]) -> Self {
        Self::Multi(parts)
    }
}
