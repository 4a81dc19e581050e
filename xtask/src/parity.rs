//! `cargo xtask parity FILE… [--rtol R]`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;

/// Largest trace file `parity` reads (the committed traces are under 200 KB each).
pub const MAX_TRACE_BYTES: u64 = 64 << 20;

/// Replays each trace; prints the largest relative error per file; true when all pass.
pub fn run(files: &[PathBuf], rtol: f64) -> anyhow::Result<bool> {
    let mut all_ok = true;
    for file in files {
        // Bounded, and FIFOs or devices refused before opening: `/dev/zero` or a pipe
        // would otherwise grow without end or block forever.
        let bytes = kiln_fs::read_regular(file, MAX_TRACE_BYTES).map_err(|e| anyhow::anyhow!("trace {e}"))?;
        let text = String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", file.display()))?;
        let trace: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
        let report = kiln_keras::replay(&trace, rtol).with_context(|| format!("replaying {}", file.display()))?;
        let ok = report.passed();
        all_ok &= ok;
        let mut out = String::new();
        writeln!(
            out,
            "{} {}: {} numbers, max relative error {:.3e} (rtol {rtol:e})",
            if ok { "PASS" } else { "FAIL" },
            file.display(),
            report.compared(),
            report.max_rel_err()
        )?;
        for c in &report.checks {
            writeln!(
                out,
                "    {:<26} {:>6} compared, {:>4} failed, max rel {:.3e}, max abs {:.3e}  worst: {}",
                c.what, c.compared, c.failed, c.max_rel_err, c.max_abs_err, c.worst
            )?;
        }
        for p in &report.problems {
            writeln!(out, "    problem: {p}")?;
        }
        // A closed pipe (`| head`) is not an error worth a panic.
        if let Err(e) = std::io::stdout().lock().write_all(out.as_bytes())
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(e.into());
        }
    }
    Ok(all_ok)
}
