//! `cargo xtask …`: kiln's developer and reproduction commands (the library is
//! `xtask`; this binary parses the command line and dispatches).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use xtask::{bench, data, models, new_plugin, parity, reproduce};

/// kiln's task runner.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay Keras training traces and compare every number with Keras'.
    Parity {
        /// Trace files (the schema of tests/fixtures/keras/keras_trace_*.json).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Relative tolerance: |kiln − keras| ≤ 1e-6 + rtol·|keras|.
        #[arg(long, default_value_t = 1e-5, value_parser = rtol_arg)]
        rtol: f64,
    },
    /// Retrain every experiment of the chapter and redraw its figures and report.
    Reproduce(reproduce::ReproduceArgs),
    /// Scaffold a plugin crate under plugins/NAME.
    NewPlugin(new_plugin::NewPluginArgs),
    /// Inspect data files and archives.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Time training workloads (seconds per epoch) against the same-run GEMM baseline.
    Bench(bench::BenchArgs),
    /// Keras interop.
    Keras {
        #[command(subcommand)]
        command: KerasCommand,
    },
    /// Print (or write) a saved model's predictions for rows given as JSON.
    Predict(models::PredictArgs),
    /// Write a saved model as an ONNX file.
    ExportOnnx(models::ExportOnnxArgs),
}

#[derive(Subcommand)]
enum KerasCommand {
    /// Import a .keras archive (config and HDF5 weights) into a kiln model directory.
    Import(models::ImportArgs),
}

#[derive(Subcommand)]
enum DataCommand {
    /// Validate a file, directory or archive and print a JSON summary.
    Inspect {
        /// IDX file (.gz or not), IDX directory, aclImdb archive or directory.
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

/// `--rtol`: a finite number in [0, 1] (a larger tolerance would compare nothing).
fn rtol_arg(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        Ok(v) => Err(format!("{v} is not in [0, 1]")),
        Err(e) => Err(format!("not a number ({e})")),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parity { files, rtol } => parity::run(&files, rtol),
        Command::Bench(args) => bench::run(&args),
        Command::Reproduce(args) => reproduce::run(&args),
        Command::NewPlugin(args) => new_plugin::run(&args),
        Command::Data { command: DataCommand::Inspect { path } } => data::inspect(&path).map(|()| true),
        Command::Data { command: DataCommand::Vocab { archive, max_tokens } } => {
            data::vocab(&archive, max_tokens).map(|()| true)
        }
        Command::Data { command: DataCommand::KerasImdb(args) } => data::keras_imdb(&args).map(|()| true),
        Command::Keras { command: KerasCommand::Import(args) } => models::keras_import(&args),
        Command::Predict(args) => models::predict(&args),
        Command::ExportOnnx(args) => models::export_onnx(&args),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
