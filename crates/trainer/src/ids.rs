//! Token ids meet the first layer: only a layer that reads ids (Embedding) takes them,
//! and every id must be one of its `0..input_dim`.

use kiln_layers::Layer;

use crate::{FeaturesRef, TrainError};

/// Refuses, before anything trains, ids fed to a layer that reads values, and ids (or, for
/// an Embedding fed floats, values) outside `0..input_dim`, naming row, column and value.
pub(crate) fn check_ids(first: &dyn Layer, x: FeaturesRef<'_>, data: &str) -> Result<(), TrainError> {
    let limit = first.input_ids_limit();
    match (x, limit) {
        (FeaturesRef::Ids(_), None) => Err(TrainError::Input(format!(
            "{data}: token ids feed a layer that reads ids (an Embedding), not `{}` ({})",
            first.name(),
            first.class_name()
        ))),
        (FeaturesRef::Ids(m), Some(n)) => match m.first_at_least(u32::try_from(n).unwrap_or(u32::MAX)) {
            Some((row, col, id)) => Err(TrainError::Input(format!(
                "{data}: row {row}, column {col}: token id {id} is not below `{}`'s input_dim {n}",
                first.name()
            ))),
            None => Ok(()),
        },
        (FeaturesRef::Dense(m), Some(n)) => {
            // Keras casts to int32; a fraction or an out-of-range value is refused rather
            // than truncated into some other token.
            let cols = m.cols().max(1);
            match m.as_slice().iter().position(|&v| !(v.fract() == 0.0 && v >= 0.0 && v < n as f32)) {
                Some(k) => Err(TrainError::Input(format!(
                    "{data}: row {}, column {}: {} is not a token id in 0..{n} for `{}`",
                    k / cols,
                    k % cols,
                    m.as_slice()[k],
                    first.name()
                ))),
                None => Ok(()),
            }
        }
        (
            FeaturesRef::Bytes { .. } | FeaturesRef::Sparse(_) | FeaturesRef::Windows(_) | FeaturesRef::Multi(_),
            Some(_),
        ) => Err(TrainError::Input(format!(
            "{data}: `{}` reads token ids; pass them as ids (Features::Ids) or whole numbers",
            first.name()
        ))),
        _ => Ok(()),
    }
}

/// Whether `layer` only moves values (Flatten, Reshape): token ids pass through it
/// unchanged, so an Embedding may read it when it reads a model input (as in Keras).
pub(crate) fn moves_values_only(layer: &dyn Layer) -> bool {
    matches!(layer.class_name(), "Flatten" | "Reshape")
}

/// The layer that computes what `sources` (one layer's inputs) bring, passing over layers
/// that only move values: `None` when they come from a model input.
pub(crate) fn computing_source(
    layers: &[Box<dyn Layer>],
    wiring: &[Vec<crate::Source>],
    sources: &[crate::Source],
) -> Option<usize> {
    let mut source = *sources.first()?;
    loop {
        match source {
            crate::Source::Input(_) => return None,
            crate::Source::Layer(j) if moves_values_only(layers[j].as_ref()) => source = *wiring[j].first()?,
            crate::Source::Layer(j) => return Some(j),
        }
    }
}

/// The id-reading layers (Embeddings) that read layer `i`'s output through layers that
/// only move values, `i` itself one of those; their ids are the model input's values.
pub(crate) fn readers_through(layers: &[Box<dyn Layer>], wiring: &[Vec<crate::Source>], i: usize) -> Vec<usize> {
    let mut found = Vec::new();
    for (r, sources) in wiring.iter().enumerate() {
        if sources.first() != Some(&crate::Source::Layer(i)) {
            continue;
        }
        if layers[r].input_ids_limit().is_some() {
            found.push(r);
        } else if moves_values_only(layers[r].as_ref()) {
            found.extend(readers_through(layers, wiring, r));
        }
    }
    found
}
