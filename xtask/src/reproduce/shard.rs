//! Splitting `reproduce` across a scheduler's array tasks, and merging the pieces.
//!
//! `--shard I/N` runs the I-th (0-based) of N disjoint slices of the experiment × seed
//! runs; `--shard slurm` takes I and N from a Slurm job array, `--shard k8s=N` I from a
//! Kubernetes Indexed Job. Slices are balanced by expected cost (longest-processing-time
//! first: each run, most expensive first, goes to the slice with the least work so far),
//! computed from the same data by every task, so they agree without talking.
//!
//! Each task writes its histories and a [`Manifest`]; `--merge DIR…` checks that the
//! manifests agree and cover every run exactly once, then draws the figures and writes the
//! report from the histories, exactly as a single run would.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use serde::{Deserialize, Serialize};

/// `--shard`: which slice to run, or where to read it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardSpec {
    /// `I/N`.
    Given(Shard),
    /// `slurm`: `SLURM_ARRAY_TASK_ID` (minus `SLURM_ARRAY_TASK_MIN`, default 0) of
    /// `SLURM_ARRAY_TASK_COUNT`.
    Slurm,
    /// `k8s=N`: `JOB_COMPLETION_INDEX` of N.
    K8s(usize),
}

/// Slice `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// 0-based slice number.
    pub index: usize,
    /// Number of slices.
    pub count: usize,
}

/// Most slices `--shard` accepts.
pub const MAX_SHARDS: usize = 10_000;

impl Shard {
    /// The whole run as one slice.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    fn new(index: usize, count: usize, from: &str) -> Result<Self, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!("{from}: {count} shards; use 1 to {MAX_SHARDS}"));
        }
        if index >= count {
            return Err(format!(
                "{from}: shard index {index} is not below the shard count {count} (indices are 0-based)"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// Parses `--shard`: `I/N`, `slurm` or `k8s=N`.
pub fn parse_shard(text: &str) -> Result<ShardSpec, String> {
    let t = text.trim();
    let int = |s: &str, what: &str| s.trim().parse::<usize>().map_err(|e| format!("{what} `{s}` is not a count ({e})"));
    if t.eq_ignore_ascii_case("slurm") {
        return Ok(ShardSpec::Slurm);
    }
    if let Some(n) = t.strip_prefix("k8s=") {
        let n = int(n, "k8s task count")?;
        Shard::new(0, n, "--shard k8s=N")?;
        return Ok(ShardSpec::K8s(n));
    }
    match t.split_once('/') {
        Some((i, n)) => {
            Ok(ShardSpec::Given(Shard::new(int(i, "shard index")?, int(n, "shard count")?, "--shard I/N")?))
        }
        None => Err(format!("`{text}` is not I/N (e.g. 0/4), `slurm` or `k8s=N`")),
    }
}

impl ShardSpec {
    /// The slice, reading the scheduler's environment where needed.
    pub fn resolve(self) -> anyhow::Result<Shard> {
        self.resolve_with(&|k| std::env::var(k).ok())
    }

    /// [`resolve`](ShardSpec::resolve) with `env` for the environment (tests).
    pub fn resolve_with(self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Shard> {
        let var = |k: &str| -> anyhow::Result<usize> {
            let v = env(k).with_context(|| format!("{k} is not set (is this a job array task?)"))?;
            v.trim().parse::<usize>().map_err(|e| anyhow::anyhow!("{k}={v:?} is not a non-negative integer ({e})"))
        };
        let shard = match self {
            ShardSpec::Given(s) => Ok(s),
            ShardSpec::Slurm => {
                let min = if env("SLURM_ARRAY_TASK_MIN").is_some() { var("SLURM_ARRAY_TASK_MIN")? } else { 0 };
                let id = var("SLURM_ARRAY_TASK_ID")?;
                let index = id
                    .checked_sub(min)
                    .with_context(|| format!("SLURM_ARRAY_TASK_ID {id} < SLURM_ARRAY_TASK_MIN {min}"))?;
                Shard::new(index, var("SLURM_ARRAY_TASK_COUNT")?, "--shard slurm")
            }
            ShardSpec::K8s(n) => Shard::new(var("JOB_COMPLETION_INDEX")?, n, "--shard k8s=N"),
        };
        shard.map_err(|e| anyhow::anyhow!(e))
    }
}

/// Splits `jobs` (each with its expected cost, most expensive first) into `count` slices:
/// each job goes to the slice with the least cost so far (the lowest index on ties).
pub fn assign<J: Copy>(jobs: &[(J, u128)], count: usize) -> Vec<Vec<J>> {
    let mut slices: Vec<(u128, Vec<J>)> = (0..count).map(|_| (0, Vec::new())).collect();
    for &(job, cost) in jobs {
        let lightest = (0..count).min_by_key(|&i| (slices[i].0, i)).expect("at least one slice");
        slices[lightest].0 += cost.max(1);
        slices[lightest].1.push(job);
    }
    slices.into_iter().map(|(_, j)| j).collect()
}

/// One finished run, as a manifest records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Experiment name.
    pub experiment: String,
    /// Seed.
    pub seed: u64,
    /// Wall time of its `fit`, in seconds.
    pub seconds: f64,
    /// SHA-256 of its history file, so `--merge` takes no other file in its place.
    pub sha256: String,
}

impl RunRecord {
    /// The run's history file name, `<experiment>_seed<k>.json`.
    pub fn file_name(&self) -> String {
        history_file(&self.experiment, self.seed)
    }
}

/// `<experiment>_seed<k>.json`: the history file of one run.
pub fn history_file(experiment: &str, seed: u64) -> String {
    format!("{experiment}_seed{seed}.json")
}

/// What a (sharded) run did, written as `manifest.json` beside its histories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The kiln version that trained.
    pub kiln_version: String,
    /// The selected experiments, in report order.
    pub experiments: Vec<String>,
    /// Seeds `0..seeds` per experiment.
    pub seeds: u64,
    /// `--epochs`, if given.
    pub epochs: Option<u64>,
    /// `--shuffle`.
    pub shuffle: String,
    /// The report's data lines (origin, rows, representation), which every shard must share.
    pub data: Vec<String>,
    /// The report's model descriptions, one per experiment.
    pub models: Vec<String>,
    /// `--data` as given (informative: shards on different machines may name different
    /// folders; `data_sha256` decides whether they trained on the same data).
    pub data_source: String,
    /// `--imdb`.
    pub imdb: String,
    /// SHA-256 of every input and label the runs trained on.
    pub data_sha256: String,
    /// `--regularizer`, when an experiment uses it.
    pub regularizer: Option<String>,
    /// `--config` (as JSON), when `--regularizer` is used.
    pub config: Option<serde_json::Value>,
    /// Every plugin library loaded: name, version, SHA-256 of the file.
    pub plugins: Vec<super::identity::PluginRecord>,
    /// This slice.
    pub shard: Shard,
    /// Worker threads of this task.
    pub jobs: usize,
    /// Seconds from the task's start to the end of its training.
    pub train_wall: f64,
    /// The runs this slice trained.
    pub runs: Vec<RunRecord>,
    /// Runs that failed (`experiment seed k: error`), reported by `--merge` when runs are missing.
    #[serde(default)]
    pub failed: Vec<String>,
    /// True for the output of `--merge` (which a later `--merge --out` may replace; a
    /// training run's folder it refuses).
    #[serde(default)]
    pub merged: bool,
    /// The common-sense baseline's validation accuracy of each classification experiment
    /// (from the data, which every shard shares).
    #[serde(default)]
    pub baselines: std::collections::BTreeMap<String, f64>,
}

/// The manifest fields that change a run's numbers, with what they are in words: shards
/// that disagree on any of them are not slices of one run.
const IDENTITY: &[(&str, &str)] = &[
    ("kiln_version", "the kiln version"),
    ("experiments", "the experiments"),
    ("seeds", "the seed count"),
    ("epochs", "--epochs"),
    ("shuffle", "--shuffle"),
    ("imdb", "--imdb"),
    ("data_sha256", "the training data's content"),
    ("data", "the data's origin"),
    ("models", "the models"),
    ("regularizer", "--regularizer"),
    ("config", "--config"),
    ("plugins", "the plugin libraries (name, version, SHA-256)"),
];

/// A JSON value for an error message, cut to 200 characters.
fn shown(v: Option<&serde_json::Value>) -> String {
    let text = v.map_or_else(|| "(missing)".to_string(), serde_json::Value::to_string);
    if text.chars().count() > 200 { format!("{}…", text.chars().take(200).collect::<String>()) } else { text }
}

/// The file name of a manifest.
pub const MANIFEST: &str = "manifest.json";

impl Manifest {
    /// Reads `dir/manifest.json`.
    pub fn read(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST);
        let bytes = kiln_fs::read_regular(&path, 64 << 20).map_err(|e| anyhow::anyhow!("{e}"))?;
        let rerun = "not a reproduce manifest of this kiln (re-run the shard with it)";
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON; {rerun}", path.display()))?;
        if !value.is_object() {
            bail!("{}: is not a JSON object; {rerun}", path.display());
        }
        // The key at fault by its path (`runs[3].seconds`), not serde's "expected struct".
        serde_path_to_error::deserialize(value).map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            if at == "." {
                anyhow::anyhow!("{}: {inner}; {rerun}", path.display())
            } else {
                anyhow::anyhow!("{}: key `{at}`: {inner}; {rerun}", path.display())
            }
        })
    }

    /// Writes `dir/manifest.json` atomically.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        super::outputs::write_file(&dir.join(MANIFEST), text.as_bytes())?;
        Ok(())
    }
}

/// Longest duration a manifest may record, in seconds (about 31 years): more is corrupt,
/// and summing such values could overflow to infinity in the report.
const MAX_SECONDS: f64 = 1e9;

/// Whether `s` is a plausible duration in seconds: finite, not negative, below [`MAX_SECONDS`].
fn is_duration(s: f64) -> bool {
    s.is_finite() && (0.0..MAX_SECONDS).contains(&s)
}

/// Errors unless `m`'s counts are within what `reproduce` accepts (a hand-edited or
/// corrupt manifest could claim 2⁶³ seeds or shard 7 of 2).
fn check_bounds(dir: &Path, m: &Manifest) -> anyhow::Result<()> {
    let file = dir.join(MANIFEST);
    let file = file.display();
    let (index, count) = (m.shard.index, m.shard.count);
    ensure!((1..=MAX_SHARDS).contains(&count), "{file}: {count} shards; a run has 1 to {MAX_SHARDS}");
    ensure!(index < count, "{file}: shard index {index} is not below the shard count {count} (indices are 0-based)");
    ensure!(
        (1..=super::MAX_SEEDS).contains(&m.seeds),
        "{file}: {} seeds; reproduce runs 1 to {}",
        m.seeds,
        super::MAX_SEEDS
    );
    if let Some(e) = m.epochs {
        ensure!((1..=super::MAX_EPOCHS).contains(&e), "{file}: {e} epochs; reproduce runs 1 to {}", super::MAX_EPOCHS);
    }
    ensure!(!m.experiments.is_empty(), "{file}: names no experiment");
    let mut names = BTreeSet::new();
    for e in &m.experiments {
        ensure!(super::experiments::find(e).is_some(), "{file}: unknown experiment `{e}`");
        ensure!(names.insert(e), "{file}: experiment `{e}` is listed twice");
    }
    ensure!(
        m.models.len() == m.experiments.len(),
        "{file}: {} model descriptions for {} experiments",
        m.models.len(),
        m.experiments.len()
    );
    ensure!(
        is_duration(m.train_wall),
        "{file}: train_wall {:?} is not a duration (0 to {MAX_SECONDS:e} seconds)",
        m.train_wall
    );
    for r in &m.runs {
        ensure!(
            is_duration(r.seconds),
            "{file}: {} seed {} took {:?} seconds? (a run's time is 0 to {MAX_SECONDS:e} seconds)",
            r.experiment,
            r.seed,
            r.seconds
        );
    }
    Ok(())
}

/// Checks that `shards` (directory, manifest) are the slices of one run, each exactly once,
/// covering every experiment × seed exactly once; returns the merged manifest.
pub fn check(shards: &[(std::path::PathBuf, Manifest)]) -> anyhow::Result<Manifest> {
    let Some((first_dir, first)) = shards.first() else { bail!("--merge needs at least one directory") };
    let count = first.shard.count;
    let first_json = serde_json::to_value(first)?;
    let mut indices = BTreeSet::new();
    for (dir, m) in shards {
        check_bounds(dir, m)?;
        let json = serde_json::to_value(m)?;
        for (field, what) in IDENTITY {
            let (a, b) = (first_json.get(*field), json.get(*field));
            ensure!(
                a == b,
                "{} and {} disagree on `{field}` ({what}): {} vs {}; they are not shards of one run",
                first_dir.display(),
                dir.display(),
                shown(a),
                shown(b)
            );
        }
        ensure!(
            m.shard.count == count,
            "{} and {} disagree on `shard.count` (the shard count): {count} vs {}; they are not shards of one run",
            first_dir.display(),
            dir.display(),
            m.shard.count
        );
        ensure!(indices.insert(m.shard.index), "{}: shard {}/{count} is given twice", dir.display(), m.shard.index);
    }
    let missing: Vec<String> = (0..count).filter(|i| !indices.contains(i)).map(|i| format!("{i}/{count}")).collect();
    ensure!(missing.is_empty(), "missing shards: {} (give every task's output directory)", missing.join(", "));
    let mut seen = BTreeSet::new();
    let mut runs = Vec::new();
    for (dir, m) in shards {
        for r in &m.runs {
            ensure!(
                first.experiments.contains(&r.experiment),
                "{}: run of unknown experiment {}",
                dir.display(),
                r.experiment
            );
            ensure!(
                r.seed < first.seeds,
                "{}: {} seed {} is outside 0..{}",
                dir.display(),
                r.experiment,
                r.seed,
                first.seeds
            );
            ensure!(
                seen.insert((r.experiment.clone(), r.seed)),
                "{} seed {} was trained by two shards",
                r.experiment,
                r.seed
            );
            runs.push(r.clone());
        }
    }
    // Bounded above, but a product of counts is checked anyway: it must never wrap.
    let expected = (first.experiments.len() as u64)
        .checked_mul(first.seeds)
        .with_context(|| format!("{} experiments × {} seeds overflows", first.experiments.len(), first.seeds))?;
    let failed: Vec<&String> = shards.iter().flat_map(|(_, m)| &m.failed).collect();
    ensure!(
        seen.len() as u64 == expected,
        "the shards hold {} of the {expected} runs ({})",
        seen.len(),
        if failed.is_empty() {
            "a task failed or is still running?".to_string()
        } else {
            format!("failed: {}", failed.iter().map(|f| f.as_str()).collect::<Vec<_>>().join("; "))
        }
    );
    let train_wall = shards.iter().map(|(_, m)| m.train_wall).fold(0.0, f64::max);
    Ok(Manifest { shard: Shard::WHOLE, runs, train_wall, failed: Vec::new(), merged: true, ..first.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_arguments_parse_and_resolve() {
        assert_eq!(parse_shard("1/3").unwrap(), ShardSpec::Given(Shard { index: 1, count: 3 }));
        assert!(parse_shard("3/3").unwrap_err().contains("not below"));
        assert!(parse_shard("0/0").is_err() && parse_shard("x").is_err() && parse_shard("k8s=0").is_err());
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let slurm = env(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
        assert_eq!(ShardSpec::Slurm.resolve_with(&slurm).unwrap(), Shard { index: 2, count: 3 });
        let from_one =
            env(&[("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "3")]);
        assert_eq!(ShardSpec::Slurm.resolve_with(&from_one).unwrap(), Shard { index: 2, count: 3 });
        let err = ShardSpec::Slurm.resolve_with(&env(&[])).unwrap_err().to_string();
        assert!(err.contains("SLURM_ARRAY_TASK_ID is not set"), "{err}");
        let k8s = env(&[("JOB_COMPLETION_INDEX", "4")]);
        assert_eq!(ShardSpec::K8s(5).resolve_with(&k8s).unwrap(), Shard { index: 4, count: 5 });
        assert!(ShardSpec::K8s(4).resolve_with(&k8s).is_err());
    }

    #[test]
    fn slices_are_disjoint_complete_and_balanced() {
        let jobs: Vec<(usize, u128)> = [90, 50, 40, 30, 20, 10, 10].into_iter().enumerate().collect();
        let slices = assign(&jobs, 3);
        let mut all: Vec<usize> = slices.concat();
        all.sort_unstable();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
        let loads: Vec<u128> = slices.iter().map(|s| s.iter().map(|&j| jobs[j].1).sum()).collect();
        assert_eq!(loads, [90, 80, 80]);
        assert_eq!(assign(&jobs, 1), vec![(0..7).collect::<Vec<_>>()]);
        assert!(assign(&jobs, 10)[9].is_empty());
    }

    // --- round 3: merges that mean what they say (issue 23 #6, #13) ---

    /// Shard `index` of `count` of a 2-experiment × 2-seed run, its runs dealt round-robin.
    fn manifest(index: usize, count: usize) -> Manifest {
        let experiments = vec!["mnist_logreg".to_string(), "imdb_smaller".to_string()];
        let all: Vec<(String, u64)> = experiments.iter().flat_map(|e| (0..2).map(move |s| (e.clone(), s))).collect();
        Manifest {
            kiln_version: "0.0.0".into(),
            experiments: experiments.clone(),
            seeds: 2,
            epochs: Some(2),
            shuffle: "EachEpoch".into(),
            data: vec!["- mnist".into()],
            models: vec!["a".into(), "b".into()],
            data_source: "bundled".into(),
            imdb: "Auto".into(),
            data_sha256: "00".into(),
            regularizer: Some("pkg>L3".into()),
            config: Some(serde_json::json!({"l3": 1e-4})),
            plugins: vec![super::super::identity::PluginRecord {
                name: "pkg".into(),
                version: "0.1.0".into(),
                sha256: "ab".into(),
            }],
            shard: Shard { index, count },
            jobs: 1,
            train_wall: 1.0,
            baselines: Default::default(),
            runs: all
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % count == index)
                .map(|(_, (experiment, seed))| RunRecord { experiment, seed, seconds: 0.5, sha256: "cd".into() })
                .collect(),
            failed: Vec::new(),
            merged: false,
        }
    }

    fn merge_err(shards: Vec<Manifest>) -> String {
        let dirs: Vec<_> =
            shards.into_iter().enumerate().map(|(i, m)| (std::path::PathBuf::from(format!("s{i}")), m)).collect();
        check(&dirs).unwrap_err().to_string()
    }

    #[test]
    fn shards_trained_differently_are_refused_naming_the_field_and_both_folders() {
        let ok = check(&[("s0".into(), manifest(0, 2)), ("s1".into(), manifest(1, 2))]).unwrap();
        assert!(ok.merged && ok.runs.len() == 4 && ok.shard == Shard::WHOLE);
        type Edit = (&'static str, fn(&mut Manifest));
        let edits: [Edit; 7] = [
            ("config", |m| m.config = Some(serde_json::json!({"l3": 0.5}))),
            ("plugins", |m| m.plugins[0].sha256 = "ef".into()),
            ("plugins", |m| m.plugins[0].version = "0.2.0".into()),
            ("regularizer", |m| m.regularizer = Some("pkg>L4".into())),
            ("data_sha256", |m| m.data_sha256 = "01".into()),
            ("epochs", |m| m.epochs = Some(3)),
            ("shuffle", |m| m.shuffle = "Once".into()),
        ];
        for (field, edit) in edits {
            let mut other = manifest(1, 2);
            edit(&mut other);
            let err = merge_err(vec![manifest(0, 2), other]);
            assert!(err.contains(&format!("`{field}`")) && err.contains("s0") && err.contains("s1"), "{field}: {err}");
        }
        let err = merge_err(vec![manifest(0, 2), Manifest { imdb: "Text".into(), ..manifest(1, 2) }]);
        assert!(err.contains("`imdb`") && err.contains("\"Auto\" vs \"Text\""), "{err}");
    }

    #[test]
    fn absurd_counts_and_bogus_indices_are_refused_without_wrapping() {
        // 2 experiments × (2⁶³ + 1) seeds wrapped to 2 in u64: two runs "covered" it.
        let mut m = manifest(0, 1);
        m.seeds = (1 << 63) + 1;
        assert!(merge_err(vec![m]).contains("seeds; reproduce runs 1 to"));
        let err = merge_err(vec![Manifest { shard: Shard { index: 7, count: 2 }, ..manifest(0, 2) }, manifest(1, 2)]);
        assert!(err.contains("s0/manifest.json: shard index 7 is not below the shard count 2"), "{err}");
        let err = merge_err(vec![Manifest { shard: Shard { index: 0, count: usize::MAX }, ..manifest(0, 1) }]);
        assert!(err.contains("shards; a run has 1 to"), "{err}");
        let err = merge_err(vec![Manifest { epochs: Some(u64::MAX), ..manifest(0, 1) }]);
        assert!(err.contains("epochs; reproduce runs 1 to"), "{err}");
        let mut m = manifest(0, 1);
        m.experiments.push("mnist_logreg".into());
        m.models.push("c".into());
        assert!(merge_err(vec![m]).contains("listed twice"));
        let mut m = manifest(0, 1);
        m.runs[0].seconds = f64::NAN;
        assert!(merge_err(vec![m]).contains("seconds?"));
        let mut m = manifest(0, 1);
        m.runs.pop();
        m.failed.push("imdb_smaller seed 1: plugin exploded".into());
        let err = merge_err(vec![m]);
        assert!(err.contains("3 of the 4 runs") && err.contains("plugin exploded"), "{err}");
    }

    // --- round 3: manifest errors name the file and the key; durations bounded (issue 23 #13) ---

    #[test]
    fn manifest_parse_errors_name_the_file_and_the_key() {
        let d = std::env::temp_dir().join(format!("kiln-manifest-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let good = serde_json::to_value(manifest(0, 1)).unwrap();
        let file = d.join(MANIFEST).display().to_string();
        let read_err = |v: &serde_json::Value| {
            std::fs::write(d.join(MANIFEST), serde_json::to_vec(v).unwrap()).unwrap();
            format!("{:#}", Manifest::read(&d).unwrap_err())
        };
        let mut v = good.clone();
        v.as_object_mut().unwrap().remove("runs");
        let err = read_err(&v);
        assert!(err.contains(&file) && err.contains("missing field `runs`"), "{err}");
        let mut v = good.clone();
        v["runs"][1]["seconds"] = "NaN".into();
        let err = read_err(&v);
        assert!(err.contains(&file) && err.contains("key `runs[1].seconds`"), "{err}");
        let err = read_err(&serde_json::json!([]));
        assert!(err.contains(&file) && err.contains("is not a JSON object"), "{err}");
        assert_eq!(
            Manifest::read(&{
                std::fs::write(d.join(MANIFEST), serde_json::to_vec(&good).unwrap()).unwrap();
                d.clone()
            })
            .unwrap(),
            manifest(0, 1)
        );
        let _ = std::fs::remove_dir_all(d);
    }

    #[test]
    fn absurd_durations_are_refused() {
        for bad in [1.7e308, 1e9, -5.0, f64::NAN, f64::INFINITY] {
            let mut m = manifest(0, 1);
            m.runs[0].seconds = bad;
            assert!(merge_err(vec![m]).contains("seconds?"), "{bad}");
            let err = merge_err(vec![Manifest { train_wall: bad, ..manifest(0, 1) }]);
            assert!(err.contains("train_wall"), "{bad}: {err}");
        }
        let mut m = manifest(0, 1);
        m.runs[0].seconds = 86_400.0 * 365.0;
        check(&[("s0".into(), m)]).expect("a year is a plausible run");
    }
}
