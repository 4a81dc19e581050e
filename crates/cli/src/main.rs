//! `kiln …`: the installable command line (`cargo install kiln-cli`).

use clap::Parser;

fn main() -> std::process::ExitCode {
    match kiln_cli::run(kiln_cli::Cli::parse().command) {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
