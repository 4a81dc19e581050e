//! `cargo xtask data …`: thin wrappers over `kiln_datasets::inspect`.
//!
//! * `data inspect PATH` validates an IDX file, an IDX directory, an aclImdb archive or
//!   directory, and prints a JSON summary (kind, rows, shape, label counts, sha256).
//! * `data vocab ARCHIVE --max-tokens N` prints the Keras `TextVectorization(max_tokens=N,
//!   output_mode="multi_hot")` vocabulary of the archive's train split, one token a line,
//!   index 0 (`[UNK]`) first.
//!
//! Errors name the offending file (the library's messages start with the path).

use std::io::{BufWriter, Write};
use std::path::Path;

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
