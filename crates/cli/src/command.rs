//! The commands and their arguments, shared by the `kiln` binary and `cargo xtask`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{data, models, parity};

/// kiln: Keras models in, predictions and ONNX out, data files checked, Keras traces replayed.
#[derive(Parser)]
#[command(name = "kiln", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `kiln` subcommands.
#[derive(Subcommand)]
pub enum Command {
    /// Replay Keras training traces and compare every number with Keras'.
    Parity(parity::ParityArgs),
    /// Inspect data files and archives.
    Data {
        /// Which data command.
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Keras interop.
    Keras {
        /// Which Keras command.
        #[command(subcommand)]
        command: KerasCommand,
    },
    /// Print (or write) a saved model's predictions for rows given as JSON.
    Predict(models::PredictArgs),
    /// Write a saved model as an ONNX file.
    ExportOnnx(models::ExportOnnxArgs),
}

/// `keras …`.
#[derive(Subcommand)]
pub enum KerasCommand {
    /// Import a .keras archive (config and HDF5 weights) into a kiln model directory.
    Import(models::ImportArgs),
}

/// `data …`.
#[derive(Subcommand)]
pub enum DataCommand {
    /// Validate a file, directory or archive and print a JSON summary.
    Inspect {
        /// IDX file (.gz or not), IDX directory, aclImdb archive or directory, Keras'
        /// imdb.npz, or a CSV table.
        path: PathBuf,
    },
    /// Print the TextVectorization vocabulary of an aclImdb archive's train split.
    Vocab {
        /// aclImdb archive (.tar.gz) or directory.
        archive: PathBuf,
        /// Vocabulary size, `[UNK]` included.
        #[arg(long, default_value_t = 10_000)]
        max_tokens: usize,
    },
    /// Write what `keras.datasets.imdb.load_data(path=FILE, …)` returns, as JSON.
    KerasImdb(data::KerasImdbArgs),
}

/// Runs one command; `Ok(false)` is a failed check (a trace out of tolerance).
pub fn run(command: Command) -> anyhow::Result<bool> {
    match command {
        Command::Parity(args) => parity::run_args(&args),
        Command::Data { command: DataCommand::Inspect { path } } => data::inspect(&path).map(|()| true),
        Command::Data { command: DataCommand::Vocab { archive, max_tokens } } => {
            data::vocab(&archive, max_tokens).map(|()| true)
        }
        Command::Data { command: DataCommand::KerasImdb(args) } => data::keras_imdb(&args).map(|()| true),
        Command::Keras { command: KerasCommand::Import(args) } => models::keras_import(&args),
        Command::Predict(args) => models::predict(&args),
        Command::ExportOnnx(args) => models::export_onnx(&args),
    }
}
