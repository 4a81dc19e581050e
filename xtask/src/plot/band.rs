//! Seed statistics: per-epoch mean and min–max band of a history key.

use kiln_trainer::History;

/// A curve over epochs: the seed mean with its min–max band.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Mean over seeds, one value per epoch.
    pub mean: Vec<f64>,
    /// Smallest seed value per epoch.
    pub min: Vec<f64>,
    /// Largest seed value per epoch.
    pub max: Vec<f64>,
    /// How many runs (seeds) it summarizes.
    pub seeds: usize,
}

impl Band {
    /// The band of `key` over `histories`, cut to the shortest run; `None` if a run lacks it or
    /// a run has no epoch.
    pub fn of(histories: &[&History], key: &str) -> Option<Band> {
        let curves: Vec<&[f64]> = histories.iter().map(|h| h.get(key)).collect::<Option<_>>()?;
        // No epoch at all has no band (its mean, minimum and last value do not exist).
        let epochs = curves.iter().map(|c| c.len()).min().filter(|&e| e > 0)?;
        let at = |e: usize| curves.iter().map(move |c| c[e]);
        Some(Band {
            mean: (0..epochs).map(|e| at(e).sum::<f64>() / curves.len() as f64).collect(),
            min: (0..epochs).map(|e| at(e).fold(f64::INFINITY, f64::min)).collect(),
            max: (0..epochs).map(|e| at(e).fold(f64::NEG_INFINITY, f64::max)).collect(),
            seeds: curves.len(),
        })
    }

    /// The 1-based epoch of the smallest mean value (the first one on ties).
    pub fn argmin_epoch(&self) -> usize {
        argmin(&self.mean) + 1
    }

    /// The largest mean value (NaN never wins).
    pub fn max_mean(&self) -> f64 {
        self.mean.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// The smallest mean value.
    pub fn min_mean(&self) -> f64 {
        self.mean[argmin(&self.mean)]
    }

    /// The last mean value.
    pub fn last(&self) -> f64 {
        *self.mean.last().expect("at least one epoch")
    }
}

/// Index of the smallest value; NaN never wins.
fn argmin(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v < values[best] || values[best].is_nan() {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_trainer::Logs;

    fn history(val_loss: &[f64]) -> History {
        let mut h = History::default();
        for &v in val_loss {
            let mut logs = Logs::default();
            logs.set("val_loss", v);
            h.push(&logs);
        }
        h
    }

    #[test]
    fn band_is_mean_min_max_per_epoch() {
        let (a, b) = (history(&[1.0, 0.5, 0.7]), history(&[3.0, 0.5, 0.9]));
        let band = Band::of(&[&a, &b], "val_loss").unwrap();
        assert_eq!(band.mean, [2.0, 0.5, 0.8]);
        assert_eq!(band.min, [1.0, 0.5, 0.7]);
        assert_eq!(band.max, [3.0, 0.5, 0.9]);
        assert_eq!(band.argmin_epoch(), 2);
        assert!(Band::of(&[&a], "loss").is_none());
    }

    #[test]
    fn empty_histories_have_no_band() {
        // Issue 23 #7: `last()` of an empty band panicked after a merge printed "merged".
        let empty: History = History::from_json(r#"{"val_loss": []}"#).unwrap();
        assert!(Band::of(&[&empty], "val_loss").is_none());
        assert!(Band::of(&[&history(&[1.0]), &empty], "val_loss").is_none());
    }
}
