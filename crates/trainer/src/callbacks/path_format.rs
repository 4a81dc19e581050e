//! Python's `str.format` for checkpoint paths: Keras' `ModelCheckpoint` names its files
//! with `filepath.format(epoch=epoch + 1, **logs)` (keras/src/callbacks/model_checkpoint.py),
//! so `"m-{epoch:02d}-{val_loss:.2f}.keras"` gives `m-03-0.41.keras`.
//!
//! The format-spec mini-language is followed for what a path needs: fill and alignment,
//! sign, zero padding, width, precision and the types `d`, `f`/`F`, `e`/`E`, `g`/`G`, `%`
//! and none (an integer's digits, a float's `repr`). Grouping, `#`, `z`, conversions
//! (`!r`) and the other integer bases are refused by name rather than approximated.

use super::csv_logger::python_float;

/// A value a field can name: the epoch (an integer) or a log entry (a float).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Arg {
    /// A Python `int`.
    Int(i64),
    /// A Python `float`.
    Float(f64),
}

/// `template` with each `{name}` / `{name:spec}` replaced as Python's `str.format` would,
/// `{{` and `}}` standing for braces. An unknown name or a spec kiln does not compute is
/// an error saying which.
pub(crate) fn format_path(template: &str, lookup: impl Fn(&str) -> Option<Arg>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '}' => return Err("Single '}' encountered in format string".into()),
            '{' => {
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => field.push(c),
                        None => return Err("expected '}' before end of string".into()),
                    }
                }
                let (name, spec) = field.split_once(':').unwrap_or((&field, ""));
                if name.is_empty() || name.contains(['!', '.', '[', '{']) {
                    return Err(format!("field {{{field}}} is not supported: name a log entry or `epoch`"));
                }
                let arg = lookup(name).ok_or_else(|| format!("KeyError: '{name}' (no such log entry)"))?;
                out.push_str(&format_arg(arg, spec).map_err(|e| format!("{{{field}}}: {e}"))?);
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// A parsed format spec: `[[fill]align][sign][0][width][.precision][type]`.
struct Spec {
    fill: char,
    align: Option<char>,
    sign: char,
    width: usize,
    precision: Option<usize>,
    kind: Option<char>,
}

fn parse_spec(spec: &str) -> Result<Spec, String> {
    let c: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let (mut fill, mut align, mut fill_given) = (' ', None, false);
    if c.len() >= 2 && "<>=^".contains(c[1]) {
        (fill, align, i, fill_given) = (c[0], Some(c[1]), 2, true);
    } else if c.first().is_some_and(|ch| "<>=^".contains(*ch)) {
        (align, i) = (Some(c[0]), 1);
    }
    let mut sign = '-';
    if c.get(i).is_some_and(|ch| "+- ".contains(*ch)) {
        sign = c[i];
        i += 1;
    }
    if let Some(&ch @ ('z' | '#' | ',' | '_')) = c.get(i) {
        return Err(format!("the format option `{ch}` is not supported"));
    }
    if c.get(i) == Some(&'0') {
        // Python's `0` flag: fill with zeros unless a fill was given, after the sign
        // unless an alignment was given (`{:<05}` of 3 is `30000`).
        if !fill_given {
            fill = '0';
        }
        align = align.or(Some('='));
        i += 1;
    }
    let digits = |i: &mut usize| -> Option<usize> {
        let start = *i;
        while c.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
        (start < *i).then(|| c[start..*i].iter().collect::<String>().parse().ok()).flatten()
    };
    let width = digits(&mut i).unwrap_or(0);
    if let Some(&ch @ (',' | '_')) = c.get(i) {
        return Err(format!("the format option `{ch}` is not supported"));
    }
    let mut precision = None;
    if c.get(i) == Some(&'.') {
        i += 1;
        precision = Some(digits(&mut i).ok_or("Format specifier missing precision")?);
    }
    let kind = c.get(i).copied();
    if i + usize::from(kind.is_some()) != c.len() {
        return Err("Invalid format specifier".into());
    }
    Ok(Spec { fill, align, sign, width, precision, kind })
}

fn format_arg(arg: Arg, spec: &str) -> Result<String, String> {
    let s = parse_spec(spec)?;
    let (negative, body) = match (arg, s.kind) {
        (Arg::Int(v), None | Some('d')) => {
            if s.precision.is_some() {
                return Err("Precision not allowed in integer format specifier".into());
            }
            (v < 0, v.unsigned_abs().to_string())
        }
        (Arg::Float(_), Some('d')) => return Err("Unknown format code 'd' for object of type 'float'".into()),
        (Arg::Float(v), None) if s.precision.is_none() => (v.is_sign_negative() && !v.is_nan(), python_float(v.abs())),
        (_, None) => return Err("a precision without a type (`.3`) is not supported; use `.3g` or `.3f`".into()),
        (Arg::Int(v), Some(k)) => (v < 0, float_body((v as f64).abs(), k, s.precision)?),
        (Arg::Float(v), Some(k)) => (v.is_sign_negative() && !v.is_nan(), float_body(v.abs(), k, s.precision)?),
    };
    let sign = match (negative, s.sign) {
        (true, _) => "-",
        (false, '+') => "+",
        (false, ' ') => " ",
        _ => "",
    };
    let len = sign.chars().count() + body.chars().count();
    let pad = s.width.saturating_sub(len);
    let fill = |n: usize| std::iter::repeat_n(s.fill, n).collect::<String>();
    Ok(match s.align.unwrap_or('>') {
        '<' => format!("{sign}{body}{}", fill(pad)),
        '^' => format!("{}{sign}{body}{}", fill(pad / 2), fill(pad - pad / 2)),
        '=' => format!("{sign}{}{body}", fill(pad)),
        _ => format!("{}{sign}{body}", fill(pad)),
    })
}

/// The digits of `|x|` for a float presentation type.
fn float_body(x: f64, kind: char, precision: Option<usize>) -> Result<String, String> {
    let upper = kind.is_ascii_uppercase();
    if !x.is_finite() {
        let word = if x.is_nan() { "nan" } else { "inf" };
        let word = if kind == '%' { format!("{word}%") } else { word.to_string() };
        return Ok(if upper { word.to_uppercase() } else { word });
    }
    let p = precision.unwrap_or(6);
    let body = match kind.to_ascii_lowercase() {
        'f' => format!("{x:.p$}"),
        'e' => scientific(x, p),
        '%' => format!("{:.p$}%", x * 100.0),
        'g' => general(x, p.max(1)),
        other => return Err(format!("the format type `{other}` is not supported")),
    };
    Ok(if upper { body.to_uppercase() } else { body })
}

/// Python's `e`: `d.ddde±XX`, at least two exponent digits.
fn scientific(x: f64, p: usize) -> String {
    let s = format!("{x:.p$e}");
    let (mantissa, exp) = s.split_once('e').expect("Rust's {:e} has an exponent");
    let exp: i32 = exp.parse().expect("an integer exponent");
    format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.unsigned_abs())
}

/// Python's `g` at precision `p ≥ 1`: fixed when the rounded exponent is in `[−4, p)`,
/// scientific otherwise, trailing zeros (and a bare point) removed.
fn general(x: f64, p: usize) -> String {
    let rounded = format!("{x:.prec$e}", prec = p - 1);
    let exp: i32 = rounded.split_once('e').and_then(|(_, e)| e.parse().ok()).expect("an exponent");
    let trim = |s: String| if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
    if -4 <= exp && exp < p as i32 {
        trim(format!("{x:.prec$}", prec = (p as i32 - 1 - exp) as usize))
    } else {
        let s = scientific(x, p - 1);
        let (mantissa, e) = s.split_once('e').expect("an exponent");
        format!("{}e{e}", trim(mantissa.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(template: &str) -> Result<String, String> {
        format_path(template, |name| match name {
            "epoch" => Some(Arg::Int(3)),
            "neg" => Some(Arg::Int(-7)),
            "loss" => Some(Arg::Float(0.4137529134750366)),
            "big" => Some(Arg::Float(12345678.9)),
            "tiny" => Some(Arg::Float(1.5e-5)),
            "minus" => Some(Arg::Float(-0.125)),
            "nan" => Some(Arg::Float(f64::NAN)),
            _ => None,
        })
    }

    /// Every expected string is what Python 3.11's `str.format` printed for it.
    #[test]
    fn formats_as_python() {
        for (template, python) in [
            ("m-{epoch:02d}-{loss:.2f}.keras", "m-03-0.41.keras"),
            ("{epoch}|{epoch:03}|{epoch:>4}|{epoch:<4}|{epoch:^5}|{epoch:*^6d}", "3|003|   3|3   |  3  |**3***"),
            ("{neg:04d}|{neg:+d}|{epoch:+d}|{epoch: d}|{neg:=6}", "-007|-7|+3| 3|-    7"),
            ("{loss}|{big}|{tiny}|{minus}|{nan}", "0.4137529134750366|12345678.9|1.5e-05|-0.125|nan"),
            ("{loss:.4e}|{big:E}|{tiny:.1e}|{minus:+.3f}", "4.1375e-01|1.234568E+07|1.5e-05|-0.125"),
            (
                "{loss:g}|{big:g}|{tiny:g}|{loss:.2g}|{big:.10g}|{epoch:g}",
                "0.413753|1.23457e+07|1.5e-05|0.41|12345678.9|3",
            ),
            ("{loss:.1%}|{epoch:.2f}|{nan:f}|{nan:F}|{minus:08.3f}", "41.4%|3.00|nan|NAN|-000.125"),
            ("{{epoch}}-{epoch}", "{epoch}-3"),
            ("{epoch:<05}|{epoch:^05}|{neg:<05}|{epoch:*<05}", "30000|00300|-7000|3****"),
        ] {
            assert_eq!(fmt(template).as_deref(), Ok(python), "{template}");
        }
    }

    #[test]
    fn unknown_names_and_unsupported_specs_are_errors() {
        assert!(fmt("{val_loss:.2f}").unwrap_err().contains("val_loss"));
        assert!(fmt("{loss:d}").unwrap_err().contains("Unknown format code 'd'"));
        assert!(fmt("{loss:,.2f}").unwrap_err().contains("`,`"));
        assert!(fmt("{loss!r}").unwrap_err().contains("not supported"));
        assert!(fmt("{}").is_err() && fmt("a}b").is_err() && fmt("{epoch:.2d}").is_err());
        assert!(fmt("m{epoch").unwrap_err().contains("expected '}'"));
        assert!(fmt("{loss:.3}").unwrap_err().contains("precision without a type"));
    }
}
