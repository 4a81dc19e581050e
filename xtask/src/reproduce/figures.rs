//! The chapter's figures as data, each written as `<name>.png` and `<name>.svg`.

use std::path::Path;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::mask::{self, MaskDemo};
use super::verdicts::Curves;
use crate::plot::{self, Chart, Marker, PALETTE, Series, drawing};

/// What a figure shows.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Validation loss of each `(experiment, legend)`.
    ValLoss(&'static [(&'static str, &'static str)]),
    /// Any history key of each `(experiment, key, legend)`, solid then dashed (as the
    /// notebook's `"b-"`/`"b--"`).
    Metrics(&'static [(&'static str, &'static str, &'static str)]),
    /// Training and validation accuracy and loss of MNIST at learning rate 1 and 1e-2.
    LearningRate,
    /// A dropout mask applied to a small matrix.
    DropoutMask,
    /// Validation accuracy of the convnet against the dense model, parameter counts in the
    /// legend.
    DenseVsConvnet,
    /// Training and validation MAE of one weather model per epoch, the common-sense
    /// baseline's validation MAE as a horizontal line.
    WeatherMae(&'static str),
}

/// One weather model's MAE figure.
const fn weather_mae(name: &'static str, title: &'static str, experiment: &'static str) -> Figure {
    Figure { name, title, y_label: "MAE (°C)", kind: Kind::WeatherMae(experiment) }
}

/// One figure: file name, the notebook's title and y axis, and its content.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    /// File stem, also the name used in the report.
    pub name: &'static str,
    /// Caption.
    pub title: &'static str,
    /// Y axis name.
    pub y_label: &'static str,
    /// Content.
    pub kind: Kind,
}

/// A validation-loss figure.
const fn val_loss(
    name: &'static str,
    title: &'static str,
    y_label: &'static str,
    series: &'static [(&'static str, &'static str)],
) -> Figure {
    Figure { name, title, y_label, kind: Kind::ValLoss(series) }
}

const ORIGINAL: (&str, &str) = ("imdb_original", "Validation loss of original model");

/// Every figure, in the chapter's order.
pub const FIGURES: &[Figure] = &[
    val_loss(
        "logreg_val_loss",
        "Effect of insufficient model capacity on validation loss",
        "Loss",
        &[("mnist_logreg", "Validation loss")],
    ),
    val_loss(
        "mnist_96x2_val_loss",
        "Validation loss for a model with appropriate capacity",
        "Loss",
        &[("mnist_96x2", "Validation loss")],
    ),
    val_loss(
        "original_vs_smaller",
        "Original model vs. smaller model on IMDB review classification",
        "Validation loss",
        &[ORIGINAL, ("imdb_smaller", "Validation loss of smaller model")],
    ),
    val_loss(
        "original_vs_larger",
        "Original model vs. much larger model on IMDB review classification",
        "Validation loss",
        &[ORIGINAL, ("imdb_larger", "Validation loss of larger model")],
    ),
    val_loss(
        "original_vs_l2",
        "Effect of L2 weight regularization on validation loss",
        "Validation loss",
        &[ORIGINAL, ("imdb_l2", "Validation loss of L2-regularized model")],
    ),
    val_loss(
        "original_vs_dropout",
        "Effect of dropout on validation loss",
        "Validation loss",
        &[ORIGINAL, ("imdb_dropout", "Validation loss of dropout-regularized model")],
    ),
    Figure {
        name: "noise_channels",
        title: "Effect of noise channels on validation accuracy",
        y_label: "Accuracy",
        kind: Kind::Metrics(&[
            ("mnist_noise_channels", "val_accuracy", "Validation accuracy with noise channels"),
            ("mnist_zeros_channels", "val_accuracy", "Validation accuracy with zeros channels"),
        ]),
    },
    Figure {
        name: "shuffled_labels",
        title: "Fitting an MNIST model with randomly shuffled labels",
        y_label: "Accuracy",
        kind: Kind::Metrics(&[
            ("mnist_shuffled_labels", "accuracy", "Training accuracy"),
            ("mnist_shuffled_labels", "val_accuracy", "Validation accuracy"),
        ]),
    },
    Figure {
        name: "mnist_learning_rate",
        title: "MNIST with RMSprop: learning rate 1 vs 1e-2",
        y_label: "",
        kind: Kind::LearningRate,
    },
    Figure {
        name: "dropout_mask",
        title: "Dropout applied to an activation matrix at training time",
        y_label: "",
        kind: Kind::DropoutMask,
    },
    Figure {
        name: "mnist_dense_vs_convnet",
        title: "A convnet against a densely connected model on MNIST",
        y_label: "Validation accuracy",
        kind: Kind::DenseVsConvnet,
    },
    weather_mae("weather_dense_mae", "Densely connected model on the weather windows", "weather_dense"),
    weather_mae("weather_conv1d_mae", "1D convnet on the weather windows", "weather_conv1d"),
    weather_mae("weather_lstm_mae", "LSTM on the weather windows", "weather_lstm"),
    weather_mae("weather_gru_mae", "GRU on the weather windows", "weather_gru"),
    val_loss(
        "original_vs_custom",
        "Effect of the plugin regularizer on validation loss",
        "Validation loss",
        &[ORIGINAL, ("imdb_custom", "Validation loss of plugin-regularized model")],
    ),
];

impl Figure {
    /// The experiments the figure needs.
    pub fn needs(&self) -> Vec<&'static str> {
        match self.kind {
            Kind::ValLoss(series) => series.iter().map(|s| s.0).collect(),
            Kind::Metrics(series) => series.iter().map(|s| s.0).collect(),
            Kind::LearningRate => vec!["mnist_lr1", "mnist_lr001"],
            Kind::DropoutMask => Vec::new(),
            Kind::DenseVsConvnet => vec!["mnist_dense_5ep", "mnist_convnet"],
            Kind::WeatherMae(exp) => vec![exp, "weather_baseline"],
        }
    }

    /// Pixel size.
    fn size(&self) -> (u32, u32) {
        match self.kind {
            Kind::ValLoss(_) | Kind::Metrics(_) | Kind::DenseVsConvnet | Kind::WeatherMae(_) => (800, 520),
            Kind::LearningRate => (1300, 520),
            Kind::DropoutMask => (1200, 760),
        }
    }

    /// Writes `dir/<name>.png` and `dir/<name>.svg`, each replacing the old file only once
    /// complete (an interrupted run never leaves a torn figure).
    pub fn write(&self, dir: &Path, curves: &Curves, demo: &MaskDemo) -> anyhow::Result<()> {
        let size = self.size();
        let png = dir.join(format!("{}.png", self.name));
        // plotters picks the encoder from the extension, so the temporary file ends in .png.
        let png_tmp = dir.join(format!(".{}.tmp{}.png", self.name, std::process::id()));
        {
            let root = BitMapBackend::new(&png_tmp, size).into_drawing_area();
            self.draw(&root, curves, demo)?;
            root.present().map_err(drawing)?;
        }
        std::fs::rename(&png_tmp, &png).with_context(|| format!("writing {}", png.display()))?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            self.draw(&root, curves, demo)?;
            root.present().map_err(drawing)?;
        }
        super::outputs::write_file(&dir.join(format!("{}.svg", self.name)), svg.as_bytes())?;
        Ok(())
    }

    /// Draws the figure on any backend.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        curves: &Curves,
        demo: &MaskDemo,
    ) -> anyhow::Result<()> {
        root.fill(&WHITE).map_err(drawing)?;
        let band = |exp: &str, key: &str| {
            curves.get(&(exp.to_string(), key.to_string())).ok_or_else(|| anyhow::anyhow!("no {key} for {exp}"))
        };
        match self.kind {
            Kind::ValLoss(series) => {
                let series = series
                    .iter()
                    .enumerate()
                    .map(|(i, (exp, label))| {
                        // The notebook marks the original with `+` and the variant with `o`.
                        let marker = if series.len() == 1 {
                            Marker::Dashed
                        } else if i == 0 {
                            Marker::Cross
                        } else {
                            Marker::Circle
                        };
                        Ok(Series { label: label.to_string(), band: band(exp, "val_loss")?, color: PALETTE[i], marker })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                plot::draw(root, &Chart::new(self.title, self.y_label, series))
            }
            Kind::Metrics(series) => {
                let series = series
                    .iter()
                    .enumerate()
                    .map(|(i, (exp, key, label))| {
                        let marker = if i == 0 { Marker::None } else { Marker::Dashed };
                        Ok(Series { label: label.to_string(), band: band(exp, key)?, color: PALETTE[0], marker })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                // Accuracy curves end high (or one high, one low): the right middle is free.
                let mut chart = Chart::new(self.title, self.y_label, series);
                chart.legend = SeriesLabelPosition::MiddleRight;
                plot::draw(root, &chart)
            }
            Kind::LearningRate => {
                let body = root.titled(self.title, ("sans-serif", 22)).map_err(drawing)?;
                let panels = body.split_evenly((1, 2));
                for (panel, (metric, axis)) in panels.iter().zip([("accuracy", "Accuracy"), ("loss", "Loss")]) {
                    let mut series = Vec::new();
                    for (i, (exp, lr)) in [("mnist_lr1", "1"), ("mnist_lr001", "1e-2")].into_iter().enumerate() {
                        for (prefix, what, marker) in
                            [("", "Training", Marker::None), ("val_", "Validation", Marker::Circle)]
                        {
                            let band = band(exp, &format!("{prefix}{metric}"))?;
                            let color = PALETTE[2 * i + usize::from(!prefix.is_empty())];
                            series.push(Series { label: format!("{what} {metric}, lr {lr}"), band, color, marker });
                        }
                    }
                    let mut chart = Chart::new(format!("Training and validation {metric}"), axis, series);
                    // lr 1's loss starts in the thousands: only a log axis shows both rates.
                    chart.log_y = metric == "loss";
                    chart.legend = SeriesLabelPosition::MiddleRight;
                    plot::draw(panel, &chart)?;
                }
                Ok(())
            }
            Kind::DropoutMask => mask::draw(root, demo),
            Kind::DenseVsConvnet => {
                let mut series = Vec::new();
                for (i, (exp, what)) in
                    [("mnist_dense_5ep", "Dense model"), ("mnist_convnet", "Convnet")].into_iter().enumerate()
                {
                    let params = super::experiments::find(exp).and_then(|e| e.param_count(784)).unwrap_or(0);
                    let label = format!("{what} ({} parameters)", thousands(params));
                    let marker = if i == 0 { Marker::Cross } else { Marker::Circle };
                    series.push(Series { label, band: band(exp, "val_accuracy")?, color: PALETTE[i], marker });
                }
                let mut chart = Chart::new(self.title, self.y_label, series);
                chart.legend = SeriesLabelPosition::LowerRight;
                plot::draw(root, &chart)
            }
            Kind::WeatherMae(exp) => {
                let series = vec![
                    Series {
                        label: "Training MAE".into(),
                        band: band(exp, "mae")?,
                        color: PALETTE[0],
                        marker: Marker::None,
                    },
                    Series {
                        label: "Validation MAE".into(),
                        band: band(exp, "val_mae")?,
                        color: PALETTE[0],
                        marker: Marker::Dashed,
                    },
                    Series {
                        label: "Common-sense baseline (validation)".into(),
                        band: band("weather_baseline", "val_mae")?,
                        color: PALETTE[3],
                        marker: Marker::None,
                    },
                ];
                let mut chart = Chart::new(self.title, self.y_label, series);
                chart.legend = SeriesLabelPosition::UpperRight;
                plot::draw(root, &chart)
            }
        }
    }
}

/// `104202` as `104,202`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_experiment_a_figure_draws_exists() {
        for fig in FIGURES {
            for exp in fig.needs() {
                assert!(super::super::experiments::find(exp).is_some(), "figure {} needs unknown `{exp}`", fig.name);
            }
        }
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(
            (thousands(104_202), thousands(407_050), thousands(17), thousands(1000)),
            ("104,202".into(), "407,050".into(), "17".into(), "1,000".into())
        );
    }
}
