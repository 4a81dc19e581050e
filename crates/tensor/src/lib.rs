//! kiln-tensor: the numeric floor of kiln.
//!
//! A row-major `f32` [`Matrix`] (owned `Vec<f32>` + shape) with borrowed [`View`]s, matrix
//! products through faer into preallocated outputs ([`matmul`]), elementwise [`kernels`], a
//! CSR sparse batch type ([`CsrMatrix`]) with sparse × dense products, raw `u8` images
//! ([`ByteMatrix`]) scaled to `f32` only when a batch is gathered, and a version-stable
//! seeded generator ([`Rng`], ChaCha8), NHWC convolution/pooling kernels ([`conv`]), and vectorized logistic/`tanh` ([`vmath`]).
//!
//! ```
//! use kiln_tensor::{matmul, Accumulate, Matrix, Parallelism};
//!
//! let a = Matrix::from_vec(2, 3, vec![1., 2., 3., 4., 5., 6.]).unwrap();
//! let b = Matrix::from_vec(3, 1, vec![1., 0., -1.]).unwrap();
//! let mut c = Matrix::zeros(2, 1);
//! matmul::ab(c.view_mut(), a.view(), b.view(), Accumulate::Replace, Parallelism::Sequential);
//! assert_eq!(c.as_slice(), &[-2.0, -2.0]);
//! ```

mod bytes;
pub mod conv;
mod error;
pub mod huge_pages;
mod ids;
pub mod kernels;
pub mod matmul;
mod matrix;
mod parallelism;
pub mod pool;
pub mod prefetch;
mod rng;
mod shape;
mod sparse;
mod sparse_blocks;
mod sparse_columns;
mod step_rows;
pub mod subnormal;
mod upper_state;
pub mod vmath;

pub use bytes::ByteMatrix;
pub use conv::{Padding, Window2d};
pub use error::ShapeError;
pub use ids::{IdMatrix, IdView};
pub use matrix::{Matrix, View, ViewMut};
pub use parallelism::{Accumulate, MAX_THREADS, Parallelism, THREADS_ENV, parse_threads};
pub use rng::{Rng, RngState};
pub use shape::{MAX_RANK, Shape};
pub use sparse::CsrMatrix;
pub use sparse_blocks::PackedColumns;
pub use sparse_columns::ColumnIndex;
pub use upper_state::{TransitionCheck, clear_upper_state, transition_check};
