//! The notebook's claims, each judged from the seed-mean curves.

use std::collections::BTreeMap;

use crate::plot::Band;

/// Seed bands by (experiment, history key).
pub type Curves = BTreeMap<(String, String), Band>;

/// One claim of the chapter and what the numbers say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The claim, in the book's words (shortened).
    pub claim: String,
    /// The numbers that decide it.
    pub evidence: String,
    /// `Some(true)` holds, `Some(false)` does not, `None` too few epochs to judge.
    pub holds: Option<bool>,
}

impl Verdict {
    /// `holds`, `does not hold` or `not judged`.
    pub fn word(&self) -> &'static str {
        match self.holds {
            Some(true) => "holds",
            Some(false) => "does not hold",
            None => "not judged (too few epochs)",
        }
    }
}

/// Every claim whose experiments are in `curves`.
pub fn judge(curves: &Curves) -> Vec<Verdict> {
    judge_with(&|exp, key| curves.get(&(exp.to_string(), key.to_string())))
}

/// [`judge`] over any lookup of seed bands by (experiment, key).
fn judge_with<'c>(band: &dyn Fn(&'static str, &'static str) -> Option<&'c Band>) -> Vec<Verdict> {
    let mut out = Vec::new();

    if let (Some(fast), Some(slow)) = (band("mnist_lr1", "val_accuracy"), band("mnist_lr001", "val_accuracy")) {
        // "Fails" = stuck far below what the same model reaches with a sane rate.
        let (a, b) = (fast.last(), slow.last());
        out.push(Verdict {
            claim: "learning rate 1 fails to train the MNIST model that trains at 1e-2".into(),
            evidence: format!("final val_accuracy {a:.3} at lr 1 vs {b:.3} at lr 1e-2"),
            holds: Some(a + 0.2 < b),
        });
    }
    if let Some(v) = band("mnist_logreg", "val_loss") {
        out.push(stalls(v));
    }
    if let Some(v) = band("mnist_96x2", "val_loss") {
        let (k, min, last, n) = (v.argmin_epoch(), v.min_mean(), v.last(), v.mean.len());
        out.push(Verdict {
            claim: "the 96×2 model has enough capacity to overfit: val_loss bottoms out, then rises".into(),
            evidence: format!("min val_loss {min:.4} at epoch {k} of {n}, final {last:.4}"),
            holds: (n >= 3).then_some(k < n && last > min * 1.05),
        });
    }
    if let (Some(noise), Some(zeros)) =
        (band("mnist_noise_channels", "val_accuracy"), band("mnist_zeros_channels", "val_accuracy"))
    {
        let (n, z) = (noise.last(), zeros.last());
        out.push(Verdict {
            claim: "noise channels lower validation accuracy (same pixels, zeros channels instead)".into(),
            evidence: format!(
                "final val_accuracy {n:.3} with noise vs {z:.3} with zeros; best {:.3} vs {:.3}",
                noise.max_mean(),
                zeros.max_mean()
            ),
            holds: Some(n < z && noise.max_mean() < zeros.max_mean()),
        });
    }
    if let (Some(train), Some(val)) =
        (band("mnist_shuffled_labels", "accuracy"), band("mnist_shuffled_labels", "val_accuracy"))
    {
        // Chance is 10 % on ten classes; "far above" = at least three times chance, "near" =
        // within 5 points of it.
        let (t, v) = (train.last(), val.last());
        out.push(Verdict {
            claim: "a model can fit random labels: training accuracy far above chance while validation stays near 10 %"
                .into(),
            evidence: format!("final training accuracy {t:.3}, validation accuracy {v:.3} (chance 0.100)"),
            holds: Some(t >= 0.3 && (v - 0.1).abs() <= 0.05),
        });
    }
    let original = band("imdb_original", "val_loss");
    if let (Some(o), Some(s)) = (original, band("imdb_smaller", "val_loss")) {
        let (ko, ks) = (o.argmin_epoch(), s.argmin_epoch());
        out.push(Verdict {
            claim: "the smaller model starts overfitting later than the original".into(),
            evidence: format!("min val_loss at epoch {ks} vs {ko}"),
            holds: Some(ks > ko),
        });
    }
    if let (Some(o), Some(l)) = (original, band("imdb_larger", "val_loss")) {
        let (ko, kl) = (o.argmin_epoch(), l.argmin_epoch());
        out.push(Verdict {
            claim: "the larger model overfits sooner and more severely than the original".into(),
            evidence: format!("min val_loss at epoch {kl} vs {ko}; final val_loss {:.4} vs {:.4}", l.last(), o.last()),
            holds: Some(kl <= ko && l.last() > o.last()),
        });
        let (nl, no) = (roughness(&l.mean), roughness(&o.mean));
        out.push(Verdict {
            claim: "the larger model's validation loss is noisier".into(),
            evidence: format!("mean absolute second difference of val_loss {nl:.4} vs {no:.4}"),
            holds: (l.mean.len() >= 3).then_some(nl > no),
        });
    }
    for (exp, what) in [
        ("imdb_l2", "the L2-regularized model"),
        ("imdb_l1", "the L1-regularized model"),
        ("imdb_l1l2", "the L1+L2-regularized model"),
        ("imdb_dropout", "the dropout model"),
        ("imdb_custom", "the plugin-regularized model"),
    ] {
        if let (Some(o), Some(r)) = (original, band(exp, "val_loss")) {
            // Overfitting = how far val_loss climbs back above its minimum. Not the level:
            // Keras' val_loss includes the penalty, which lifts a regularized curve.
            let (rr, ro) = (r.last() - r.min_mean(), o.last() - o.min_mean());
            out.push(Verdict {
                claim: format!("{what} resists overfitting better than the original (same size)"),
                evidence: format!(
                    "val_loss ends {rr:.4} above its minimum (epoch {}) vs {ro:.4} (epoch {}); final {:.4} vs {:.4}",
                    r.argmin_epoch(),
                    o.argmin_epoch(),
                    r.last(),
                    o.last()
                ),
                holds: (o.mean.len() >= 3).then_some(rr < ro),
            });
        }
    }
    out
}

/// "Validation metrics stall instead of peaking and reversing": late improvement is tiny
/// next to early improvement, and the curve does not turn up.
fn stalls(v: &Band) -> Verdict {
    let n = v.mean.len();
    let claim = "logistic regression underfits: val_loss stalls instead of turning up".to_string();
    if n < 10 {
        return Verdict { claim, evidence: format!("only {n} epochs"), holds: None };
    }
    let early = v.mean[0] - v.mean[5];
    let late = v.mean[n - 6] - v.mean[n - 1];
    let rise = v.last() / v.min_mean() - 1.0;
    Verdict {
        claim,
        evidence: format!(
            "val_loss falls {early:.4} over epochs 1–6 but {late:.4} over the last 5; final is {:.1} % above its minimum (epoch {})",
            rise * 100.0,
            v.argmin_epoch()
        ),
        holds: Some(late.abs() < 0.25 * early && rise < 0.02),
    }
}

/// Mean absolute second difference: how much a curve zig-zags, independent of its trend.
fn roughness(values: &[f64]) -> f64 {
    if values.len() < 3 {
        return 0.0;
    }
    let d: Vec<f64> = values.windows(3).map(|w| (w[2] - 2.0 * w[1] + w[0]).abs()).collect();
    d.iter().sum::<f64>() / d.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_experiment_a_verdict_reads_exists() {
        let asked = std::cell::RefCell::new(Vec::new());
        judge_with(&|exp, _| {
            asked.borrow_mut().push(exp);
            None
        });
        let asked = asked.into_inner();
        assert!(asked.len() >= 10, "{asked:?}");
        for exp in asked {
            assert!(super::super::experiments::find(exp).is_some(), "a verdict reads unknown experiment `{exp}`");
        }
    }

    fn curves(rows: &[(&str, &str, &[f64])]) -> Curves {
        rows.iter()
            .map(|(e, k, v)| {
                ((e.to_string(), k.to_string()), Band { mean: v.to_vec(), min: v.to_vec(), max: v.to_vec() })
            })
            .collect()
    }

    #[test]
    fn smaller_overfitting_later_is_computed_from_the_argmin() {
        let c = curves(&[
            ("imdb_original", "val_loss", &[0.5, 0.3, 0.4, 0.6]),
            ("imdb_smaller", "val_loss", &[0.6, 0.5, 0.4, 0.45]),
        ]);
        let v = judge(&c);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].holds, Some(true));
        assert_eq!(v[0].evidence, "min val_loss at epoch 3 vs 2");
        let c = curves(&[
            ("imdb_original", "val_loss", &[0.5, 0.3, 0.4, 0.6]),
            ("imdb_smaller", "val_loss", &[0.4, 0.5, 0.6, 0.7]),
        ]);
        assert_eq!(judge(&c)[0].word(), "does not hold");
    }

    #[test]
    fn learning_rate_and_stall_claims() {
        let flat: Vec<f64> = (0..20).map(|e| 0.3 + 0.5 / (1.0 + e as f64).powi(2)).collect();
        let c = curves(&[
            ("mnist_lr1", "val_accuracy", &[0.2, 0.21]),
            ("mnist_lr001", "val_accuracy", &[0.9, 0.97]),
            ("mnist_logreg", "val_loss", &flat),
        ]);
        let v = judge(&c);
        assert_eq!(v.iter().map(|v| v.holds).collect::<Vec<_>>(), [Some(true), Some(true)]);
        let short = curves(&[("mnist_logreg", "val_loss", &[0.5, 0.4])]);
        assert_eq!(judge(&short)[0].holds, None);
    }

    #[test]
    fn noise_and_random_label_claims() {
        let c = curves(&[
            ("mnist_noise_channels", "val_accuracy", &[0.80, 0.90, 0.91]),
            ("mnist_zeros_channels", "val_accuracy", &[0.85, 0.94, 0.95]),
            ("mnist_shuffled_labels", "accuracy", &[0.10, 0.35, 0.62]),
            ("mnist_shuffled_labels", "val_accuracy", &[0.11, 0.10, 0.09]),
        ]);
        let v = judge(&c);
        assert_eq!(v.iter().map(|v| v.holds).collect::<Vec<_>>(), [Some(true), Some(true)]);
        assert_eq!(v[1].evidence, "final training accuracy 0.620, validation accuracy 0.090 (chance 0.100)");
        let c = curves(&[
            ("mnist_shuffled_labels", "accuracy", &[0.10, 0.15, 0.2]),
            ("mnist_shuffled_labels", "val_accuracy", &[0.11, 0.10, 0.09]),
        ]);
        assert_eq!(judge(&c)[0].holds, Some(false), "20 % is not far above chance");
    }
}
