//! `model.summary()`: Keras' table of layers, output shapes and parameter counts.

use std::fmt::Write;

use crate::{Sequential, Source};

/// Column widths of Keras' default summary (between the box-drawing separators), for a
/// stack and for a graph (with its "Connected to" column), at Keras' 76-column default.
const WIDTHS: [usize; 3] = [33, 24, 15];
const GRAPH_WIDTHS: [usize; 4] = [21, 19, 12, 19];

impl Sequential {
    /// The Keras-style summary table (layer, output shape, parameters, totals); a
    /// Functional model's lists its inputs (`InputLayer`) too, in Keras' order, and, unless
    /// it is one chain, what each layer is connected to.
    ///
    /// Output shapes (`(None, 26, 26, 32)`) and counts need the input shape: an unbuilt
    /// model shows `?`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let shapes = self.layer_shapes();
        writeln!(s, "Model: \"{}\"", self.name).unwrap();
        let rows = self.summary_rows();
        let chain = self.graph.as_ref().is_none_or(|g| g.inputs.len() == 1 && self.is_chain());
        let widths: &[usize] = if chain { &WIDTHS } else { &GRAPH_WIDTHS };
        let header: &[&str] = &["Layer (type)", "Output Shape", "Param #", "Connected to"][..widths.len()];
        s.push_str(&rule(widths, '┏', '━', '┳', '┓'));
        s.push_str(&row(header, widths, '┃'));
        s.push_str(&rule(widths, '┡', '━', '╇', '┩'));
        for (i, r) in rows.iter().enumerate() {
            let shape = match (&r.shape, shapes) {
                (Some(shape), _) => shape.clone(),
                (None, Some(w)) => w[r.layer.expect("a layer row")].to_string(),
                (None, None) => "?".into(),
            };
            let params = match (r.layer, shapes) {
                (None, _) => "0".into(),
                (Some(l), Some(_)) => group_thousands(self.layers[l].param_count()),
                (Some(_), None) => "0 (unbuilt)".into(),
            };
            let cells = [r.name.as_str(), &shape, &params, &r.connected];
            s.push_str(&row(&cells[..widths.len()], widths, '│'));
            if i + 1 < rows.len() {
                s.push_str(&rule(widths, '├', '─', '┼', '┤'));
            }
        }
        s.push_str(&rule(widths, '└', '─', '┴', '┘'));
        let (total, trainable) = (self.param_count(), self.trainable_param_count());
        // Bytes as Keras counts them: 4 per float32, 8 per int64 (Normalization's count).
        let bytes = |trainable: Option<bool>| -> usize {
            let params = self.layers.iter().flat_map(|l| l.params());
            params
                .filter(|p| trainable.is_none_or(|t| p.is_trainable() == t))
                .map(|p| p.len() * p.keras_bytes_per_value())
                .sum()
        };
        let size = |trainable: Option<bool>| readable_size(bytes(trainable));
        let optimizer = self.optimizer_variables();
        let (extra, extra_bytes) = optimizer.unwrap_or((0, 0));
        let total_size = readable_size(bytes(None) + extra_bytes);
        writeln!(s, " Total params: {} ({total_size})", group_thousands(total + extra)).unwrap();
        writeln!(s, " Trainable params: {} ({})", group_thousands(trainable), size(Some(true))).unwrap();
        let frozen = total - trainable;
        writeln!(s, " Non-trainable params: {} ({})", group_thousands(frozen), size(Some(false))).unwrap();
        if let Some((count, bytes)) = optimizer {
            writeln!(s, " Optimizer params: {} ({})", group_thousands(count), readable_size(bytes)).unwrap();
        }
        s
    }

    /// The optimizer's variables as Keras counts them once it is built (after the first
    /// training step, `summary_utils.py`): `iteration` (int64), the learning rate unless a
    /// schedule gives it (float32), and every slot (float32, one per trainable weight
    /// and state: RMSprop's velocities, Adam's moments…). Their count and bytes, or `None`
    /// before the optimizer is built.
    fn optimizer_variables(&self) -> Option<(usize, usize)> {
        let optimizer = &self.compiled.as_ref()?.optimizer;
        if !optimizer.is_built() {
            return None;
        }
        let slots: usize = optimizer.slots().iter().map(|s| s.values.len()).sum();
        let rate = usize::from(matches!(optimizer.learning_rate_config(), kiln_optimizers::LearningRate::Constant(_)));
        Some((slots + 1 + rate, 4 * slots + 8 + 4 * rate))
    }

    /// True when every layer reads the one before (the first, the input).
    fn is_chain(&self) -> bool {
        self.graph.as_ref().is_none_or(|g| g.inbound == crate::graph::chain(self.layers.len()))
    }

    /// The summary's rows: the layers in order for a stack; for a graph, its inputs and
    /// layers in Keras' order.
    fn summary_rows(&self) -> Vec<SummaryRow> {
        let layer_row = |i: usize, connected: String| SummaryRow {
            name: format!("{} ({})", self.layers[i].name(), self.layers[i].class_name()),
            layer: Some(i),
            shape: None,
            connected,
        };
        let Some(g) = &self.graph else {
            return (0..self.layers.len()).map(|i| layer_row(i, String::new())).collect();
        };
        let source_name = |s: &Source| match *s {
            Source::Input(k) => g.inputs[k].name.as_str(),
            Source::Layer(j) => self.layers[j].name(),
        };
        let order = if self.layers.is_empty() || g.inbound.len() != self.layers.len() {
            Vec::new()
        } else {
            crate::graph::keras_order(&g.inbound, self.layers.len() - 1)
        };
        order
            .iter()
            .map(|s| match *s {
                Source::Input(k) => SummaryRow {
                    name: format!("{} (InputLayer)", g.inputs[k].name),
                    layer: None,
                    shape: Some(
                        kiln_tensor::Shape::new(g.inputs[k].shape.clone())
                            .map_or_else(|_| "?".into(), |s| s.to_string()),
                    ),
                    connected: "-".into(),
                },
                Source::Layer(i) => {
                    let from: Vec<String> = g.inbound[i].iter().map(|s| format!("{}[0][0]", source_name(s))).collect();
                    layer_row(i, from.join(", "))
                }
            })
            .collect()
    }
}

/// One line of the table before formatting.
struct SummaryRow {
    name: String,
    /// The layer's index (`None` for an input).
    layer: Option<usize>,
    /// An input's shape (layers' come from the build).
    shape: Option<String>,
    connected: String,
}

fn rule(widths: &[usize], left: char, fill: char, mid: char, right: char) -> String {
    let parts: Vec<String> = widths.iter().map(|w| fill.to_string().repeat(*w)).collect();
    format!("{left}{}{right}\n", parts.join(&mid.to_string()))
}

/// One table row; a cell wider than its column wraps at spaces onto further lines, as
/// Keras' (rich) table does (`average_pooling2d` / `(AveragePooling2D)`). The parameter
/// column (the third) is right-aligned, the others left-aligned.
fn row(cells: &[&str], widths: &[usize], sep: char) -> String {
    let wrapped: Vec<Vec<String>> = cells.iter().zip(widths).map(|(cell, w)| wrap(cell, w - 2)).collect();
    let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1);
    let mut out = String::new();
    for line in 0..lines {
        out.push(sep);
        for (i, (cell, &w)) in wrapped.iter().zip(widths).enumerate() {
            let inner = w - 2;
            let text = cell.get(line).map_or("", String::as_str);
            if i == 2 {
                write!(out, " {text:>inner$} ").unwrap();
            } else {
                write!(out, " {text:<inner$} ").unwrap();
            }
            out.push(sep);
        }
        out.push('\n');
    }
    out
}

/// `text` in lines of at most `width` characters, broken at spaces; a word longer than a
/// line gets a line of its own, cut to `width − 1` characters and `…`, as `rich` (Keras'
/// table) does with its default `overflow="ellipsis"`: `(BatchNormalizatio…`.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        if word.chars().count() > width {
            let cut: String = word.chars().take(width.saturating_sub(1)).collect();
            lines.push(cut + "…");
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// `160305` → `160,305`.
pub(crate) fn group_thousands(n: usize) -> String {
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

/// Keras' `readable_memory_size`: divide by 1024 until below 1024, two decimals.
fn readable_size(bytes: usize) -> String {
    let mut size = bytes as f64;
    for unit in ["B", "KB", "MB", "GB", "TB"] {
        if size / 1024.0 < 1.0 {
            return format!("{size:.2} {unit}");
        }
        size /= 1024.0;
    }
    format!("{size:.2} PB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cells_wrap_at_spaces() {
        assert_eq!(wrap("average_pooling2d (AveragePooling2D)", 31), ["average_pooling2d", "(AveragePooling2D)"]);
        assert_eq!(wrap("dense (Dense)", 31), ["dense (Dense)"]);
        // Longer than a line: a line of its own, cut with an ellipsis (rich's default).
        assert_eq!(wrap("abcdef", 4), ["abc…"]);
        assert_eq!(
            wrap("batch_normalization (BatchNormalization)", 19),
            ["batch_normalization", "(BatchNormalizatio…"]
        );
        assert_eq!(wrap("x input_layer_1[0][0] y", 17), ["x", "input_layer_1[0]…", "y"]);
        assert_eq!(wrap("", 5), [""]);
    }

    #[test]
    fn numbers_format_like_keras() {
        assert_eq!(group_thousands(160305), "160,305");
        assert_eq!(group_thousands(17), "17");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(readable_size(160305 * 4), "626.19 KB");
        assert_eq!(readable_size(407050 * 4), "1.55 MB");
        assert_eq!(readable_size(0), "0.00 B");
    }
}
