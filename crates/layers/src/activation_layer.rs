//! `Activation`: an activation function as a layer of its own (Keras `layers.Activation`,
//! `keras/src/layers/activations/activation.py`), as residual blocks use after an `Add`.
//!
//! The Rust type is `ActivationLayer` (`Activation` names the function); it saves, loads
//! and prints in `summary()` as Keras' `Activation`. Softmax runs over a sample's last axis.

use kiln_tensor::{Matrix, Parallelism, Shape};
use serde::{Deserialize, Serialize};

use crate::{Activation, BuildContext, GradOf, Layer, LayerCore, LayerError, LayerInput};

/// `y = activation(x)`, elementwise (softmax: over the last axis), any sample shape.
///
/// # Shapes
/// - input: any sample shape `[…, d]`
/// - output: the same
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActivationLayer {
    #[serde(flatten)]
    core: LayerCore,
    /// The function applied.
    pub activation: Activation,
    /// The input of the last forward (the loss reads it as logits when it may), and the
    /// size of a sample's last axis.
    #[serde(skip)]
    logits: Matrix,
    #[serde(skip)]
    last_axis: usize,
}

impl ActivationLayer {
    /// A layer applying `activation`.
    pub fn new(activation: Activation) -> Self {
        Self { core: LayerCore::default(), activation, logits: Matrix::default(), last_axis: 1 }
    }

    /// Sets the layer name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.core.name = name.into();
        self
    }
}

#[typetag::serde(name = "Activation")]
impl Layer for ActivationLayer {
    fn core(&self) -> &LayerCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut LayerCore {
        &mut self.core
    }

    fn class_name(&self) -> &'static str {
        "Activation"
    }

    fn passes_input_through(&self, _training: bool) -> bool {
        // Keras' `linear` is `return x`.
        self.activation == Activation::Linear
    }

    fn planned(&self, input: &Shape) -> Option<(usize, Shape)> {
        Some((0, input.clone()))
    }

    fn build(&mut self, input: &Shape, _ctx: &mut BuildContext<'_>) -> Result<Shape, LayerError> {
        self.last_axis = input.last();
        self.core.output = Matrix::zeros(0, input.numel());
        Ok(input.clone())
    }

    fn forward(&mut self, input: LayerInput<'_>, _training: bool, par: Parallelism) {
        let LayerInput::Dense(x) = input else {
            panic!("layer `{}` takes dense values (a Dense or Embedding reads sparse rows and ids)", self.core.name)
        };
        self.logits.resize(x.rows, x.cols);
        self.logits.as_mut_slice().copy_from_slice(x.data);
        self.core.output.resize(x.rows, x.cols);
        let cols = self.last_axis;
        self.activation.forward(self.logits.as_mut_slice(), None, self.core.output.as_mut_slice(), cols, par);
    }

    fn backward(
        &mut self,
        _input: LayerInput<'_>,
        grad: &mut Matrix,
        grad_of: GradOf,
        grad_input: Option<&mut Matrix>,
        par: Parallelism,
    ) {
        if grad_of == GradOf::Output {
            let (x, y) = (Some(self.logits.as_slice()), self.core.output.as_slice());
            self.activation.backward(x, y, grad.as_mut_slice(), self.last_axis, par);
        }
        crate::reshape::copy_backward(grad, grad_input);
    }

    fn activation(&self) -> Activation {
        self.activation
    }

    fn logits(&self) -> Option<&Matrix> {
        Some(&self.logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{GradCheck, check_gradients};

    /// Every activation kiln computes.
    const ALL: [Activation; 16] = [
        Activation::Linear,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Softmax,
        Activation::Tanh,
        Activation::Relu6,
        Activation::Elu,
        Activation::Selu,
        Activation::LeakyRelu,
        Activation::Softplus,
        Activation::Silu,
        Activation::Gelu,
        Activation::HardSigmoid,
        Activation::Softsign,
        Activation::Mish,
        Activation::Exponential,
    ];

    #[test]
    fn every_activation_passes_the_gradient_check() {
        for act in ALL {
            let mut layer = ActivationLayer::new(act).name("act");
            let opts = GradCheck {
                from_logits: matches!(act, Activation::Softmax | Activation::Sigmoid),
                ..GradCheck::default()
            };
            check_gradients(&mut layer, &Shape::new([2, 3]).unwrap(), &opts).unwrap_or_else(|e| panic!("{act:?}: {e}"));
        }
    }

    /// Dense (which keeps its logits) and Conv2D (which keeps them only for the
    /// activations that need them) pass the check with every activation.
    #[test]
    fn dense_and_conv_pass_the_gradient_check_with_every_activation() {
        for act in ALL {
            let mut dense = crate::Dense::new(4).activation(act).name("d");
            check_gradients(&mut dense, &Shape::new([5]).unwrap(), &GradCheck::default())
                .unwrap_or_else(|e| panic!("Dense {act:?}: {e}"));
            if act == Activation::Softmax {
                continue;
            }
            let mut conv = crate::Conv2D::new(2, [2, 2]).activation(act).name("c");
            check_gradients(&mut conv, &Shape::new([3, 3, 2]).unwrap(), &GradCheck::default())
                .unwrap_or_else(|e| panic!("Conv2D {act:?}: {e}"));
        }
    }

    /// The Keras identifiers read back, `swish` included, and serde writes Keras' names.
    #[test]
    fn keras_names_round_trip() {
        for act in ALL {
            assert_eq!(Activation::from_keras(act.keras_name()), Some(act));
            assert_eq!(serde_json::to_value(act).unwrap(), act.keras_name());
        }
        assert_eq!(Activation::from_keras("swish"), Some(Activation::Silu));
        assert_eq!("gelu".parse::<Activation>(), Ok(Activation::Gelu));
        let err = "Relu".parse::<Activation>().unwrap_err().to_string();
        assert!(err.starts_with("unknown activation `Relu` (kiln knows: linear, relu,"), "{err}");
        assert_eq!(serde_json::from_str::<Activation>("\"swish\"").unwrap(), Activation::Silu);
    }

    #[test]
    fn softmax_runs_over_the_last_axis() {
        let mut layer = ActivationLayer::new(Activation::Softmax);
        let mut rng = kiln_tensor::Rng::seed_from_u64(0);
        layer
            .build(&Shape::new([2, 2]).unwrap(), &mut BuildContext::new(&mut rng, crate::DEFAULT_MAX_WEIGHTS))
            .unwrap();
        let x = Matrix::from_rows(&[[0.0f32, 0.0, 1.0, 1.0]]).unwrap();
        layer.forward(LayerInput::Dense(x.view()), false, Parallelism::Sequential);
        assert_eq!(layer.output().as_slice(), &[0.5, 0.5, 0.5, 0.5]);
    }
}
