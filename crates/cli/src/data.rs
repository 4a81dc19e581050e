//! `kiln data …` (also `cargo xtask data …`): thin wrappers over `kiln_datasets::inspect`.
//!
//! * `data inspect PATH` validates an IDX file, an IDX directory, an aclImdb archive or
//!   directory, a Keras `.npz` or a CSV table, and prints a JSON summary (kind, rows,
//!   shape, label counts or columns, sha256).
//! * `data vocab ARCHIVE --max-tokens N` prints the Keras `TextVectorization(max_tokens=N,
//!   output_mode="multi_hot")` vocabulary of the archive's train split, one token a line,
//!   index 0 (`[UNK]`) first.
//!
//! * `data keras-imdb FILE.npz [--num-words N] … --json OUT` writes what
//!   `keras.datasets.imdb.load_data(path=FILE, …)` returns, as JSON.
//!
//! Errors name the offending file (the library's messages start with the path).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

/// Prints the JSON summary of `path` on stdout.
pub fn inspect(path: &Path) -> anyhow::Result<()> {
    let summary = kiln_datasets::inspect::summarize(path)?;
    let text = serde_json::to_string_pretty(&summary)?;
    print_quietly(|out| writeln!(out, "{text}"))
}

/// Prints the vocabulary learned from `archive`'s train split, one token a line, index 0 first.
pub fn vocab(archive: &Path, max_tokens: usize) -> anyhow::Result<()> {
    let vocabulary = kiln_datasets::inspect::vocabulary(archive, max_tokens)?;
    print_quietly(|out| vocabulary.iter().try_for_each(|token| writeln!(out, "{token}")))
}

/// Writes to stdout; a closed pipe (`| head`) ends the output quietly instead of failing.
fn print_quietly(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}

/// Options of `cargo xtask data keras-imdb`: `keras.datasets.imdb.load_data`'s arguments.
#[derive(clap::Args, Debug)]
pub struct KerasImdbArgs {
    /// A Keras `imdb.npz` (or an archive in its layout).
    pub file: PathBuf,
    /// Keep the N most frequent words (default: all).
    #[arg(long)]
    pub num_words: Option<i64>,
    /// Words ranked below N become the OOV character.
    #[arg(long, default_value_t = 0)]
    pub skip_top: i64,
    /// Drop sequences of length ≥ N.
    #[arg(long)]
    pub maxlen: Option<usize>,
    /// Seed of the RandomState that shuffles train, then test (0 to 2³² − 1).
    #[arg(long, default_value_t = 113)]
    pub seed: u32,
    /// Start-of-sequence index, or `none`.
    #[arg(long, default_value = "1", value_parser = index_or_none)]
    pub start_char: MaybeIndex,
    /// Out-of-vocabulary index, or `none` (cut words are then dropped).
    #[arg(long, default_value = "2", value_parser = index_or_none)]
    pub oov_char: MaybeIndex,
    /// Offset added to every raw index, or `none`.
    #[arg(long, default_value = "3", value_parser = index_or_none)]
    pub index_from: MaybeIndex,
    /// Where to write `{"x_train": [[…]], "y_train": […], "x_test": [[…]], "y_test": […]}`.
    #[arg(long)]
    pub json: PathBuf,
}

/// An index argument that may be Python's `None` (a newtype: clap reads a bare `Option` as
/// "the flag may be absent").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaybeIndex(pub Option<i64>);

/// An integer, or `none` for Python's `None`.
fn index_or_none(text: &str) -> Result<MaybeIndex, String> {
    match text.trim() {
        t if t.eq_ignore_ascii_case("none") => Ok(MaybeIndex(None)),
        t => t.parse::<i64>().map(|v| MaybeIndex(Some(v))).map_err(|e| format!("not an integer or `none` ({e})")),
    }
}

/// Runs `load_data` and writes its result to `--json` (atomically).
pub fn keras_imdb(a: &KerasImdbArgs) -> anyhow::Result<()> {
    let args = kiln_datasets::ImdbArgs {
        num_words: a.num_words,
        skip_top: a.skip_top,
        maxlen: a.maxlen,
        seed: a.seed,
        start_char: a.start_char.0,
        oov_char: a.oov_char.0,
        index_from: a.index_from.0,
    };
    crate::out_path::check_output("--json", &a.json, &[&a.file], &[])?;
    let (train, test) = kiln_datasets::imdb_load_data(&a.file, &args)?;
    let text = format!(
        "{{\"x_train\": {}, \"y_train\": {}, \"x_test\": {}, \"y_test\": {}}}\n",
        serde_json::to_string(&train.x)?,
        serde_json::to_string(&train.y)?,
        serde_json::to_string(&test.x)?,
        serde_json::to_string(&test.y)?
    );
    kiln_fs::write_atomic(&a.json, text.as_bytes())?;
    eprintln!(
        "{}: {} train and {} test sequences written to {}",
        a.file.display(),
        train.x.len(),
        test.x.len(),
        a.json.display()
    );
    Ok(())
}
