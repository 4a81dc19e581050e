//! Registers a TrueType font for plotters' pure-Rust text renderer (no fontconfig needed).

use std::path::PathBuf;
use std::sync::OnceLock;

use anyhow::anyhow;
use plotters::style::{FontStyle, register_font};

/// Where Debian's `fonts-dejavu-core` and other common packages put a sans-serif font.
const CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
];

/// Registers `sans-serif` once: `$KILN_FONT` if set, else the first common system font found.
pub fn ensure() -> anyhow::Result<()> {
    static DONE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DONE.get_or_init(register).as_ref().map(|_| ()).map_err(|e| anyhow!("{e}"))
}

/// Tries each candidate; the error lists them and names the package to install.
fn register() -> Result<PathBuf, String> {
    let paths: Vec<PathBuf> = std::env::var_os("KILN_FONT")
        .filter(|p| !p.is_empty())
        .map(|p| vec![PathBuf::from(p)])
        .unwrap_or_else(|| CANDIDATES.iter().map(PathBuf::from).collect());
    for path in &paths {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        // plotters keeps fonts for the whole process; one leaked file per process is fine.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        if register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
            return Ok(path.clone());
        }
    }
    Err(format!(
        "no usable TrueType font for the figures (tried {}); install Debian's fonts-dejavu-core or set KILN_FONT=/path/to/font.ttf",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    ))
}
