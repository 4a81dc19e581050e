//! "No allocation per batch after the first": a counting global allocator watches the
//! heap between training batches of real-shaped models (dense, bytes and sparse inputs).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use kiln::prelude::*;
use kiln_trainer::TrainError;
use kiln_trainer::callbacks::Control;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we forward unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc`'s contract, which we forward unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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
        self.at.push(ALLOCATIONS.load(Ordering::Relaxed));
        Ok(())
    }
    fn on_train_batch_end(&mut self, _: usize, _: &Logs, _: &mut Control<'_>) -> Result<(), TrainError> {
        self.at.push(ALLOCATIONS.load(Ordering::Relaxed));
        Ok(())
    }
    fn wants_batches(&self) -> bool {
        true
    }
}

fn assert_no_allocation_after_first_batch(mut model: Sequential, x: Features, y: Matrix, batch: usize) {
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
    // The probability path (no softmax on the last layer) must not allocate either.
    let probs = Features::Bytes { values: ByteMatrix::from_vec(n, 20, pixels).unwrap(), divisor: 255.0 };
    let labels = Matrix::from_vec(n, 1, (0..n).map(|i| (i % 10) as f32).collect()).unwrap();
    assert_no_allocation_after_first_batch(classifier(32, 10, Activation::Relu), probs, labels, 8);
}
