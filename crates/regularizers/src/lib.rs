//! kiln-regularizers: penalties added to the training loss.
//!
//! A [`Regularizer`] turns a weight tensor (or a layer's output, for activity
//! regularization) into a scalar penalty and adds that penalty's gradient to a gradient
//! buffer. The built-ins follow Keras 3 exactly: [`L1`] `l1·Σ|w|`, [`L2`] `l2·Σw²` (no ½),
//! [`L1L2`] both. Regularizers serialize with typetag: `{"type":"L2","l2":0.002}`.
//!
//! ```
//! use kiln_regularizers::{Regularizer, L2};
//!
//! let reg = L2::new(0.5);
//! let w = [1.0, -2.0];
//! assert_eq!(reg.penalty(&w)?, 0.5 * (1.0 + 4.0));
//! let mut grad = [0.0; 2];
//! reg.add_grad(&w, &mut grad, 1.0)?;
//! assert_eq!(grad, [1.0, -2.0]); // 2·0.5·w
//! let json = serde_json::to_string(&reg as &dyn Regularizer).unwrap();
//! assert_eq!(json, r#"{"type":"L2","l2":0.5}"#);
//! assert!(L2::new(-1.0).validate().is_err()); // Keras refuses negative factors too
//! # Ok::<(), kiln_regularizers::RegularizerError>(())
//! ```

mod l1;
mod l1l2;
mod l2;
mod regularizer;
mod sums;

pub use l1::L1;
pub use l1l2::L1L2;
pub use l2::L2;
pub use regularizer::{Regularizer, RegularizerError};
