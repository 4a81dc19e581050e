//! `cargo xtask parity FILE… [--rtol R]`.

use std::path::PathBuf;

use anyhow::Context;

/// Replays each trace; prints the largest relative error per file; true when all pass.
pub fn run(files: &[PathBuf], rtol: f64) -> anyhow::Result<bool> {
    let mut all_ok = true;
    for file in files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let trace: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
        let report = kiln_trainer::keras::replay(&trace, rtol).with_context(|| format!("replaying {}", file.display()))?;
        let ok = report.passed();
        all_ok &= ok;
        println!(
            "{} {}: {} numbers, max relative error {:.3e} (rtol {rtol:e})",
            if ok { "PASS" } else { "FAIL" },
            file.display(),
            report.compared(),
            report.max_rel_err()
        );
        for c in &report.checks {
            println!(
                "    {:<26} {:>6} compared, {:>4} failed, max rel {:.3e}, max abs {:.3e}  worst: {}",
                c.what, c.compared, c.failed, c.max_rel_err, c.max_abs_err, c.worst
            );
        }
        for p in &report.problems {
            println!("    problem: {p}");
        }
    }
    Ok(all_ok)
}
