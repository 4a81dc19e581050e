//! What a layer gets when it is built: the initialisation stream and a weight budget.

use std::borrow::Cow;

use kiln_tensor::Rng;

use crate::{LayerError, Param};

/// Most weights a whole model may declare by default: 2²⁸ (1 GiB of `f32`; 3–4 GiB once
/// gradients and optimizer state exist; 50 times the chapter's largest model). A
/// configuration is only a claim, so this is checked before anything is allocated.
/// `Sequential::max_weights` raises or lowers it.
pub const DEFAULT_MAX_WEIGHTS: usize = 1 << 28;

/// Handed to [`Layer::build`](crate::Layer::build): the random stream initial values come
/// from, and [`param`](BuildContext::param), which creates parameters within the model's
/// weight budget.
#[derive(Debug)]
pub struct BuildContext<'a> {
    rng: &'a mut Rng,
    layer: String,
    remaining: usize,
    limit: usize,
}

impl<'a> BuildContext<'a> {
    /// A context drawing from `rng` that allows `limit` weights in all.
    pub fn new(rng: &'a mut Rng, limit: usize) -> Self {
        Self { rng, layer: String::new(), remaining: limit, limit }
    }

    /// Names the layer being built (for errors).
    pub fn set_layer(&mut self, name: &str) {
        self.layer = name.to_string();
    }

    /// The initialisation stream.
    pub fn rng(&mut self) -> &mut Rng {
        self.rng
    }

    /// A zeroed parameter of `shape`, charged to the budget before it is allocated.
    pub fn param(&mut self, name: impl Into<Cow<'static, str>>, shape: Vec<usize>) -> Result<Param, LayerError> {
        let name = name.into();
        let len = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        match len {
            Some(len) if len <= self.remaining => {
                self.remaining -= len;
                Ok(Param::zeros(name, shape))
            }
            _ => Err(LayerError::Config {
                layer: self.layer.clone(),
                message: format!(
                    "parameter `{name}` of shape {shape:?} takes the model past the {} weights it may hold \
                     (raise it with Sequential::max_weights)",
                    self.limit
                ),
            }),
        }
    }
}
