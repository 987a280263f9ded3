//! PAR-XXL on the paper's Table 5 settings: `cargo run --release -p experiments --bin train_par_xxl
//! -- --codes CODES_DIR --out RUN_DIR [--backend cuda --devices 0,1,2,3]`.
#![recursion_limit = "256"]

use clap::Parser;
use experiments::train_par::{TrainParArgs, run};
use par_model::Preset;

fn main() -> std::process::ExitCode {
    par_app::finish(run(Preset::GptXxl, &TrainParArgs::parse()))
}
