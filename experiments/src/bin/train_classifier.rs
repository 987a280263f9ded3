//! Trains the Fashion-MNIST classifier that scores the demo's samples (issue: ≥ 90 % test
//! accuracy, trained once on the real training set, weights committed at
//! `data/classifier/fashion_cnn.safetensors`).
//!
//! `cargo run --release -p experiments --bin train_classifier -- --data /usr/share/datasets/fashion-mnist`
#![recursion_limit = "256"]

use std::path::PathBuf;

use clap::Parser;
use experiments::{BarMonitor, write_atomic};
use par_data::{IdxImages, IdxSplit, ImageSet};
use par_device::DeviceArgs;
use par_eval::classifier::train_classifier;
use par_train::module_state::snapshot;

#[derive(Parser)]
#[command(
    allow_negative_numbers = true,
    about = "Train the Fashion-MNIST classifier used to score generated samples"
)]
struct Args {
    /// Full Fashion-MNIST IDX directory (Debian: apt-get install dataset-fashion-mnist).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    data: PathBuf,
    /// Passes over the 60,000 training images.
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Weights file (safetensors).
    #[arg(long, default_value = "data/classifier/fashion_cnn.safetensors")]
    out: PathBuf,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    device: DeviceArgs,
}

fn main() -> std::process::ExitCode {
    par_app::finish(run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    use par_app::InputResult;
    let out = par_app::OutputFile::check(&args.out, "--out", &[("--data", Some(&args.data))])?;
    let device = args.device.device()?;
    let train = ImageSet::from_idx(&IdxImages::open(&args.data, IdxSplit::Train).input()?, 32);
    let test = ImageSet::from_idx(&IdxImages::open(&args.data, IdxSplit::Test).input()?, 32);
    let t0 = std::time::Instant::now();
    let monitor = BarMonitor::new("classifier");
    let model = train_classifier(&train, args.epochs, args.seed, &device, &monitor)?;
    monitor.bar().finish();
    let accuracy = model.accuracy(&test, &device);
    out.write(&snapshot(&model)?.to_safetensors_bytes()?)?;
    let report = serde_json::json!({
        "test_accuracy": accuracy,
        "test_images": test.len(),
        "train_images": train.len(),
        "epochs": args.epochs,
        "seconds": t0.elapsed().as_secs_f64(),
        "weights": args.out,
    });
    write_atomic(
        &args.out.with_extension("json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    eprintln!(
        "test accuracy {:.2} % on {} images → {}",
        100.0 * accuracy,
        test.len(),
        args.out.display()
    );
    Ok(())
}
