//! `cargo xtask …`: kiln's developer and reproduction commands (the library is
//! `xtask`; this binary parses the command line and dispatches).

use clap::{Parser, Subcommand};
use xtask::{bench, new_plugin, reproduce};

/// kiln's task runner.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Retrain every experiment of the chapter and redraw its figures and report.
    Reproduce(reproduce::ReproduceArgs),
    /// Scaffold a plugin crate under plugins/NAME.
    NewPlugin(new_plugin::NewPluginArgs),
    /// Time training workloads (seconds per epoch) against the same-run GEMM baseline.
    Bench(bench::BenchArgs),
    /// The `kiln` command line's commands: parity, data, keras, predict, export-onnx.
    #[command(flatten)]
    Kiln(kiln_cli::Command),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Reproduce(args) => reproduce::run(&args),
        Command::NewPlugin(args) => new_plugin::run(&args),
        Command::Kiln(command) => kiln_cli::run(command),
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
