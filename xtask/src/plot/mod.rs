//! Charts shared by `reproduce` (the chapter's figures) and `bench` (the scaling figure):
//! seed bands, line charts with shaded spread, the font they need.

mod band;
mod chart;
pub mod fonts;

pub use band::Band;
pub use chart::{Chart, Marker, PALETTE, Series, draw, drawing};
