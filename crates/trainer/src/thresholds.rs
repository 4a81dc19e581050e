//! Decision thresholds of the confusion-matrix metrics (Keras' `thresholds=0.7` or
//! `thresholds=[0.3, 0.7]`), and the two ways Keras' `update_confusion_matrix_variables`
//! counts against them.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One decision threshold or a list of them, as Keras' `thresholds` argument takes (a
/// float or a list): `Thresholds::from(0.7)`, `Thresholds::from(vec![0.3, 0.7])`.
/// Serialized as a number when it holds one value, else as a list; both forms are read.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds(Arc<[f32]>);

impl Thresholds {
    /// One threshold (Keras' `thresholds=t`).
    pub fn one(t: f32) -> Self {
        Self(Arc::from([t]))
    }

    /// The thresholds in the order given.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// How many thresholds there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (refused by Precision and Recall; AUC then keeps only its ends).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The threshold when there is exactly one (Keras' metric is then a number).
    pub fn single(&self) -> Option<f32> {
        match *self.0 {
            [t] => Some(t),
            _ => None,
        }
    }
}

impl From<f32> for Thresholds {
    fn from(t: f32) -> Self {
        Self::one(t)
    }
}

impl From<Vec<f32>> for Thresholds {
    fn from(ts: Vec<f32>) -> Self {
        Self(ts.into())
    }
}

impl From<&[f32]> for Thresholds {
    fn from(ts: &[f32]) -> Self {
        Self(ts.into())
    }
}

impl<const N: usize> From<[f32; N]> for Thresholds {
    fn from(ts: [f32; N]) -> Self {
        Self(Arc::from(ts))
    }
}

impl Serialize for Thresholds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.single() {
            Some(t) => t.serialize(s),
            None => self.0.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Thresholds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(f32),
            Many(Vec<f32>),
        }
        Ok(match Form::deserialize(d)? {
            Form::One(t) => Self::one(t),
            Form::Many(ts) => ts.into(),
        })
    }
}

/// Keras' `metrics_utils.is_evenly_distributed_thresholds`: at least 3 values, each
/// `np.allclose` (rtol 1e-5, atol 1e-7) to `arange(n, dtype=float32) / (n − 1)`.
pub(crate) fn is_evenly_distributed(ts: &[f32]) -> bool {
    let n = ts.len();
    n >= 3
        && ts.iter().enumerate().all(|(i, &t)| {
            let even = f64::from(i as f32 / (n - 1) as f32);
            (f64::from(t) - even).abs() <= 1e-7 + 1e-5 * even.abs()
        })
}

/// How a prediction is compared with a metric's thresholds: Keras'
/// `update_confusion_matrix_variables`, which takes its bucketed path when the
/// thresholds are evenly distributed and compares with each threshold otherwise.
#[derive(Debug, Clone)]
pub(crate) enum Grid {
    /// `n` evenly spaced thresholds from 0 to 1 (`_update_confusion_matrix_variables_optimized`):
    /// `p` clipped to `[0, 1]` falls in bucket `⌈p·(n−1)⌉ − 1` and is positive at every
    /// threshold up to it; bucket −1 is raised to 0 when the end thresholds carry ±ε
    /// (AUC's), and is positive nowhere otherwise.
    Even { n: usize, epsilon_ends: bool },
    /// Sorted thresholds: `p` (not clipped) is positive at each `t` with `p > t`.
    Sorted(Vec<f32>),
}

impl Grid {
    /// The grid of Precision's or Recall's thresholds (Keras' `parse_init_thresholds`:
    /// `default` when none are given; evenly distributed ones take the bucketed path,
    /// with no ε ends). Keras keeps the thresholds in the order given and so does kiln's
    /// result; [`positive`](Self::positive) reads them one by one.
    pub fn confusion(thresholds: Option<&Thresholds>, default: f32) -> Self {
        match thresholds {
            Some(ts) if is_evenly_distributed(ts.as_slice()) => Self::Even { n: ts.len(), epsilon_ends: false },
            Some(ts) => Self::Sorted(ts.as_slice().to_vec()),
            None => Self::Sorted(vec![default]),
        }
    }

    /// AUC's grid: `num_thresholds` evenly spaced, or the given thresholds sorted between
    /// the ends `−ε` and `1 + ε` (ε = 1e-7, in float32 as Keras casts them), bucketed when
    /// `[0] + sorted + [1]` is evenly distributed (Keras' `AUC.__init__`).
    pub fn auc(num_thresholds: usize, thresholds: Option<&Thresholds>) -> Self {
        let Some(ts) = thresholds else {
            return Self::Even { n: num_thresholds, epsilon_ends: true };
        };
        let mut sorted = ts.as_slice().to_vec();
        sorted.sort_by(f32::total_cmp);
        let n = sorted.len() + 2;
        let mut check = Vec::with_capacity(n);
        check.push(0.0);
        check.extend_from_slice(&sorted);
        check.push(1.0);
        if is_evenly_distributed(&check) {
            return Self::Even { n, epsilon_ends: true };
        }
        let mut all = Vec::with_capacity(n);
        all.push((0.0f64 - 1e-7) as f32);
        all.extend_from_slice(&sorted);
        all.push((1.0f64 + 1e-7) as f32);
        Self::Sorted(all)
    }

    /// How many thresholds (and counts) there are.
    pub fn len(&self) -> usize {
        match self {
            Self::Even { n, .. } => *n,
            Self::Sorted(ts) => ts.len(),
        }
    }

    /// The bucket of `p` on the even grid: the highest threshold index it is positive at,
    /// `None` when it is positive nowhere.
    fn bucket(n: usize, epsilon_ends: bool, p: f32) -> Option<usize> {
        let b = (p.clamp(0.0, 1.0) * (n as f32 - 1.0)).ceil() - 1.0;
        if b.is_nan() {
            // NaN survives Keras' clip, ceil and relu; cast to int32 it is −2³¹, an index
            // `segment_sum` drops: the sample is positive at no threshold.
            None
        } else if epsilon_ends {
            // `relu`.
            Some((b.max(0.0) as usize).min(n - 1))
        } else if b >= 0.0 {
            Some((b as usize).min(n - 1))
        } else {
            None
        }
    }

    /// Whether `p` counts as positive at threshold `i`.
    pub fn positive(&self, p: f32, i: usize) -> bool {
        match self {
            Self::Even { n, epsilon_ends } => Self::bucket(*n, *epsilon_ends, p).is_some_and(|b| i <= b),
            Self::Sorted(ts) => p > ts[i],
        }
    }

    /// The highest threshold index `p` is positive at (the thresholds being sorted),
    /// `None` when it is positive at none.
    pub fn top(&self, p: f32) -> Option<usize> {
        match self {
            Self::Even { n, epsilon_ends } => Self::bucket(*n, *epsilon_ends, p),
            Self::Sorted(ts) => ts.partition_point(|&t| t < p).checked_sub(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_evenness_and_auc_grids() {
        assert!(is_evenly_distributed(&[0.0, 0.5, 1.0]));
        assert!(is_evenly_distributed(&[0.0, 0.25, 0.5, 0.75, 1.0]));
        assert!(!is_evenly_distributed(&[0.0, 1.0]));
        assert!(!is_evenly_distributed(&[0.0, 0.4, 1.0]));
        // AUC(thresholds=[0.5]) is AUC(num_thresholds=3); [0.3, 0.5] compares each.
        assert!(matches!(Grid::auc(200, Some(&0.5.into())), Grid::Even { n: 3, epsilon_ends: true }));
        let Grid::Sorted(ts) = Grid::auc(200, Some(&vec![0.5, 0.3].into())) else { panic!("not sorted") };
        assert_eq!(ts, vec![-1e-7, 0.3, 0.5, 1.000_000_1]);
        let g = Grid::Sorted(ts);
        assert_eq!(
            (g.top(0.0), g.top(0.3), g.top(0.31), g.top(1.0), g.top(-1.0)),
            (Some(0), Some(0), Some(1), Some(2), None)
        );
        // Precision's evenly spaced thresholds: p = 0 is positive nowhere, 0.5 only at 0.
        let e = Grid::confusion(Some(&vec![0.0, 0.5, 1.0].into()), 0.5);
        assert_eq!((e.top(0.0), e.top(0.5), e.top(0.51), e.top(2.0)), (None, Some(0), Some(1), Some(1)));
    }

    #[test]
    fn serialized_as_a_number_or_a_list() {
        assert_eq!(serde_json::to_string(&Thresholds::one(0.5)).unwrap(), "0.5");
        assert_eq!(serde_json::to_string(&Thresholds::from([0.25, 0.5])).unwrap(), "[0.25,0.5]");
        let t: Thresholds = serde_json::from_str("0.5").unwrap();
        assert_eq!(t.single(), Some(0.5));
        let t: Thresholds = serde_json::from_str("[0.5, 0.75]").unwrap();
        assert_eq!(t.as_slice(), &[0.5, 0.75]);
    }
}
