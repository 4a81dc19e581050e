//! A streaming first pass over a model config's JSON: it counts the layers and estimates
//! what the parsed `serde_json::Value` tree would cost, so a small (compressed) config that
//! would expand ~25× in memory is refused before the tree is built.

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Most layers a model config may list. Keras sets no limit, but real models have
/// hundreds; 200,000 `Dropout`s in a 0.5 MB archive are an attack on memory.
pub const MAX_LAYERS: usize = 10_000;

/// Most heap the parsed JSON tree of a config may take (estimated before parsing).
pub(crate) const MAX_TREE_BYTES: usize = 48 << 20;

/// Heap of one `serde_json` object's B-tree node (11 keys and values, parent, lengths):
/// even a one-key object costs a whole node, which is what makes `{"rate":0.1}` 50× its
/// text.
const NODE_BYTES: usize = 640;

/// What the first pass found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Length of the longest `layers` list at the top level or in the top `config`.
    pub layers: usize,
    /// JSON objects in the whole document.
    pub objects: usize,
    /// Estimated heap of the parsed tree, in bytes.
    pub tree_bytes: usize,
}

/// Scans `text` without building it. Errors are serde_json's own (syntax, depth).
pub(crate) fn scan(text: &str) -> Result<Shape, serde_json::Error> {
    let mut shape = Shape::default();
    let mut de = serde_json::Deserializer::from_str(text);
    Walk { shape: &mut shape, depth: 0, layers_list: false }.deserialize(&mut de)?;
    de.end()?;
    Ok(shape)
}

/// One value of the document; `depth` counts enclosing objects, `layers_list` says the
/// value sits under a `layers` key where the model's layers are (top or top `config`).
struct Walk<'s> {
    shape: &'s mut Shape,
    depth: usize,
    layers_list: bool,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Walk<'_> {
    fn add(&mut self, bytes: usize) {
        self.shape.tree_bytes = self.shape.tree_bytes.saturating_add(bytes);
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(mut self, s: &str) -> Result<(), E> {
        self.add(s.len());
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0usize;
        while seq.next_element_seed(Walk { shape: &mut *self.shape, depth: self.depth, layers_list: false })?.is_some()
        {
            n += 1;
        }
        // A `Value` slot per element, and the Vec's doubling slack.
        self.add(n.saturating_mul(64));
        if self.layers_list {
            self.shape.layers = self.shape.layers.max(n);
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut n = 0usize;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            self.add(key.len());
            // The layers are `layers` of the document, or of its `config` (depth 0 or 1).
            let layers_list = key == "layers" && self.depth <= 1;
            map.next_value_seed(Walk { shape: &mut *self.shape, depth: self.depth + 1, layers_list })?;
            n += 1;
        }
        self.shape.objects += 1;
        // B-tree nodes split half full: about one node per 5.5 entries, at least one.
        if n > 0 {
            self.add(NODE_BYTES.saturating_mul(1 + n / 5));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_model_layers_only() {
        let doc = r#"{"class_name": "Sequential", "config": {"layers": [1, 2, 3]},
            "compile_config": {"x": {"layers": [1, 2, 3, 4, 5, 6, 7]}}}"#;
        let s = scan(doc).unwrap();
        assert_eq!((s.layers, s.objects), (3, 4));
        assert_eq!(scan(r#"{"layers": [{}, {}]}"#).unwrap().layers, 2);
        assert!(scan("[1, 2").is_err());
        assert!(scan("{} x").is_err());
    }

    #[test]
    fn the_estimate_is_at_least_what_serde_json_allocates_per_small_object() {
        // 10,000 one-key objects: serde_json allocates a B-tree node for each.
        let text = format!("[{}]", vec![r#"{"rate":0.1}"#; 10_000].join(","));
        let s = scan(&text).unwrap();
        assert!(s.tree_bytes >= 10_000 * 600, "{s:?}");
    }
}
