//! The notebook's claims, each judged from the seed-mean curves.

use std::collections::BTreeMap;

use crate::plot::Band;

/// Seed bands by (experiment, history key).
pub type Curves = BTreeMap<(String, String), Band>;

/// The common-sense baseline's validation accuracy of each classification experiment (the
/// majority class of its training part), by experiment name.
pub type Baselines = BTreeMap<String, f64>;

/// How far above the majority-class baseline a model's best validation accuracy may be and
/// still "not beat" it: 2 points, three binomial standard deviations of a 10 % accuracy on
/// the 2,000 validation digits of the bundled MNIST (√(0.1·0.9/2000) ≈ 0.0067).
pub const CHANCE_MARGIN: f64 = 0.02;

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

/// Every claim whose experiments are in `curves`, then the baseline of every
/// classification experiment in `baselines`.
pub fn judge(curves: &Curves, baselines: &Baselines) -> Vec<Verdict> {
    let mut out = judge_with(&|exp, key| curves.get(&(exp.to_string(), key.to_string())));
    for (exp, &baseline) in baselines {
        if let Some(v) = curves.get(&(exp.clone(), "val_accuracy".to_string())) {
            out.push(beats_baseline(exp, v, baseline));
        }
    }
    out
}

/// Whether `exp`'s best seed-mean validation accuracy is above the majority-class
/// baseline; for shuffled labels the claim is the reverse, within [`CHANCE_MARGIN`].
fn beats_baseline(exp: &str, v: &Band, baseline: f64) -> Verdict {
    let best = v.max_mean();
    let evidence = format!("best val_accuracy {best:.3} (epoch {}) vs baseline {baseline:.3}", argmax_epoch(v));
    if exp == "mnist_shuffled_labels" {
        return Verdict {
            claim: format!(
                "`{exp}` does not beat the common-sense baseline (the training part's majority class) on validation"
            ),
            evidence: format!("{evidence} (margin {CHANCE_MARGIN})"),
            holds: Some(best <= baseline + CHANCE_MARGIN),
        };
    }
    Verdict {
        claim: format!("`{exp}` beats the common-sense baseline (the training part's majority class)"),
        evidence,
        holds: Some(best > baseline),
    }
}

/// The 1-based epoch of the highest seed mean.
fn argmax_epoch(v: &Band) -> usize {
    v.mean.iter().enumerate().fold((0, f64::NEG_INFINITY), |b, (i, &x)| if x > b.1 { (i, x) } else { b }).0 + 1
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
    architecture_priors(band, &mut out);
    out
}

/// `docs/progression.md`'s verdicts: the convnet against the dense model on MNIST, and the
/// weather models against the common-sense baseline and each other.
fn architecture_priors<'c>(band: &dyn Fn(&'static str, &'static str) -> Option<&'c Band>, out: &mut Vec<Verdict>) {
    let params = |exp: &str| super::experiments::find(exp).and_then(|e| e.param_count(784)).unwrap_or(0);
    if let (Some(dense), Some(conv)) = (band("mnist_dense_5ep", "val_accuracy"), band("mnist_convnet", "val_accuracy"))
    {
        let losses = (band("mnist_dense_5ep", "val_loss"), band("mnist_convnet", "val_loss"));
        let (dl, cl) = (losses.0.map_or(f64::NAN, Band::min_mean), losses.1.map_or(f64::NAN, Band::min_mean));
        let (pd, pc) = (params("mnist_dense_5ep"), params("mnist_convnet"));
        out.push(Verdict {
            claim: "a convnet generalizes better than a densely connected model on images, with a quarter of the \
                    parameters"
                .into(),
            evidence: format!(
                "best val_accuracy {:.4} (convnet, {pc} parameters) vs {:.4} (dense, {pd}); min val_loss {cl:.4} vs {dl:.4}",
                conv.max_mean(),
                dense.max_mean()
            ),
            holds: Some(conv.max_mean() > dense.max_mean() && cl < dl && 4 * pc <= pd + pd / 10),
        });
    }
    let Some(baseline) = band("weather_baseline", "val_mae").map(Band::last) else { return };
    let best = |exp| band(exp, "val_mae").map(|b| (b.min_mean(), b.argmin_epoch()));
    if let Some((dense, k)) = best("weather_dense") {
        out.push(Verdict {
            claim: "the common-sense baseline is hard to beat: the densely connected model does not beat it".into(),
            evidence: format!("best val MAE {dense:.3} °C (epoch {k}) vs the baseline's {baseline:.3} °C"),
            holds: Some(dense >= baseline),
        });
    }
    let recurrent: Vec<(&str, (f64, usize))> = [("LSTM", "weather_lstm"), ("GRU", "weather_gru")]
        .into_iter()
        .filter_map(|(n, e)| Some((n, best(e)?)))
        .collect();
    if !recurrent.is_empty() {
        let evidence: Vec<String> =
            recurrent.iter().map(|(n, (v, k))| format!("{n} best val MAE {v:.3} °C (epoch {k})")).collect();
        out.push(Verdict {
            claim: "a recurrent model beats the common-sense baseline".into(),
            evidence: format!("{} vs the baseline's {baseline:.3} °C", evidence.join(", ")),
            holds: Some(recurrent.iter().all(|(_, (v, _))| *v < baseline)),
        });
    }
    if let (Some((conv, kc)), Some((dense, kd))) = (best("weather_conv1d"), best("weather_dense")) {
        out.push(Verdict {
            claim: "a convnet's translation invariance does not suit this timeseries: the Conv1D model does worse \
                    than the dense one"
                .into(),
            evidence: format!("best val MAE {conv:.3} °C (Conv1D, epoch {kc}) vs {dense:.3} °C (dense, epoch {kd})"),
            holds: Some(conv > dense),
        });
    }
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
                ((e.to_string(), k.to_string()), Band { mean: v.to_vec(), min: v.to_vec(), max: v.to_vec(), seeds: 1 })
            })
            .collect()
    }

    #[test]
    fn smaller_overfitting_later_is_computed_from_the_argmin() {
        let c = curves(&[
            ("imdb_original", "val_loss", &[0.5, 0.3, 0.4, 0.6]),
            ("imdb_smaller", "val_loss", &[0.6, 0.5, 0.4, 0.45]),
        ]);
        let v = judge(&c, &Baselines::new());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].holds, Some(true));
        assert_eq!(v[0].evidence, "min val_loss at epoch 3 vs 2");
        let c = curves(&[
            ("imdb_original", "val_loss", &[0.5, 0.3, 0.4, 0.6]),
            ("imdb_smaller", "val_loss", &[0.4, 0.5, 0.6, 0.7]),
        ]);
        assert_eq!(judge(&c, &Baselines::new())[0].word(), "does not hold");
    }

    #[test]
    fn learning_rate_and_stall_claims() {
        let flat: Vec<f64> = (0..20).map(|e| 0.3 + 0.5 / (1.0 + e as f64).powi(2)).collect();
        let c = curves(&[
            ("mnist_lr1", "val_accuracy", &[0.2, 0.21]),
            ("mnist_lr001", "val_accuracy", &[0.9, 0.97]),
            ("mnist_logreg", "val_loss", &flat),
        ]);
        let v = judge(&c, &Baselines::new());
        assert_eq!(v.iter().map(|v| v.holds).collect::<Vec<_>>(), [Some(true), Some(true)]);
        let short = curves(&[("mnist_logreg", "val_loss", &[0.5, 0.4])]);
        assert_eq!(judge(&short, &Baselines::new())[0].holds, None);
    }

    #[test]
    fn noise_and_random_label_claims() {
        let c = curves(&[
            ("mnist_noise_channels", "val_accuracy", &[0.80, 0.90, 0.91]),
            ("mnist_zeros_channels", "val_accuracy", &[0.85, 0.94, 0.95]),
            ("mnist_shuffled_labels", "accuracy", &[0.10, 0.35, 0.62]),
            ("mnist_shuffled_labels", "val_accuracy", &[0.11, 0.10, 0.09]),
        ]);
        let v = judge(&c, &Baselines::new());
        assert_eq!(v.iter().map(|v| v.holds).collect::<Vec<_>>(), [Some(true), Some(true)]);
        assert_eq!(v[1].evidence, "final training accuracy 0.620, validation accuracy 0.090 (chance 0.100)");
        let c = curves(&[
            ("mnist_shuffled_labels", "accuracy", &[0.10, 0.15, 0.2]),
            ("mnist_shuffled_labels", "val_accuracy", &[0.11, 0.10, 0.09]),
        ]);
        assert_eq!(judge(&c, &Baselines::new())[0].holds, Some(false), "20 % is not far above chance");
    }

    #[test]
    fn baselines_are_beaten_or_not_and_shuffled_labels_must_not_beat_theirs() {
        let c = curves(&[
            ("imdb_original", "val_accuracy", &[0.80, 0.88, 0.86]),
            ("mnist_shuffled_labels", "val_accuracy", &[0.10, 0.12, 0.11]),
        ]);
        let baselines: Baselines =
            [("imdb_original".to_string(), 0.51), ("mnist_shuffled_labels".to_string(), 0.11)].into();
        let v = judge(&c, &baselines);
        assert_eq!(v.iter().map(|v| v.holds).collect::<Vec<_>>(), [Some(true), Some(true)]);
        assert_eq!(v[0].evidence, "best val_accuracy 0.880 (epoch 2) vs baseline 0.510");
        let c = curves(&[
            ("imdb_original", "val_accuracy", &[0.50, 0.49]),
            ("mnist_shuffled_labels", "val_accuracy", &[0.10, 0.14]),
        ]);
        let v = judge(&c, &baselines);
        assert_eq!(v.iter().map(|v| v.holds).collect::<Vec<_>>(), [Some(false), Some(false)]);
    }

    #[test]
    fn convnet_against_dense_on_images() {
        let c = curves(&[
            ("mnist_dense_5ep", "val_accuracy", &[0.90, 0.93, 0.94]),
            ("mnist_dense_5ep", "val_loss", &[0.30, 0.22, 0.20]),
            ("mnist_convnet", "val_accuracy", &[0.92, 0.96, 0.97]),
            ("mnist_convnet", "val_loss", &[0.25, 0.14, 0.12]),
        ]);
        let v = judge(&c, &Baselines::new());
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].holds, Some(true), "{}", v[0].evidence);
        assert!(v[0].evidence.contains("104202 parameters") && v[0].evidence.contains("407050"), "{}", v[0].evidence);
        let c = curves(&[
            ("mnist_dense_5ep", "val_accuracy", &[0.90, 0.97]),
            ("mnist_dense_5ep", "val_loss", &[0.30, 0.10]),
            ("mnist_convnet", "val_accuracy", &[0.92, 0.96]),
            ("mnist_convnet", "val_loss", &[0.25, 0.12]),
        ]);
        assert_eq!(judge(&c, &Baselines::new())[0].holds, Some(false));
    }

    #[test]
    fn weather_models_against_the_baseline_and_each_other() {
        let c = curves(&[
            ("weather_baseline", "val_mae", &[2.49, 2.49, 2.49]),
            ("weather_dense", "val_mae", &[3.1, 2.7, 2.62]),
            ("weather_conv1d", "val_mae", &[3.4, 3.0, 2.9]),
            ("weather_lstm", "val_mae", &[2.9, 2.4, 2.35]),
            ("weather_gru", "val_mae", &[2.8, 2.36, 2.33]),
        ]);
        let v = judge(&c, &Baselines::new());
        assert_eq!(v.iter().map(|v| v.holds).collect::<Vec<_>>(), [Some(true), Some(true), Some(true)]);
        assert_eq!(v[0].evidence, "best val MAE 2.620 °C (epoch 3) vs the baseline's 2.490 °C");
        let c = curves(&[
            ("weather_baseline", "val_mae", &[2.49, 2.49]),
            ("weather_dense", "val_mae", &[2.6, 2.4]),
            ("weather_conv1d", "val_mae", &[2.5, 2.3]),
            ("weather_lstm", "val_mae", &[2.9, 2.4]),
            ("weather_gru", "val_mae", &[2.8, 2.6]),
        ]);
        let v = judge(&c, &Baselines::new());
        assert_eq!(v.iter().map(|v| v.holds).collect::<Vec<_>>(), [Some(false), Some(false), Some(false)]);
        assert!(v[1].evidence.starts_with("LSTM best val MAE 2.400 °C (epoch 2), GRU best val MAE 2.600 °C"));
    }
}
