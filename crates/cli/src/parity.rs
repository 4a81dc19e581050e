//! `kiln parity [FILE…] [--rtol R]`: replays Keras training traces and compares every
//! number. With no file, every shipped trace under `tests/fixtures/keras` (run from the
//! repository root) at the tolerance `tests/fixtures/keras/tolerances.json` documents for it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Largest trace file `parity` reads (the committed traces are under 200 KB each).
pub const MAX_TRACE_BYTES: u64 = 64 << 20;

/// Where the shipped traces live, from the repository root.
pub const FIXTURES: &str = "tests/fixtures/keras";

/// The manifest of tolerances beside the traces.
pub const TOLERANCES: &str = "tolerances.json";

/// `parity`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ParityArgs {
    /// Trace files (the schema of tests/fixtures/keras/keras_trace_*.json); none: every
    /// shipped trace under ./tests/fixtures/keras.
    pub files: Vec<PathBuf>,
    /// Relative tolerance: |kiln − keras| ≤ 1e-6 + rtol·|keras| (default: the trace's
    /// tolerance in tests/fixtures/keras/tolerances.json, else 1e-5).
    #[arg(long, value_parser = rtol_arg)]
    pub rtol: Option<f64>,
}

/// `--rtol`: a finite number in [0, 1] (a larger tolerance would compare nothing).
fn rtol_arg(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is not in [0, 1]")),
        Err(e) => Err(format!("not a number ({e})")),
    }
}

/// `tolerances.json`: the default and the traces that need another tolerance, with why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// The tolerance of every trace not listed.
    pub default_rtol: f64,
    /// By file name.
    pub traces: BTreeMap<String, Tolerance>,
}

/// One trace's documented tolerance.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Its relative tolerance.
    pub rtol: f64,
    /// Why it differs from the default.
    pub why: String,
}

impl Tolerances {
    /// Reads `dir/tolerances.json`.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(TOLERANCES);
        let bytes = kiln_fs::read_regular(&path, 1 << 20).map_err(|e| anyhow::anyhow!("tolerances {e}"))?;
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not a tolerance manifest", path.display()))
    }

    /// The tolerance of the trace at `file` (by file name).
    pub fn of(&self, file: &Path) -> f64 {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.traces.get(&name).map_or(self.default_rtol, |t| t.rtol)
    }
}

/// Every `keras_trace_*.json` under `dir` (and its folders), sorted.
pub fn shipped_traces(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if path.is_dir() {
                folders.push(path);
            } else if name.starts_with("keras_trace_") && name.ends_with(".json") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Runs `parity` as its arguments say; true when every trace passes.
pub fn run_args(args: &ParityArgs) -> anyhow::Result<bool> {
    let fixtures = Path::new(FIXTURES);
    let files = if args.files.is_empty() {
        if !fixtures.is_dir() {
            bail!(
                "no trace files given, and no {FIXTURES} here: run `kiln parity` from the kiln repository root, \
                 or give trace files"
            );
        }
        shipped_traces(fixtures)?
    } else {
        args.files.clone()
    };
    let tolerances = if fixtures.join(TOLERANCES).is_file() { Some(Tolerances::read(fixtures)?) } else { None };
    let mut passed = 0;
    for file in &files {
        let rtol = args.rtol.or_else(|| tolerances.as_ref().map(|t| t.of(file))).unwrap_or(1e-5);
        passed += usize::from(run(std::slice::from_ref(file), rtol)?);
    }
    if args.files.is_empty() {
        println!("{passed} of {} shipped traces passed at their documented tolerances", files.len());
    }
    Ok(passed == files.len())
}

/// Replays each trace; prints the largest relative error per file; true when all pass.
pub fn run(files: &[PathBuf], rtol: f64) -> anyhow::Result<bool> {
    let mut all_ok = true;
    for file in files {
        // Bounded, and FIFOs or devices refused before opening: `/dev/zero` or a pipe
        // would otherwise grow without end or block forever.
        let bytes = kiln_fs::read_regular(file, MAX_TRACE_BYTES).map_err(|e| anyhow::anyhow!("trace {e}"))?;
        let text = String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8", file.display()))?;
        // Python's `json.dump` writes NaN and ±Infinity (a diverging run's numbers).
        let trace = kiln_keras::parse_trace(&text).with_context(|| format!("{}: not JSON", file.display()))?;
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
