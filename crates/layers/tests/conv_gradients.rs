//! The public finite-difference check on every convolution and pooling layer: element-wise
//! on tiny shapes, along random directions on realistic ones.

use kiln_layers::testing::{GradCheck, check_gradients};
use kiln_layers::{
    Activation, AveragePooling1D, AveragePooling2D, Conv1D, Conv2D, GlobalAveragePooling1D, GlobalAveragePooling2D,
    GlobalMaxPooling1D, GlobalMaxPooling2D, Layer, MaxPooling1D, MaxPooling2D,
};
use kiln_regularizers::L2;
use kiln_tensor::{Padding, Shape};

fn shape(dims: &[usize]) -> Shape {
    Shape::new(dims.to_vec()).unwrap()
}

fn passes(layer: &mut dyn Layer, input: &[usize], opts: &GradCheck) {
    let report = check_gradients(layer, &shape(input), opts).unwrap_or_else(|e| panic!("{input:?}: {e}"));
    assert!(report.checked > 0, "{input:?}: nothing checked");
}

#[test]
fn conv2d_gradients_elementwise_on_tiny_shapes() {
    let opts = GradCheck { batch: 2, ..GradCheck::default() };
    // valid; same with stride 2 on an even input (pads 0 before, 1 after); an even kernel
    // with same; dilation; regularizers and no bias.
    passes(&mut Conv2D::new(2, [3, 3]).activation(Activation::Tanh), &[4, 4, 2], &opts);
    passes(&mut Conv2D::new(2, [3, 3]).strides([2, 2]).padding(Padding::Same), &[4, 4, 1], &opts);
    passes(&mut Conv2D::new(2, [2, 2]).padding(Padding::Same).activation(Activation::Sigmoid), &[3, 3, 2], &opts);
    passes(&mut Conv2D::new(1, [2, 2]).dilation_rate([2, 2]), &[5, 4, 1], &opts);
    let regularized = Conv2D::new(2, [2, 2])
        .use_bias(false)
        .kernel_regularizer(L2::new(0.05))
        .activity_regularizer(L2::new(0.01))
        .activation(Activation::Relu);
    passes(&mut regularized.clone(), &[3, 3, 2], &opts);
}

#[test]
fn conv2d_gradients_along_random_directions_on_a_realistic_shape() {
    // 12×12×3 → 32 filters: far past the element-wise limit.
    let opts = GradCheck { batch: 4, directions: 12, ..GradCheck::default() };
    passes(&mut Conv2D::new(32, [3, 3]).padding(Padding::Same).activation(Activation::Relu), &[12, 12, 3], &opts);
}

#[test]
fn conv1d_gradients_with_causal_same_and_stride() {
    let opts = GradCheck { batch: 2, ..GradCheck::default() };
    passes(&mut Conv1D::new(2, 3).padding(Padding::Causal).dilation_rate(2), &[6, 2], &opts);
    passes(&mut Conv1D::new(3, 2).padding(Padding::Same).strides(2), &[5, 2], &opts);
    passes(&mut Conv1D::new(2, 3).activation(Activation::Tanh), &[7, 3], &opts);
}

#[test]
fn pooling_gradients_on_odd_sizes_and_same_padding() {
    let opts = GradCheck { batch: 2, ..GradCheck::default() };
    passes(&mut MaxPooling2D::new([2, 2]), &[5, 5, 2], &opts);
    passes(&mut MaxPooling2D::new([2, 3]).strides([1, 2]).padding(Padding::Same), &[4, 5, 1], &opts);
    passes(&mut AveragePooling2D::new([3, 3]).strides([2, 2]).padding(Padding::Same), &[5, 5, 2], &opts);
    passes(&mut AveragePooling2D::new([2, 2]), &[5, 4, 1], &opts);
    passes(&mut MaxPooling1D::new(3).strides(2).padding(Padding::Same), &[7, 2], &opts);
    passes(&mut AveragePooling1D::new(2).padding(Padding::Same), &[5, 3], &opts);
    passes(&mut GlobalAveragePooling2D::new(), &[3, 4, 2], &opts);
    passes(&mut GlobalMaxPooling2D::new(), &[3, 4, 2], &opts);
    passes(&mut GlobalAveragePooling1D::new().keepdims(true), &[5, 3], &opts);
    passes(&mut GlobalMaxPooling1D::new(), &[5, 3], &opts);
}

#[test]
fn layers_refuse_shapes_and_arguments_they_do_not_compute_naming_them() {
    let build = |layer: &mut dyn Layer, input: &[usize]| {
        check_gradients(layer, &shape(input), &GradCheck::default()).unwrap_err()
    };
    assert!(build(&mut Conv2D::new(2, [3, 3]), &[4, 4]).contains("[h, w, channels]"));
    assert!(build(&mut Conv2D::new(2, [5, 5]), &[4, 4, 1]).contains("build"));
    assert!(build(&mut Conv2D::new(2, [2, 2]).strides([2, 2]).dilation_rate([2, 2]), &[8, 8, 1]).contains("dilation"));
    assert!(build(&mut Conv2D::new(2, [2, 2]).padding(Padding::Causal), &[8, 8, 1]).contains("causal"));
    assert!(build(&mut Conv2D::new(0, [2, 2]), &[8, 8, 1]).contains("filters"));
    assert!(build(&mut MaxPooling1D::new(2), &[4, 4, 1]).contains("[steps, channels]"));
}

#[test]
fn output_shapes_follow_keras() {
    let out = |layer: &dyn Layer, input: &[usize]| layer.planned(&shape(input)).map(|(w, s)| (w, s.to_string()));
    // The MNIST convnet's first layers (Keras' summary: (None, 26, 26, 32), 320 params).
    assert_eq!(out(&Conv2D::new(32, [3, 3]), &[28, 28, 1]), Some((320, "(None, 26, 26, 32)".into())));
    assert_eq!(out(&MaxPooling2D::new([2, 2]), &[26, 26, 32]), Some((0, "(None, 13, 13, 32)".into())));
    // same, stride 2 on 28: ceil(28/2) = 14.
    let same = Conv2D::new(8, [3, 3]).strides([2, 2]).padding(Padding::Same);
    assert_eq!(out(&same, &[28, 28, 1]), Some((80, "(None, 14, 14, 8)".into())));
    assert_eq!(out(&Conv1D::new(4, 3).padding(Padding::Causal), &[10, 3]), Some((40, "(None, 10, 4)".into())));
    assert_eq!(out(&GlobalAveragePooling2D::new(), &[5, 5, 7]), Some((0, "(None, 7)".into())));
    assert_eq!(out(&GlobalMaxPooling2D::new().keepdims(true), &[5, 5, 7]), Some((0, "(None, 1, 1, 7)".into())));
}
