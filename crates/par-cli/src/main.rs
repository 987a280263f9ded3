//! `par`: the project's command-line tool. `main` only parses and dispatches; each subcommand is
//! one file in `cmd/`.
#![recursion_limit = "256"]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// PAR (Parallelized Autoregressive Visual Generation) on Burn.
#[derive(Parser)]
#[command(name = "par", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the PAR token order of a code grid, its inverse and the number of decode steps.
    Order(cmd::order::OrderArgs),
    /// List the backends compiled in and check that the selected device runs.
    Devices(cmd::devices::DevicesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Order(args) => cmd::order::run(&args),
        Command::Devices(args) => cmd::devices::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(cmd::exit_code(&error))
        }
    }
}
