//! kiln-plugin-api: the contract between kiln and a plugin library.
//!
//! A plugin is a `cdylib` that depends on this crate only. Its author writes plain Rust
//! types — a serde config plus [`RegularizerPlugin::penalty`] / [`add_grad`](RegularizerPlugin::add_grad),
//! or [`CallbackPlugin`] hooks on JSON logs — and one [`export_plugin!`] line. The macro
//! emits a `#[repr(C)]` [`abi::PluginHeader`] (ABI version first, then its own size, this
//! crate's semver, the rustc version, the factories) behind the versioned entry symbol
//! [`abi::ENTRY_SYMBOL`]. Only C types cross: `f32` slices, UTF-8 JSON, opaque instance
//! pointers, status codes; every call catches panics and reports them as errors. The host
//! side (checks, registry, serialization) is the `kiln-plugin` crate.
//!
//! ```
//! use kiln_plugin_api::RegularizerPlugin;
//! use serde::{Deserialize, Serialize};
//!
//! /// `l3 · Σ|w|³`.
//! #[derive(Serialize, Deserialize)]
//! struct L3 {
//!     l3: f32,
//! }
//!
//! impl RegularizerPlugin for L3 {
//!     const NAME: &'static str = "my_pkg>L3";
//!     fn penalty(&self, w: &[f32]) -> Result<f32, String> {
//!         Ok(self.l3 * w.iter().map(|x| x.abs().powi(3)).sum::<f32>())
//!     }
//!     fn add_grad(&self, w: &[f32], grad: &mut [f32], scale: f32) -> Result<(), String> {
//!         for (g, &x) in grad.iter_mut().zip(w) {
//!             *g += scale * 3.0 * self.l3 * x * x.abs();
//!         }
//!         Ok(())
//!     }
//! }
//!
//! kiln_plugin_api::export_plugin!(regularizers = [L3]);
//! # let factory = kiln_plugin_api::regularizer_factory::<L3>();
//! # assert_eq!(unsafe { factory.name.to_string_lossy() }, "my_pkg>L3");
//! ```

pub mod abi;
mod callback;
mod export;
mod guard;
mod regularizer;

pub use abi::Control;
pub use callback::{CallbackPlugin, Logs, callback_factory};
pub use regularizer::{RegularizerPlugin, regularizer_factory};
