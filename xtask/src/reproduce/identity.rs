//! What identifies a run's numbers beyond the experiment table: the exact data, the loaded
//! plugin libraries and the `--config` they were given. Recorded in the manifest, so
//! `--merge` can refuse shards trained differently.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::data::{Data, Inputs};

/// A loaded plugin library, as a manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// The plugin crate's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of the library file (a rebuild with other code changes it, not the version).
    pub sha256: String,
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 of the regular file `path`, read in a stream (plugin libraries can be large).
pub fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let mut file = kiln_fs::open_regular(path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(hex(&hasher.finalize()))
}

/// Every plugin library loaded in this process (by `--plugin` or `KILN_PLUGIN_PATH`),
/// sorted by name and version.
pub fn plugins() -> anyhow::Result<Vec<PluginRecord>> {
    let mut out = kiln_plugin::PluginRegistry::global()
        .list()
        .into_iter()
        .map(|p| {
            let sha256 = file_sha256(&p.path).map_err(|e| e.context(format!("hashing plugin {}", p.name)))?;
            Ok(PluginRecord { name: p.name, version: p.version, sha256 })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    out.sort_by(|a, b| (&a.name, &a.version, &a.sha256).cmp(&(&b.name, &b.version, &b.sha256)));
    Ok(out)
}

/// `--config` as JSON (so `{"l3": 1e-4}` and `{ "l3": 0.0001 }` are one config).
pub fn config(text: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| anyhow::anyhow!("--config is not JSON ({e})"))
}

/// SHA-256 over every input and label the runs train on (data sets, then variants):
/// shards that loaded different files (or the same folder holding other data) differ.
pub fn data_sha256(data: &Data) -> String {
    let mut h = Sha256::new();
    let sets = [("mnist", data.mnist.as_ref()), ("imdb", data.imdb.as_ref())];
    for (name, inputs) in sets.into_iter().filter_map(|(n, i)| Some((n.to_string(), i?))) {
        feed(&mut h, &name, inputs);
    }
    for (variant, inputs) in &data.variants {
        feed(&mut h, &format!("{variant:?}"), inputs);
    }
    hex(&h.finalize())
}

/// Hashes one data set: its name, shape, features and labels (lengths framed, so no two
/// different sets hash alike by concatenation).
fn feed(h: &mut Sha256, name: &str, inputs: &Inputs) {
    put(h, name.as_bytes());
    let f = inputs.features.as_ref();
    put(h, &(f.len() as u64).to_le_bytes());
    put(h, &(f.width() as u64).to_le_bytes());
    match &inputs.features {
        kiln_trainer::Features::Dense(m) => put_floats(h, m.as_slice()),
        kiln_trainer::Features::Bytes { values, divisor } => {
            put(h, values.as_slice());
            put(h, &divisor.to_le_bytes());
        }
        kiln_trainer::Features::Sparse(s) => {
            for r in 0..s.rows() {
                let (idx, val) = s.row(r);
                h.update((idx.len() as u64).to_le_bytes());
                for i in idx {
                    h.update(i.to_le_bytes());
                }
                put_floats(h, val);
            }
        }
        kiln_trainer::Features::Ids(m) => m.as_slice().iter().for_each(|id| h.update(id.to_le_bytes())),
        kiln_trainer::Features::Windows(w) => put_floats(h, w.series().as_slice()),
    }
    put_floats(h, inputs.labels.as_slice());
}

/// Feeds `bytes`, length first.
fn put(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// Feeds `values` as little-endian bytes, length first, through a small buffer (no copy
/// of a whole matrix: the noise-channel variants are 60 MB).
fn put_floats(h: &mut Sha256, values: &[f32]) {
    h.update((values.len() as u64).to_le_bytes());
    let mut buf = [0u8; 4096];
    for chunk in values.chunks(buf.len() / 4) {
        for (b, v) in buf.chunks_exact_mut(4).zip(chunk) {
            b.copy_from_slice(&v.to_le_bytes());
        }
        h.update(&buf[..chunk.len() * 4]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_compare_by_value_and_data_hashes_by_content() {
        assert_eq!(config(r#"{"l3": 1e-4, "a": 1}"#).unwrap(), config(r#"{ "a": 1, "l3": 0.0001 }"#).unwrap());
        assert_ne!(config(r#"{"l3": 1e-4}"#).unwrap(), config(r#"{"l3": 0.5}"#).unwrap());
        assert!(config("{l3").unwrap_err().to_string().contains("--config"));
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(data_sha256(&Data::default()), data_sha256(&Data::default()));
    }
}
