//! `--merge DIR…`: checks the shards' manifests and every history they list, then — only
//! once everything checks — writes the histories, the merged manifest, the figures and the
//! report into `--out`, as the single run would.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail, ensure};

use super::experiments::{self, Experiment};
use super::shard::{self, Manifest};
use super::{ReproduceArgs, identity, outputs, runner};
use crate::out_path::resolve_deep;

/// Largest history file read (a 10,000-epoch history is about 1 MB).
const MAX_HISTORY_BYTES: u64 = 16 << 20;

/// A checked history: the run, the file's exact bytes (copied byte for byte), its
/// experiment (index in the selection) and where it was read.
struct Checked {
    run: runner::Run,
    bytes: Vec<u8>,
    group: usize,
    path: PathBuf,
}

/// Merges `args.merge` into `args.out`.
pub(super) fn merge(args: &ReproduceArgs) -> anyhow::Result<bool> {
    let start = Instant::now();
    let shards =
        args.merge.iter().map(|d| Manifest::read(d).map(|m| (d.clone(), m))).collect::<anyhow::Result<Vec<_>>>()?;
    let merged = shard::check(&shards)?;
    refuse_shard_out(&args.out, &args.merge)?;
    let selected = merged
        .experiments
        .iter()
        .map(|n| experiments::find(n).with_context(|| format!("manifest names unknown experiment `{n}`")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let shuffle = match merged.shuffle.as_str() {
        "Once" => runner::ShuffleMode::Once,
        "EachEpoch" => runner::ShuffleMode::EachEpoch,
        other => bail!("manifest shuffle mode `{other}` is unknown"),
    };
    let checked = histories(&shards, &selected, merged.epochs)?;
    crate::plot::fonts::ensure()?;
    outputs::check(&args.out, None, &selected)?;

    // Everything checked: only now is anything written.
    let history_dir = args.out.join("history");
    // The whole folder is replaced, so no history of an earlier merge stays beside these.
    kiln_fs::replace_dir_atomic(&history_dir, |staging| -> anyhow::Result<()> {
        for c in checked.iter().flatten() {
            let path = staging.join(shard::history_file(selected[c.group].name, c.run.seed));
            std::fs::write(&path, &c.bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    })?;
    merged.write(&args.out)?;
    eprintln!("reproduce: merged {} shards ({} runs) into {}", shards.len(), merged.runs.len(), args.out.display());
    let runs: Vec<Vec<runner::Run>> = checked.into_iter().map(|rs| rs.into_iter().map(|c| c.run).collect()).collect();
    super::finish(&args.out, &selected, &runs, &merged, shuffle, start)?;
    Ok(true)
}

/// Refuses an `--out` that is one of the shard folders, lies inside one or holds one
/// (symlinks and `..` resolved), or that holds the manifest of a training run: merging
/// there would replace or mix into that run's manifest and histories. A previous merge's
/// output (its manifest says `merged`) may be replaced.
pub(super) fn refuse_shard_out(out: &Path, inputs: &[PathBuf]) -> anyhow::Result<()> {
    let out_real = resolve_deep(out);
    for dir in inputs {
        let dir_real = resolve_deep(dir);
        let relation = if dir_real == out_real {
            "is also a"
        } else if out_real.starts_with(&dir_real) {
            "is inside a"
        } else if dir_real.starts_with(&out_real) {
            "holds a"
        } else {
            continue;
        };
        bail!(
            "--out {} {relation} --merge folder ({}); merging there would overwrite or mix into that shard. \
             Give an --out apart from every shard folder",
            out.display(),
            dir.display()
        );
    }
    let manifest = out.join(shard::MANIFEST);
    if std::fs::symlink_metadata(&manifest).is_ok() && !Manifest::read(out).is_ok_and(|m| m.merged) {
        bail!(
            "--out {}: holds {} of a training run (a shard's or a single run's folder), which merging would \
             replace; give an empty folder or a previous merge's output",
            out.display(),
            manifest.display()
        );
    }
    Ok(())
}

/// Reads every history the manifests list, checked against them: the file's SHA-256, no
/// empty or ragged lists, the epochs the settings give, the same keys for every seed, and
/// no history file a manifest does not list (a stale one from another run). Returns them
/// per experiment of `selected`, seeds in order.
fn histories(
    shards: &[(PathBuf, Manifest)],
    selected: &[&'static Experiment],
    epochs: Option<u64>,
) -> anyhow::Result<Vec<Vec<Checked>>> {
    let mut out: Vec<Vec<Checked>> = selected.iter().map(|_| Vec::new()).collect();
    for (dir, m) in shards {
        let history_dir = dir.join("history");
        refuse_unlisted(&history_dir, m)?;
        for r in &m.runs {
            let path = history_dir.join(r.file_name());
            let bytes = kiln_fs::read_regular(&path, MAX_HISTORY_BYTES).map_err(|e| anyhow::anyhow!("{e}"))?;
            ensure!(
                identity::sha256_hex(&bytes) == r.sha256,
                "{}: is not the history {} recorded (its SHA-256 differs): written by another run, or edited since",
                path.display(),
                dir.join(shard::MANIFEST).display()
            );
            let text = std::str::from_utf8(&bytes).with_context(|| format!("{}: not UTF-8", path.display()))?;
            let history =
                kiln_trainer::History::from_json(text).with_context(|| format!("{}: not a history", path.display()))?;
            let group = selected.iter().position(|x| x.name == r.experiment).context("checked by shard::check")?;
            let expected = epochs.map_or(selected[group].epochs, |e| e as usize);
            check_history(&path, &history, expected, selected[group].history_keys())?;
            let run = runner::Run { seed: r.seed, history, seconds: r.seconds };
            out[group].push(Checked { run, bytes, group, path });
        }
    }
    for runs in &mut out {
        runs.sort_by_key(|c| c.run.seed);
        if let Some((first, rest)) = runs.split_first() {
            let keys: Vec<&str> = first.run.history.keys().collect();
            for c in rest {
                ensure!(
                    c.run.history.keys().eq(keys.iter().copied()),
                    "{} and {}: the seeds of one experiment log different keys ({} vs {})",
                    first.path.display(),
                    c.path.display(),
                    keys.join(", "),
                    c.run.history.keys().collect::<Vec<_>>().join(", ")
                );
            }
        }
    }
    Ok(out)
}

/// Errors on a history file in `history_dir` that `m` does not list.
fn refuse_unlisted(history_dir: &Path, m: &Manifest) -> anyhow::Result<()> {
    let listed: BTreeSet<String> = m.runs.iter().map(shard::RunRecord::file_name).collect();
    let entries = match std::fs::read_dir(history_dir) {
        Ok(entries) => entries,
        // No folder: each listed file is then reported missing by name.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("{}: {e}", history_dir.display()),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", history_dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden files are the atomic writer's temporaries, not histories.
        if !name.starts_with('.') && !listed.contains(&name) {
            bail!(
                "{}: not a history this shard's manifest lists (a stale file from an earlier run with other \
                 settings?); remove it, or re-run the shard into an empty folder",
                entry.path().display()
            );
        }
    }
    Ok(())
}

/// Errors unless every list of `history` has exactly `epochs` values and the keys every
/// run logs are there: an empty, ragged or truncated history is refused by its file.
fn check_history(path: &Path, history: &kiln_trainer::History, epochs: usize, keys: &[&str]) -> anyhow::Result<()> {
    for &key in keys {
        ensure!(history.get(key).is_some(), "{}: has no `{key}` list", path.display());
    }
    for key in history.keys() {
        let n = history.get(key).map_or(0, <[f64]>::len);
        ensure!(
            n == epochs,
            "{}: `{key}` has {n} values, but the manifest's settings train {epochs} epochs \
             (an empty, ragged or stale history)",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // --- round 3: an --out apart from every shard (issue 23 #11) ---
    use super::*;

    #[test]
    fn an_out_equal_to_inside_or_holding_a_shard_is_refused_through_links_and_dots() {
        let d = std::env::temp_dir().join(format!("kiln-merge-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let shards = [d.join("runs/s0"), d.join("runs/s1")];
        for s in &shards {
            std::fs::create_dir_all(s.join("history")).unwrap();
        }
        std::os::unix::fs::symlink(&shards[0], d.join("link")).unwrap();
        let cases = [
            (d.join("runs/s0/history"), "is inside a --merge folder"),
            (d.join("runs/s1/new/deeper"), "is inside a --merge folder"),
            (d.join("runs/s1/../s0"), "is also a --merge folder"),
            (d.join("link"), "is also a --merge folder"),
            (d.join("link/history"), "is inside a --merge folder"),
            (d.join("runs"), "holds a --merge folder"),
            (d.join("gone/../runs"), "holds a --merge folder"),
        ];
        for (out, expect) in cases {
            let err = refuse_shard_out(&out, &shards).unwrap_err().to_string();
            assert!(err.contains(expect) && err.contains(&out.display().to_string()), "{}: {err}", out.display());
        }
        refuse_shard_out(&d.join("merged"), &shards).expect("a sibling folder is fine");
        refuse_shard_out(&d.join("runs-merged"), &shards).expect("a name sharing a prefix is not inside");
        let _ = std::fs::remove_dir_all(d);
    }
}
