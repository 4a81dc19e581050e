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

/// Largest font file read: real TrueType fonts are a few MB (CJK ones under 50 MB).
pub const MAX_FONT_BYTES: u64 = 64 << 20;

/// Registers `sans-serif` once: `$KILN_FONT` if set, else the first common system font found.
pub fn ensure() -> anyhow::Result<()> {
    static DONE: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DONE.get_or_init(register).as_ref().map(|_| ()).map_err(|e| anyhow!("{e}"))
}

/// `$KILN_FONT` when set (it must work: the user asked for it), else each candidate; the
/// error lists them and names the package to install.
fn register() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("KILN_FONT").filter(|p| !p.is_empty()).map(PathBuf::from) {
        return register_file(&path, MAX_FONT_BYTES).map(|()| path).map_err(|e| format!("KILN_FONT: {e}"));
    }
    for path in CANDIDATES.iter().map(PathBuf::from) {
        if register_file(&path, MAX_FONT_BYTES).is_ok() {
            return Ok(path);
        }
    }
    Err(format!(
        "no usable TrueType font for the figures (tried {}); install Debian's fonts-dejavu-core or set KILN_FONT=/path/to/font.ttf",
        CANDIDATES.join(", ")
    ))
}

/// Reads `path` as a regular file of at most `max_bytes` (a FIFO would block, `/dev/zero`
/// never ends) and registers it as `sans-serif`; the error names the path.
fn register_file(path: &std::path::Path, max_bytes: u64) -> Result<(), String> {
    let bytes = kiln_fs::read_regular(path, max_bytes).map_err(|e| e.to_string())?;
    // plotters keeps fonts for the whole process; one leaked file per process is fine.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{}: not a TrueType font plotters can use", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn special_and_oversized_font_files_are_refused_without_reading_them() {
        // Issue 23 #15: `/dev/zero` was read without bound, a FIFO blocked forever.
        let err = register_file(std::path::Path::new("/dev/zero"), MAX_FONT_BYTES).unwrap_err();
        assert!(err.contains("/dev/zero") && err.contains("character device"), "{err}");
        let dir = std::env::temp_dir().join(format!("kiln-font-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("font.ttf");
        if std::process::Command::new("mkfifo").arg(&fifo).status().is_ok_and(|s| s.success()) {
            let err = register_file(&fifo, MAX_FONT_BYTES).unwrap_err();
            assert!(err.contains("FIFO") && err.contains("font.ttf"), "{err}");
        }
        let big = dir.join("big.ttf");
        std::fs::write(&big, [0u8; 100]).unwrap();
        let err = register_file(&big, 10).unwrap_err();
        assert!(err.contains("big.ttf") && err.contains("more than the 10"), "{err}");
        let err = register_file(&big, 1000).unwrap_err();
        assert!(err.contains("not a TrueType font"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
