//! "No allocation per batch after the first": a counting global allocator watches the
//! heap between training batches of real-shaped models (dense, bytes and sparse inputs).

use std::alloc::{GlobalAlloc, Layout, System};

use kiln::prelude::*;
use kiln_trainer::TrainError;
use kiln_trainer::callbacks::Control;

struct Counting;

thread_local! {
    /// This thread's allocations: tests run in parallel threads (and the harness allocates
    /// as it starts them), so each test watches its own thread only. `fit` runs on the
    /// calling thread (one thread without `KILN_THREADS`).
    static THREAD_ALLOCATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down has no counter left, and is not one we watch.
    let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we forward unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we forward unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we forward unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Records the allocation counter at every batch boundary (into preallocated room).
#[derive(Debug, Default)]
struct Marks {
    at: Vec<usize>,
}
impl Callback for Marks {
    fn on_train_batch_begin(&mut self, _: usize, _: &mut Control<'_>) -> Result<(), TrainError> {
        self.at.push(THREAD_ALLOCATIONS.with(std::cell::Cell::get));
        Ok(())
    }
    fn on_train_batch_end(&mut self, _: usize, _: &Logs, _: &mut Control<'_>) -> Result<(), TrainError> {
        self.at.push(THREAD_ALLOCATIONS.with(std::cell::Cell::get));
        Ok(())
    }
    fn wants_batches(&self) -> bool {
        true
    }
}

/// On one thread (every core is the default; `threaded_steps_do_not_allocate` holds 2
/// threads to the same).
fn assert_no_allocation_after_first_batch(mut model: Sequential, x: Features, y: Matrix, batch: usize) {
    model.set_parallelism(kiln_tensor::Parallelism::Sequential);
    let mut marks = Marks { at: Vec::with_capacity(1000) };
    let opts = FitOptions::default().epochs(1).batch_size(batch).verbose(Verbosity::Silent);
    model.fit(&x, &y, opts.callback(&mut marks)).unwrap();
    assert!(marks.at.len() >= 8, "need several batches");
    // Each (begin, end) pair after the first batch must see no new allocation.
    for (k, pair) in marks.at.chunks(2).enumerate().skip(1) {
        assert_eq!(pair[0], pair[1], "batch {k} allocated {} times", pair[1] - pair[0]);
    }
}

fn classifier(hidden: usize, out: usize, act: Activation) -> Sequential {
    let mut m = Sequential::new()
        .add(Dense::new(hidden).activation(Activation::Relu).kernel_regularizer(L2::new(0.002)))
        .add(Dropout::new(0.5))
        .add(Dense::new(out).activation(act).activity_regularizer(L1::new(0.01)));
    let loss = if out == 1 { Loss::binary_crossentropy() } else { Loss::sparse_categorical_crossentropy() };
    m.compile(Optimizer::new(RMSprop::default(), 0.01), loss, [Metric::Accuracy]).unwrap();
    m
}

#[test]
fn dense_bytes_and_sparse_batches_do_not_allocate() {
    let mut rng = Rng::seed_from_u64(0);
    let n = 100;
    let pixels: Vec<u8> = (0..n * 20).map(|_| rng.below(256) as u8).collect();
    let labels = Matrix::from_vec(n, 1, (0..n).map(|i| (i % 10) as f32).collect()).unwrap();
    let bytes = Features::Bytes { values: ByteMatrix::from_vec(n, 20, pixels.clone()).unwrap(), divisor: 255.0 };
    assert_no_allocation_after_first_batch(classifier(32, 10, Activation::Softmax), bytes, labels.clone(), 8);
    let dense = Matrix::from_vec(n, 20, pixels.iter().map(|&p| p as f32).collect()).unwrap();
    assert_no_allocation_after_first_batch(classifier(32, 10, Activation::Softmax), dense.into(), labels, 8);

    let mut csr = CsrMatrix::with_cols(500);
    for i in 0..n {
        // Rows of very different lengths: a later batch is denser than the first.
        let mut idx: Vec<u32> = (0..(5 + (i * 7) % 60)).map(|_| rng.below(500) as u32).collect();
        idx.sort_unstable();
        idx.dedup();
        csr.push_row(&idx, &vec![1.0; idx.len()]).unwrap();
    }
    let binary = Matrix::from_vec(n, 1, (0..n).map(|i| (i % 2) as f32).collect()).unwrap();
    assert_no_allocation_after_first_batch(
        classifier(16, 1, Activation::Sigmoid),
        csr.clone().into(),
        binary.clone(),
        8,
    );
    // A 500×600 kernel (1.2 MB) takes the column-wise sparse path, with its own buffers.
    assert_no_allocation_after_first_batch(classifier(600, 1, Activation::Sigmoid), csr.into(), binary, 8);
    // Mostly-zero pixels: a 32-unit first layer keeps the dense products; a 96-unit one
    // reads CSR batches of the non-zero values (packed kernel, column index, packed
    // gradient).
    let sparse_pixels: Vec<u8> =
        (0..n * 200).map(|_| if rng.below(10) == 0 { 1 + rng.below(255) as u8 } else { 0 }).collect();
    for hidden in [32, 96] {
        let values = ByteMatrix::from_vec(n, 200, sparse_pixels.clone()).unwrap();
        let labels = Matrix::from_vec(n, 1, (0..n).map(|i| (i % 10) as f32).collect()).unwrap();
        let x = Features::Bytes { values, divisor: 255.0 };
        assert_no_allocation_after_first_batch(classifier(hidden, 10, Activation::Softmax), x, labels, 8);
    }
    // The probability path (no softmax on the last layer) must not allocate either.
    let probs = Features::Bytes { values: ByteMatrix::from_vec(n, 20, pixels).unwrap(), divisor: 255.0 };
    let labels = Matrix::from_vec(n, 1, (0..n).map(|i| (i % 10) as f32).collect()).unwrap();
    assert_no_allocation_after_first_batch(classifier(32, 10, Activation::Relu), probs, labels, 8);
}

#[test]
fn convolution_pooling_and_reshaping_batches_do_not_allocate() {
    let mut rng = Rng::seed_from_u64(1);
    let n = 60;
    let labels = Matrix::from_vec(n, 1, (0..n).map(|i| (i % 10) as f32).collect()).unwrap();
    // 9×9×2 images: same-padded strided conv, max and average pooling, Flatten, Dense.
    let images = Matrix::from_vec(n, 162, (0..n * 162).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap();
    let mut per_channel = Normalization::new();
    per_channel.adapt_shaped(&images, &kiln_tensor::Shape::new([9, 9, 2]).unwrap()).unwrap();
    let mut convnet = Sequential::new()
        .input_shape([9, 9, 2])
        .add(per_channel)
        .add(
            Conv2D::new(6, [3, 3])
                .padding(Padding::Same)
                .activation(Activation::Relu)
                .kernel_regularizer(L2::new(0.01)),
        )
        .add(MaxPooling2D::new([2, 2]))
        .add(Conv2D::new(4, [2, 2]).strides([2, 2]).activation(Activation::Tanh))
        .add(AveragePooling2D::new([2, 2]).strides([1, 1]).padding(Padding::Same))
        .add(BatchNormalization::new())
        .add(Dropout::new(0.3))
        .add(Flatten::new())
        .add(LayerNormalization::new())
        .add(Dense::new(10).activation(Activation::Softmax));
    let loss = Loss::sparse_categorical_crossentropy();
    convnet.compile(Optimizer::new(RMSprop::default(), 0.01), loss, [Metric::Accuracy]).unwrap();
    assert_no_allocation_after_first_batch(convnet, images.into(), labels.clone(), 8);
    // Sequences: causal Conv1D, 1-D pooling, Reshape, Dense on the last axis, global
    // pooling, a constant inverted Normalization.
    let steps = Matrix::from_vec(n, 30, (0..n * 30).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap();
    let mut seq = Sequential::new()
        .input_shape([10, 3])
        .add(Conv1D::new(4, 3).padding(Padding::Causal).dilation_rate(2).activation(Activation::Relu))
        .add(MaxPooling1D::new(2))
        .add(Reshape::new([-1, 2]))
        .add(Dense::new(5).activation(Activation::Sigmoid))
        .add(Normalization::new().with_stats(vec![0.5], vec![2.0]).invert(true))
        .add(GlobalMaxPooling1D::new())
        .add(Dense::new(10).activation(Activation::Softmax));
    seq.compile(Optimizer::new(Adam::default(), 0.01), Loss::sparse_categorical_crossentropy(), NO_METRICS).unwrap();
    assert_no_allocation_after_first_batch(seq, steps.into(), labels, 8);
}

#[test]
fn token_ids_embedding_and_recurrent_batches_do_not_allocate() {
    let mut rng = Rng::seed_from_u64(2);
    let n = 60;
    let labels = Matrix::from_vec(n, 1, (0..n).map(|i| (i % 2) as f32).collect()).unwrap();
    let ids = IdMatrix::from_vec(n, 9, (0..n * 9).map(|_| rng.below(30) as u32).collect()).unwrap();
    let mut text = Sequential::new()
        .input_shape([9])
        .add(Embedding::new(30, 4))
        .add(LSTM::new(5).return_sequences(true))
        .add(GRU::new(3).return_sequences(true))
        .add(GRU::new(3).reset_after(false).return_sequences(true))
        .add(SimpleRNN::new(2))
        .add(Dense::new(1).activation(Activation::Sigmoid));
    text.compile(Optimizer::new(Adam::default(), 0.01), Loss::binary_crossentropy(), [Metric::Accuracy]).unwrap();
    assert_no_allocation_after_first_batch(text, Features::Ids(ids), labels, 8);
}

/// Allocations of each batch after the first, counted on the training thread.
fn allocations_per_batch(mut model: Sequential, x: Features, y: Matrix, batch: usize) -> Vec<usize> {
    let mut marks = Marks { at: Vec::with_capacity(1000) };
    let opts = FitOptions::default().epochs(1).batch_size(batch).verbose(Verbosity::Silent);
    model.fit(&x, &y, opts.callback(&mut marks)).unwrap();
    assert!(marks.at.len() >= 8, "need several batches");
    marks.at.chunks(2).skip(1).map(|pair| pair[1] - pair[0]).collect()
}

/// With threads, kiln's splits of the step (a recurrent layer's blocks of samples, the
/// optimizer's ranges, the gather, the column index and the sparse kernel gradient) go to
/// the pool's warm team: handing them over allocates nothing on the training thread. (A
/// product faer itself shares allocates its job tables, in faer's `private-gemm-x86`: the
/// models here are sized so that faer shares none.)
#[test]
fn threaded_steps_do_not_allocate() {
    let mut rng = Rng::seed_from_u64(3);
    let n = 160;
    let labels = Matrix::from_vec(n, 1, (0..n).map(|i| (i % 2) as f32).collect()).unwrap();
    // 40 steps × 32 samples: 1,280 rows, so the weight gradients are summed in parts too.
    let x = Matrix::from_vec(n, 40 * 3, (0..n * 120).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap();
    let threaded = |first: Box<dyn Layer>| {
        let mut model = Sequential::new().input_shape([40, 3]);
        model.push(first);
        model.push(Box::new(Dense::new(1).activation(Activation::Sigmoid)));
        model
            .compile(Optimizer::new(RMSprop::default(), 0.01), Loss::binary_crossentropy(), [Metric::Accuracy])
            .unwrap();
        model.set_parallelism(kiln_tensor::Parallelism::threads(2));
        allocations_per_batch(model, x.clone().into(), labels.clone(), 32)
    };
    let dense = threaded(Box::new(Flatten::new()));
    assert!(dense.iter().all(|&a| a == 0), "the threaded path itself allocates {dense:?} per batch");
    // An MNIST-shaped layer on 2 threads, its batches dense and then with their zeros
    // skipped: the gather (96 rows of 784), the optimizer's update (65,856 weights), the
    // column index and the sparse kernel gradient split; faer's products do not.
    let (rows, width, units, batch) = (480, 784, 84, 96);
    assert!(!kiln_tensor::matmul::shares(batch, width, units) && !kiln_tensor::matmul::shares(width, batch, units));
    let pixels: Vec<f32> = (0..rows * width).map(|_| if rng.below(5) == 0 { rng.uniform() } else { 0.0 }).collect();
    let digits = Matrix::from_vec(rows, width, pixels).unwrap();
    let classes = Matrix::from_vec(rows, 1, (0..rows).map(|i| (i % 10) as f32).collect()).unwrap();
    for skip_zeros in [false, true] {
        let mut model = Sequential::new()
            .add(Dense::new(units).activation(Activation::Relu))
            .add(Dense::new(10).activation(Activation::Softmax));
        model
            .compile(
                Optimizer::new(RMSprop::default(), 0.01),
                Loss::sparse_categorical_crossentropy(),
                [Metric::Accuracy],
            )
            .unwrap();
        model.set_zero_skipping(skip_zeros);
        model.set_parallelism(kiln_tensor::Parallelism::threads(2));
        let counts = allocations_per_batch(model, digits.clone().into(), classes.clone(), batch);
        assert!(counts.iter().all(|&a| a == 0), "zero skipping {skip_zeros}: {counts:?} per batch");
    }
    for (name, layer) in [
        ("LSTM", Box::new(LSTM::new(4)) as Box<dyn Layer>),
        ("GRU", Box::new(GRU::new(4))),
        ("GRU reset before", Box::new(GRU::new(4).reset_after(false))),
        ("SimpleRNN", Box::new(SimpleRNN::new(4))),
    ] {
        let counts = threaded(layer);
        assert!(counts.iter().all(|&a| a == 0), "the {name}'s steps allocate: {counts:?} per batch");
    }
}

/// A residual graph (a Dense read by several consumers, every merge layer, the Activation
/// layer) of two inputs train without allocating after the first batch:
/// fan-in gradients go through scratch sized once.
#[test]
fn functional_graph_batches_do_not_allocate() {
    let mut rng = Rng::seed_from_u64(5);
    let n = 64;
    let labels = Matrix::from_vec(n, 1, (0..n).map(|i| (i % 2) as f32).collect()).unwrap();
    let xa = Matrix::from_vec(n, 6, (0..n * 6).map(|_| rng.uniform() - 0.5).collect()).unwrap();
    let xb = Matrix::from_vec(n, 3, (0..n * 3).map(|_| rng.uniform() - 0.5).collect()).unwrap();

    let mut g = Functional::new();
    let a = g.input([6]);
    let b = g.input([3]);
    let h = g.apply(Dense::new(8).activation(Activation::Relu), a);
    let r = g.apply(Dense::new(8).activation(Activation::Tanh), h);
    let shortcut = g.apply(Dense::new(8).use_bias(false), a);
    let sum = g.merge(Add::new(), &[h, r, shortcut]);
    // Every other merge layer and the Activation layer (with an activation that keeps its
    // input) on the way.
    let prod = g.merge(Multiply::new(), &[sum, r, h]);
    let diff = g.merge(Subtract::new(), &[prod, h]);
    let mean = g.merge(Average::new(), &[diff, sum]);
    let top = g.merge(Maximum::new(), &[mean, r]);
    let low = g.merge(Minimum::new(), &[top, shortcut]);
    let act = g.apply(ActivationLayer::new(Activation::Gelu), low);
    let side = g.apply(Dense::new(2).activation(Activation::Silu), b);
    let joined = g.merge(Concatenate::new(), &[act, side]);
    let out = g.apply(Dense::new(1).activation(Activation::Sigmoid), joined);
    let mut model = g.model(out).unwrap();
    model.compile(Optimizer::new(Adam::default(), 0.01), Loss::binary_crossentropy(), [Metric::Accuracy]).unwrap();
    model.set_parallelism(kiln_tensor::Parallelism::Sequential);

    let parts = [FeaturesRef::from(&xa), FeaturesRef::from(&xb)];
    let mut marks = Marks { at: Vec::with_capacity(1000) };
    let opts = FitOptions::default().epochs(1).batch_size(8).verbose(Verbosity::Silent);
    model.fit(FeaturesRef::list(&parts), &labels, opts.callback(&mut marks)).unwrap();
    assert!(marks.at.len() >= 8, "need several batches");
    for (k, pair) in marks.at.chunks(2).enumerate().skip(1) {
        assert_eq!(pair[0], pair[1], "batch {k} allocated {} times", pair[1] - pair[0]);
    }
}
