//! The PyTorch peer of the workloads (`benches/peers/torch_workloads.py`), run in its own
//! process next to kiln's, in the same command.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use serde::Deserialize;

/// Where the peer script lives, relative to the workspace root.
const SCRIPT: &str = "benches/peers/torch_workloads.py";

/// What the peer prints for one workload.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
pub struct PeerResult {
    /// Workload name.
    pub name: String,
    /// Median seconds per timed epoch.
    pub seconds_per_epoch: f64,
    /// Every timed epoch.
    pub epoch_seconds: Vec<f64>,
    /// PyTorch's version.
    pub torch: String,
}

/// A Python interpreter that can import torch, and the script.
pub struct Peer {
    python: PathBuf,
    script: PathBuf,
    /// `torch.__version__`.
    pub version: String,
}

impl Peer {
    /// Finds the peer: `python` (default `$KILN_PYTHON`, else `python3`) must import torch.
    /// `Err` says why not and how to get it.
    pub fn find(python: Option<&Path>) -> anyhow::Result<Peer> {
        let python = python
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("KILN_PYTHON").filter(|p| !p.is_empty()).map(PathBuf::from))
            .unwrap_or_else(|| "python3".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(SCRIPT);
        anyhow::ensure!(script.is_file(), "the peer script {} is missing", script.display());
        let out = Command::new(&python)
            .args(["-c", "import numpy, torch; print(torch.__version__)"])
            .output()
            .with_context(|| format!("running {}", python.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "{} cannot import torch ({}); install it with `pip install torch numpy` \
             (or point --python / KILN_PYTHON at an interpreter that has it)",
            python.display(),
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("no message").trim()
        );
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(Peer { python, script, version })
    }

    /// Runs workload `name` in PyTorch on `threads` threads for `epochs` timed epochs, its
    /// multi-hot layer as `multi_hot` (`dense` or `embedding-bag`).
    pub fn run(&self, name: &str, threads: usize, epochs: usize, multi_hot: &str) -> anyhow::Result<PeerResult> {
        let mut command = Command::new(&self.python);
        command.arg(&self.script).args([
            name,
            "--threads",
            &threads.to_string(),
            "--epochs",
            &epochs.to_string(),
            "--multi-hot",
            multi_hot,
        ]);
        if name == "W1r" {
            // The same digits kiln's W1r trains on.
            command.arg("--mnist-dir").arg(super::workloads::real_digits_dir());
        }
        let out = command
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("starting the PyTorch {name} peer"))?;
        anyhow::ensure!(out.status.success(), "the PyTorch {name} peer failed ({})", out.status);
        let line = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(line.trim()).with_context(|| format!("reading the PyTorch {name} peer's result: {line}"))
    }
}

/// The CPU's model name (`lscpu`'s "Model name", else /proc/cpuinfo's), or "unknown".
pub fn cpu_model() -> String {
    let from_lscpu = Command::new("lscpu").output().ok().and_then(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("Model name:").map(|m| m.trim().to_string()))
    });
    from_lscpu
        .or_else(|| {
            std::fs::read_to_string("/proc/cpuinfo").ok()?.lines().find_map(|l| {
                l.strip_prefix("model name").and_then(|m| m.split(':').nth(1)).map(|m| m.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into())
}
