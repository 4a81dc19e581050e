//! A JSON value with its path, so every error names the field it is about.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::KerasError;

/// A value of a Keras configuration and where it sits (`config.layers[2].config`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    pub value: &'a Value,
    pub path: &'a str,
}

impl<'a> At<'a> {
    /// The root of a document.
    pub fn root(value: &'a Value) -> Self {
        Self { value, path: "" }
    }

    /// The path of a child key, as text.
    pub fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    /// The child `key`, when present and not null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.value.get(key).filter(|v| !v.is_null())
    }

    /// An error about this value.
    pub fn error(&self, message: impl Into<String>) -> KerasError {
        KerasError::config(if self.path.is_empty() { "(top level)" } else { self.path }, message)
    }

    /// An error about the child `key`.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> KerasError {
        KerasError::config(self.child_path(key), message)
    }

    /// This value deserialized as `T`; serde's errors carry the offending field's path.
    pub fn typed<T: DeserializeOwned>(&self) -> Result<T, KerasError> {
        serde_path_to_error::deserialize(self.value).map_err(|e| {
            let inner = e.path().to_string();
            let at = match (self.path.is_empty(), inner == ".") {
                (_, true) => self.path.to_string(),
                (true, false) => inner,
                (false, false) => format!("{}.{inner}", self.path),
            };
            KerasError::config(if at.is_empty() { "(top level)".into() } else { at }, e.into_inner().to_string())
        })
    }

    /// The boolean `key`, `default` when absent or null (an error naming it if it is
    /// something else).
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, KerasError> {
        self.get(key).map_or(Ok(default), |v| v.as_bool().ok_or_else(|| self.error_at(key, "must be true or false")))
    }

    /// The optional number `key` (an error naming it if it is something else).
    pub fn number(&self, key: &str) -> Result<Option<f64>, KerasError> {
        self.get(key)
            .map(|v| {
                v.as_f64().ok_or_else(|| self.error_at(key, format!("must be a number, got {}", kiln_fs::excerpt(v))))
            })
            .transpose()
    }

    /// The optional non-negative integer `key`.
    pub fn count(&self, key: &str) -> Result<Option<usize>, KerasError> {
        self.get(key)
            .map(|v| {
                v.as_u64()
                    .map(|n| n as usize)
                    .ok_or_else(|| self.error_at(key, format!("must be an integer ≥ 0, got {}", kiln_fs::excerpt(v))))
            })
            .transpose()
    }

    /// The optional string `key`.
    pub fn string(&self, key: &str) -> Result<Option<String>, KerasError> {
        self.get(key)
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.error_at(key, format!("must be a string, got {}", kiln_fs::excerpt(v))))
            })
            .transpose()
    }

    /// The `class_name` of a serialized Keras object, or the value itself when it is a
    /// bare identifier string (`"relu"`, `"l2"`).
    pub fn class_name(&self) -> Option<&'a str> {
        self.value
            .as_str()
            .or_else(|| self.function_name())
            .or_else(|| self.value.get("class_name").and_then(Value::as_str))
    }

    /// The name of a Python function Keras serialized (`{"module": "builtins", "class_name":
    /// "function", "config": "binary_crossentropy"}`: `compile(loss=keras.losses.binary_crossentropy)`).
    pub fn function_name(&self) -> Option<&'a str> {
        let is_function = self.value.get("class_name").and_then(Value::as_str) == Some("function");
        self.value.get("config").and_then(Value::as_str).filter(|_| is_function)
    }

    /// The `config` of a serialized Keras object, or the value itself when it has none.
    pub fn inner(&self) -> Value {
        match self.value.get("config") {
            Some(c) if self.value.get("class_name").is_some() => c.clone(),
            _ => self.value.clone(),
        }
    }
}

/// Whether a value means "this option is off" (Keras' defaults for the options kiln
/// does not implement): null, false, 0, an empty list or object.
pub(crate) fn is_off(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(_) => false,
    }
}

/// Refuses every key of `object` that is not in `known` (or `ignored`) and is set to
/// something other than "off": an option kiln does not implement must not be dropped
/// silently.
pub(crate) fn refuse_unknown(at: At<'_>, what: &str, known: &[&str], ignored: &[&str]) -> Result<(), KerasError> {
    let Some(map) = at.value.as_object() else { return Ok(()) };
    for (k, v) in map {
        if known.contains(&k.as_str()) || ignored.contains(&k.as_str()) || is_off(v) {
            continue;
        }
        return Err(at.error_at(
            k,
            format!("{what} option `{}` = {} is not supported by kiln", kiln_fs::excerpt(k), kiln_fs::excerpt(v)),
        ));
    }
    Ok(())
}

/// A float32 dtype policy (`"float32"` or `{"class_name": "DTypePolicy", "config":
/// {"name": "float32"}}`), or nothing; anything else is refused.
pub(crate) fn check_dtype(at: At<'_>) -> Result<(), KerasError> {
    let Some(v) = at.get("dtype") else { return Ok(()) };
    let name = v.as_str().or_else(|| v.get("config").and_then(|c| c.get("name")).and_then(Value::as_str));
    match name {
        Some("float32") => Ok(()),
        Some(other) => {
            Err(at.error_at("dtype", format!("dtype policy `{other}` is not supported (kiln computes in float32)")))
        }
        // A quantized policy (`QuantizedDTypePolicy`, int8 weights) has no float name.
        None => match v.get("class_name").and_then(Value::as_str) {
            Some(class) => Err(at.error_at(
                "dtype",
                format!("dtype policy `{class}` is not supported (kiln computes in float32, unquantized)"),
            )),
            None => Err(at.error_at("dtype", format!("unreadable dtype policy {}", kiln_fs::excerpt(v)))),
        },
    }
}
