//! `par`: the project's command-line tool. `main` only parses and dispatches; each subcommand is
//! one file in `cmd/`.
#![recursion_limit = "256"]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod npy;
mod progress;

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
    /// A model preset's configuration and parameter count.
    ModelInfo(cmd::model_info::ModelInfoArgs),
    /// Teacher-forced logits of raster-order code grids (.npy in, .npy out).
    Score(cmd::score::ScoreArgs),
    /// Sample class-conditional code grids with the KV-cached PAR decoder.
    Generate(cmd::generate::GenerateArgs),
    /// Checkpoint(s) → images: PNGs, a labelled grid, the ADM evaluator's .npz; resumable.
    Sample(cmd::sample::SampleArgs),
    /// Decode code grids into a PNG grid of images with a VQ tokenizer.
    Decode(cmd::decode::DecodeArgs),
    /// A VQ tokenizer preset's configuration and parameter count.
    TokenizerInfo(cmd::tokenizer_info::TokenizerInfoArgs),
    /// VQ tokenizer training.
    #[command(subcommand)]
    Tokenizer(TokenizerCommand),
    /// Pre-tokenize images (ImageFolder or IDX) with ten-crop into code stores; resumable.
    Tokenize(cmd::tokenize::TokenizeArgs),
    /// Pre-tokenize video clips (UCF-101 layout, decoded by ffmpeg) with a video tokenizer;
    /// resumable.
    TokenizeClips(cmd::tokenize_clips::TokenizeClipsArgs),
    /// Convert a checkpoint (e.g. an official .pt) into our safetensors format with its config.
    Convert(cmd::convert::ConvertArgs),
    /// Conditional entropy of visual tokens (Algorithm 1): Fig. 11 and Fig. 12 maps, queries, and
    /// a Gaussian self-check.
    Entropy(cmd::entropy::EntropyArgs),
    /// Quality of an image set: FD-FMNIST, precision/recall, class accuracy.
    Eval(cmd::eval::EvalArgs),
}

#[derive(Subcommand)]
enum TokenizerCommand {
    /// Train a VQ tokenizer (MSE + VQ losses, optional PatchGAN) with checkpoints and resume.
    Train(cmd::tokenizer_train::TokenizerTrainArgs),
}

/// Parses the command line. Every subcommand takes negative numbers as values, so
/// `--temperature -1` reaches the flag's own check (which names the flag) instead of clap's
/// "unexpected argument".
fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    fn allow_negative(cmd: clap::Command) -> clap::Command {
        cmd.allow_negative_numbers(true).mut_subcommands(allow_negative)
    }
    let matches = allow_negative(Cli::command()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    let result = match parse().command {
        Command::Order(args) => cmd::order::run(&args),
        Command::Devices(args) => cmd::devices::run(&args),
        Command::ModelInfo(args) => cmd::model_info::run(&args),
        Command::Score(args) => cmd::score::run(&args),
        Command::Generate(args) => cmd::generate::run(&args),
        Command::Sample(args) => cmd::sample::run(&args),
        Command::Convert(args) => cmd::convert::run(&args),
        Command::TokenizerInfo(args) => cmd::tokenizer_info::run(&args),
        Command::Decode(args) => cmd::decode::run(&args),
        Command::Tokenizer(TokenizerCommand::Train(args)) => cmd::tokenizer_train::run(&args),
        Command::Tokenize(args) => cmd::tokenize::run(&args),
        Command::TokenizeClips(args) => cmd::tokenize_clips::run(&args),
        Command::Entropy(args) => cmd::entropy::run(&args),
        Command::Eval(args) => cmd::eval::run(&args),
    };
    par_app::finish(result)
}
