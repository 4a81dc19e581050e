//! Python's JSON for non-finite floats: `json.dump` writes `NaN`, `Infinity` and
//! `-Infinity` (its default `allow_nan=True`), which a diverging run's trace holds and strict
//! JSON does not. They are read as the strings `"NaN"`, `"Infinity"`, `"-Infinity"`, and
//! [`number`] reads those back as floats.

use serde_json::Value;

/// Parses a trace's text, Python's non-finite tokens outside strings taken as strings.
pub fn parse_trace(text: &str) -> Result<Value, serde_json::Error> {
    serde_json::from_str(&quote_non_finite(text))
}

/// `text` with every bare `NaN`, `Infinity` and `-Infinity` (outside strings) quoted.
fn quote_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            (escaped, in_string) = match (escaped, c) {
                (true, _) => (false, true),
                (false, '\\') => (true, true),
                (false, '"') => (false, false),
                _ => (false, true),
            };
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["NaN", "Infinity", "-Infinity"].into_iter().find(|t| rest.starts_with(t)) {
            out.push('"');
            out.push_str(token);
            out.push('"');
            rest = &rest[token.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// A JSON number, or one of Python's non-finite floats as [`parse_trace`] keeps them.
pub(crate) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_non_finite_floats_parse_outside_strings_only() {
        let v = parse_trace(r#"{"a": [NaN, -Infinity, 1.5, Infinity], "s": "NaN \"Infinity\"", "b": -2}"#).unwrap();
        let a: Vec<f64> = v["a"].as_array().unwrap().iter().map(|x| number(x).unwrap()).collect();
        assert!(a[0].is_nan() && a[1] == f64::NEG_INFINITY && a[2] == 1.5 && a[3] == f64::INFINITY);
        assert_eq!(v["s"], "NaN \"Infinity\"");
        assert_eq!(number(&v["b"]), Some(-2.0));
        assert_eq!(number(&v["s"]), None);
    }
}
