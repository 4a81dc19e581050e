//! Windows over one timeseries, as Keras' `timeseries_dataset_from_array` cuts them
//! (`keras/src/utils/timeseries_dataset_utils.py`), kept as start positions: a batch
//! gathers its windows from the series, so memory is the series plus one batch, never a
//! copy per window.

use std::sync::Arc;

use kiln_tensor::Matrix;

use crate::TrainError;

/// `timeseries_dataset_from_array`'s arguments (batching and shuffling are `fit`'s), with
/// Keras' defaults: stride 1, sampling rate 1, the whole series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowOptions {
    /// Steps per window.
    pub sequence_length: usize,
    /// Steps between the starts of consecutive windows (default 1).
    pub sequence_stride: usize,
    /// Steps between the rows a window takes (default 1).
    pub sampling_rate: usize,
    /// First row a window may use (default 0).
    pub start_index: Option<usize>,
    /// Row the windows stop before (default: the series' length). As in Keras, it must be
    /// below the series' length when given.
    pub end_index: Option<usize>,
}

impl WindowOptions {
    /// Windows of `sequence_length` steps, Keras' defaults otherwise.
    pub fn new(sequence_length: usize) -> Self {
        Self { sequence_length, sequence_stride: 1, sampling_rate: 1, start_index: None, end_index: None }
    }
}

/// Windows of a series (`[rows, features]`): window `k` is rows
/// `start_index + p_k + i·sampling_rate` for `i < sequence_length`, with
/// `p_k = k·sequence_stride` — one sample of shape `[sequence_length, features]`. The
/// series is shared (`Arc`), so the train, validation and test windows of one series hold
/// it once.
#[derive(Debug, Clone)]
pub struct Windows {
    series: Arc<Matrix>,
    /// First row of each window.
    starts: Vec<usize>,
    sequence_length: usize,
    sampling_rate: usize,
}

impl Windows {
    /// Keras' windows of `series` and, when given, their targets: window `k`'s target is
    /// row `start_index + p_k` of `targets` (Keras slices both arrays from `start_index`),
    /// and there are at most `len(targets)` windows. Keras' argument checks, with its
    /// messages' content; an empty result is refused, naming the arguments.
    pub fn new(
        series: Arc<Matrix>,
        targets: Option<&Matrix>,
        opts: &WindowOptions,
    ) -> Result<(Self, Option<Matrix>), TrainError> {
        let n = series.rows();
        let bad = |m: String| Err(TrainError::Input(format!("timeseries windows: {m}")));
        let start = opts.start_index.unwrap_or(0);
        if start > 0 && start >= n {
            return bad(format!("`start_index` must be lower than the length of the data ({n}), got {start}"));
        }
        if let Some(end) = opts.end_index
            && (end == 0 || end <= start || end >= n)
        {
            return bad(format!(
                "`end_index` must be above 0 and `start_index` ({start}) and below the data's length ({n}), got {end}"
            ));
        }
        for (name, v) in [("sampling_rate", opts.sampling_rate), ("sequence_stride", opts.sequence_stride)] {
            if v == 0 || v >= n {
                return bad(format!("`{name}` must be above 0 and below the data's length ({n}), got {v}"));
            }
        }
        if opts.sequence_length == 0 {
            return bad("`sequence_length` must be at least 1".into());
        }
        let end = opts.end_index.unwrap_or(n);
        let span = (opts.sequence_length - 1).checked_mul(opts.sampling_rate);
        let mut count = span.and_then(|s| (end - start).checked_sub(s)).unwrap_or(0);
        if let Some(t) = targets {
            if t.rows() < start {
                return bad(format!("targets have {} rows, fewer than `start_index` ({start})", t.rows()));
            }
            // Keras: `num_seqs = min(num_seqs, len(targets))`.
            count = count.min(t.rows());
        }
        let starts: Vec<usize> = (0..count).step_by(opts.sequence_stride).collect();
        if starts.is_empty() {
            return bad(format!(
                "no window of {} steps (sampling rate {}) fits rows {start}..{end}",
                opts.sequence_length, opts.sampling_rate
            ));
        }
        if let (Some(t), Some(&last)) = (targets, starts.last()) {
            // Keras gathers target `start_index + p` for the window at `p` and fails past
            // the end (`num_seqs` is capped by `len(targets)`, not by what `start_index`
            // leaves of them).
            if start + last >= t.rows() {
                return bad(format!(
                    "targets have {} rows, but the last window starts at row {} and takes the target of that row",
                    t.rows(),
                    start + last
                ));
            }
        }
        let aligned = targets.map(|t| {
            let mut out = Matrix::zeros(starts.len(), t.cols());
            for (k, &p) in starts.iter().enumerate() {
                out.row_mut(k).copy_from_slice(t.row(start + p));
            }
            out
        });
        let starts = starts.into_iter().map(|p| start + p).collect();
        Ok((Self { series, starts, sequence_length: opts.sequence_length, sampling_rate: opts.sampling_rate }, aligned))
    }

    /// The series row window `k` starts at (panics when `k ≥ len()`).
    pub fn start(&self, k: usize) -> usize {
        self.starts[k]
    }

    /// Number of windows.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// True when there are none (never, for windows made by [`new`](Windows::new)).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Values per window: `sequence_length × features`.
    pub fn width(&self) -> usize {
        self.sequence_length * self.series.cols()
    }

    /// The sample shape, `[sequence_length, features]`.
    pub fn sample_dims(&self) -> [usize; 2] {
        [self.sequence_length, self.series.cols()]
    }

    /// The series the windows read.
    pub fn series(&self) -> &Matrix {
        &self.series
    }

    /// Copies window `k` into `out` (`width()` values).
    pub(crate) fn copy_window(&self, k: usize, out: &mut [f32]) {
        let f = self.series.cols();
        for (i, row) in out.chunks_exact_mut(f).enumerate() {
            row.copy_from_slice(self.series.row(self.starts[k] + i * self.sampling_rate));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize) -> Arc<Matrix> {
        Arc::new(Matrix::from_vec(n, 1, (0..n).map(|v| v as f32).collect()).unwrap())
    }

    #[test]
    fn windows_and_targets_follow_keras() {
        // Keras' docstring example: data 0..100, sequence_length 10, sampling_rate 2,
        // targets data[10:]: the first window is [0, 2, …, 18] with target 10.
        let data = series(100);
        let targets = Matrix::from_vec(90, 1, (10..100).map(|v| v as f32).collect()).unwrap();
        let opts = WindowOptions { sampling_rate: 2, ..WindowOptions::new(10) };
        let (w, t) = Windows::new(data.clone(), Some(&targets), &opts).unwrap();
        let mut first = vec![0.0; 10];
        w.copy_window(0, &mut first);
        assert_eq!(first, (0..10).map(|v| (2 * v) as f32).collect::<Vec<_>>());
        // num_seqs = 100 − 9·2 = 82 windows (fewer than the 90 targets).
        assert_eq!((w.len(), t.as_ref().unwrap().get(0, 0)), (82, 10.0));
        // start_index offsets both the windows and the targets.
        let opts =
            WindowOptions { start_index: Some(5), end_index: Some(50), sequence_stride: 3, ..WindowOptions::new(4) };
        let (w, t) = Windows::new(data, Some(&targets), &opts).unwrap();
        let mut second = vec![0.0; 4];
        w.copy_window(1, &mut second);
        assert_eq!(second, [8.0, 9.0, 10.0, 11.0]);
        assert_eq!(t.unwrap().get(1, 0), 18.0, "targets[5 + 3]");
        assert_eq!(w.len(), (0..(45 - 3)).step_by(3).count());
    }

    #[test]
    fn keras_argument_checks() {
        let err = |opts: WindowOptions| Windows::new(series(20), None, &opts).unwrap_err().to_string();
        assert!(err(WindowOptions { end_index: Some(20), ..WindowOptions::new(3) }).contains("`end_index`"));
        assert!(err(WindowOptions { sampling_rate: 0, ..WindowOptions::new(3) }).contains("`sampling_rate`"));
        assert!(err(WindowOptions { start_index: Some(25), ..WindowOptions::new(3) }).contains("`start_index`"));
        assert!(err(WindowOptions::new(25)).contains("no window"));
        // The docstring's targets (data[10:], 90 rows) with `start_index` 20: 71 windows,
        // the last needing target row 90. Keras' gather fails there; so does kiln, by name.
        let targets = Matrix::from_vec(90, 1, (10..100).map(|v| v as f32).collect()).unwrap();
        let opts = WindowOptions { start_index: Some(20), ..WindowOptions::new(10) };
        let err = Windows::new(series(100), Some(&targets), &opts).unwrap_err().to_string();
        assert!(err.contains("90 rows") && err.contains("starts at row 90"), "{err}");
    }

    #[test]
    fn training_on_windows_is_training_on_the_materialized_rows() {
        use kiln_layers::{Dense, Flatten};
        let mut rng = kiln_tensor::Rng::seed_from_u64(3);
        let data = Arc::new(Matrix::from_vec(40, 2, (0..80).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap());
        let targets = Matrix::from_vec(40, 1, (0..40).map(|_| rng.uniform_in(-1.0, 1.0)).collect()).unwrap();
        let opts = WindowOptions { sampling_rate: 2, sequence_stride: 3, ..WindowOptions::new(4) };
        let (w, y) = Windows::new(data, Some(&targets), &opts).unwrap();
        let y = y.unwrap();
        let mut rows = Matrix::zeros(w.len(), w.width());
        for k in 0..w.len() {
            w.copy_window(k, rows.row_mut(k));
        }
        let train = |x: crate::FeaturesRef<'_>| {
            let mut m = crate::Sequential::new().seed(1).input_shape([4, 2]).add(Flatten::new()).add(Dense::new(1));
            m.compile(kiln_optimizers::RMSprop::default(), crate::Loss::mean_squared_error(), crate::NO_METRICS)
                .unwrap();
            let fit = crate::FitOptions::default().epochs(2).batch_size(4).verbose(crate::Verbosity::Silent);
            m.fit(x, &y, fit).unwrap();
            m.get_weights()
        };
        assert_eq!(train((&w).into()), train((&rows).into()));
    }
}
