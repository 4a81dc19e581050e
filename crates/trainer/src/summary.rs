//! `model.summary()`: Keras' table of layers, output shapes and parameter counts.

use std::fmt::Write;

use crate::Sequential;

/// Column widths of Keras' default summary (between the box-drawing separators).
const WIDTHS: [usize; 3] = [33, 24, 15];

impl Sequential {
    /// The Keras-style summary table (layer, output shape, parameters, totals).
    ///
    /// Output shapes (`(None, 26, 26, 32)`) and counts need the input shape: an unbuilt
    /// model shows `?`.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let shapes = self.layer_shapes();
        writeln!(s, "Model: \"{}\"", self.name).unwrap();
        s.push_str(&rule('┏', '━', '┳', '┓'));
        s.push_str(&row(&["Layer (type)", "Output Shape", "Param #"], '┃'));
        s.push_str(&rule('┡', '━', '╇', '┩'));
        for (i, l) in self.layers.iter().enumerate() {
            let name = format!("{} ({})", l.name(), l.class_name());
            let shape = shapes.map_or_else(|| "?".into(), |w| w[i].to_string());
            let params = if shapes.is_some() { group_thousands(l.param_count()) } else { "0 (unbuilt)".into() };
            s.push_str(&row(&[&name, &shape, &params], '│'));
            if i + 1 < self.layers.len() {
                s.push_str(&rule('├', '─', '┼', '┤'));
            }
        }
        s.push_str(&rule('└', '─', '┴', '┘'));
        let (total, trainable) = (self.param_count(), self.trainable_param_count());
        let size = |n: usize| readable_size(n * std::mem::size_of::<f32>());
        writeln!(s, " Total params: {} ({})", group_thousands(total), size(total)).unwrap();
        writeln!(s, " Trainable params: {} ({})", group_thousands(trainable), size(trainable)).unwrap();
        let frozen = total - trainable;
        writeln!(s, " Non-trainable params: {} ({})", group_thousands(frozen), size(frozen)).unwrap();
        s
    }
}

fn rule(left: char, fill: char, mid: char, right: char) -> String {
    let parts: Vec<String> = WIDTHS.iter().map(|w| fill.to_string().repeat(*w)).collect();
    format!("{left}{}{right}\n", parts.join(&mid.to_string()))
}

/// One table row; a cell wider than its column wraps at spaces onto further lines, as
/// Keras' (rich) table does (`average_pooling2d` / `(AveragePooling2D)`).
fn row(cells: &[&str; 3], sep: char) -> String {
    let wrapped: Vec<Vec<String>> = cells.iter().zip(WIDTHS).map(|(cell, w)| wrap(cell, w - 2)).collect();
    let lines = wrapped.iter().map(Vec::len).max().unwrap_or(1);
    let mut out = String::new();
    for line in 0..lines {
        out.push(sep);
        for (i, (cell, w)) in wrapped.iter().zip(WIDTHS).enumerate() {
            let inner = w - 2;
            let text = cell.get(line).map_or("", String::as_str);
            // The parameter column is right-aligned, the others left-aligned (Keras).
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

/// `text` in lines of at most `width` characters, broken at spaces (a word longer than a
/// line is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let mut word = word.to_string();
        if !current.is_empty() && current.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        while word.chars().count() > width {
            let rest = word.split_off(word.char_indices().nth(width).map_or(word.len(), |(i, _)| i));
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
            }
            lines.push(word);
            word = rest;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&word);
    }
    lines.push(current);
    lines
}

/// `160305` → `160,305`.
pub(crate) fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
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
        assert_eq!(wrap("abcdef", 4), ["abcd", "ef"]);
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
