//! Video PAR on the paper's Table 6 settings (class-conditional UCF-101, docs/spec.md §8):
//! `cargo run --release -p experiments --bin train_par_video -- --codes CLIP_CODES --out RUN_DIR
//! [--preset gpt-xl] [--parallel 4] [--backend cuda --devices 0,1,2,3]`.
//!
//! The codes come from `par tokenize-clips` (5 latent frames of 16×16 for 17-frame 128² clips):
//! the model is `--preset`'s video configuration (3D RoPE, spatial regions, 64,000 codes,
//! dropouts 0.1), trained with lr 1e-4, batch 256, 3000 epochs, 150 warm-up epochs, cosine to 0,
//! AdamW (0.9, 0.95), weight decay 0.05, class dropout 0.1. The run folder gets `sampling.json`
//! with Table 6's sampling settings (temperature 1.0, guidance 1.15, top-k 8000).
#![recursion_limit = "256"]

use clap::Parser;
use experiments::train_par::{Table, TrainParArgs, run_table};
use par_model::Preset;

/// Flags of `train_par_video`.
#[derive(Debug, clap::Parser)]
#[command(allow_negative_numbers = true)]
struct Args {
    /// Model size (the paper's video model has 792 M parameters; its configuration is not
    /// published, gpt-xl is the nearest preset).
    #[arg(long, value_parser = par_app::choice::<Preset>(&Preset::NAMES), default_value = "gpt-xl")]
    preset: Preset,
    #[command(flatten)]
    train: TrainParArgs,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    par_app::finish(run_table(args.preset, &args.train, Table::Video))
}
