//! Training throughput (image tokens/s) of PAR: GPT-B at a 16×16 grid, PAR-4×, batch 8, f32.
//! Random codes (throughput does not depend on them); full AdamW steps with global clipping
//! through the same loop as `train_par_*` (checkpointing off). It reports only what it measures;
//! the PyTorch comparison, measured interleaved, is in docs/benchmarks.md.
//!
//! `cargo run --release -p experiments --bin bench_train -- --backend flex [--preset gpt-b]`
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use experiments::write_atomic;
use par_device::DeviceArgs;
use par_model::Preset;
use par_train::Silent;
use par_train::par::{CodeDataset, ParData, ParTrainConfig, train_par};

#[derive(Parser)]
#[command(allow_negative_numbers = true, about = "Benchmark PAR training throughput")]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,
    /// Model size.
    #[arg(long, value_parser = par_app::choice::<par_model::Preset>(&par_model::Preset::NAMES), default_value = "gpt-b")]
    preset: Preset,
    /// Tokens per side.
    #[arg(long, default_value_t = 16)]
    grid: usize,
    /// Parallel degree.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Codebook size (ImageNet VQ-16: 16384).
    #[arg(long, default_value_t = 16384)]
    vocab: usize,
    /// Batch size.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Data-parallel workers on the one device (burn-train's multi-device strategy, as
    /// `--devices` across devices): Burn's CPU backends run element-wise ops on the calling
    /// thread, so a second worker uses the second core.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Output directory.
    #[arg(long, default_value = "runs/bench_train")]
    out: PathBuf,
}

fn main() -> std::process::ExitCode {
    par_app::finish(run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let out = par_app::OutputDir::check(&args.out, "--out", &[])?;
    if args.workers == 0 || args.workers > args.batch {
        par_app::invalid!(
            "--workers must be between 1 and --batch {} (got {})",
            args.batch,
            args.workers
        );
    }
    let model = args
        .preset
        .config(args.grid, args.parallel)
        .with_vocab_size(args.vocab)
        .with_num_classes(1000);
    model.validate().map_err(|e| par_app::name_flag(e.into(), &par_app::long_flags::<Args>()))?;
    par_app::check_positive("steps", args.steps)?;
    let backend = args.device.backend()?;
    // The synthetic data set (4 batches of codes) and a training step's memory.
    let tokens = (args.grid * args.grid) as f64;
    par_app::limits::check_memory(
        "--batch",
        &format!("4 batches of {} code grids of {} tokens", args.batch, args.grid * args.grid),
        args.batch as f64 * 4.0 * tokens * 4.0,
    )?;
    par_app::limits::check_device_memory(
        backend,
        "--batch",
        &format!("training on {} sequences per worker", args.batch.div_ceil(args.workers)),
        model.training_bytes(args.batch.div_ceil(args.workers))
            + 16.0 * model.num_parameters() as f64,
    )?;
    let device = args.device.device()?;
    let n = args.grid * args.grid;
    let samples = args.batch * 4;
    let data = CodeDataset {
        codes: (0..samples * n)
            .map(|i| ((i as u64 * 2654435761) % args.vocab as u64) as u32)
            .collect(),
        labels: (0..samples as u32).map(|i| i % 1000).collect(),
        views: 1,
        tokens: n,
    };
    let empty = CodeDataset { codes: vec![], labels: vec![], views: 1, tokens: n };
    let data = ParData::new(data, empty);
    let mut times = Vec::new();
    for (i, steps) in [1, args.steps.saturating_add(1)].into_iter().enumerate() {
        let dir = tempfile::tempdir()?;
        let cfg = ParTrainConfig::new()
            .with_batch_size(args.batch)
            .with_max_steps(Some(steps))
            .with_checkpoint_every(1_000_000)
            .with_val_every(1_000_000)
            .with_log_every(1);
        let r = train_par(
            dir.path(),
            &model,
            &cfg,
            &data,
            &vec![device.clone(); args.workers],
            false,
            Arc::new(Silent),
        )?
        .report();
        times.push(r.seconds);
        eprintln!("run {i}: {steps} step(s) in {:.2} s", r.seconds);
    }
    // The first run is one step (warm-up, allocation); the difference is the timed steps.
    let per_step = (times[1] - times[0]) / args.steps as f64;
    let tokens_per_second = (args.batch * n) as f64 / per_step;
    let report = serde_json::json!({
        "benchmark": "bench_train",
        "backend": backend,
        "preset": args.preset,
        "parameters": model.num_parameters(),
        "grid": args.grid,
        "parallel": args.parallel,
        "batch": args.batch,
        "workers": args.workers,
        "dtype": "f32",
        "seconds_per_step": per_step,
        "image_tokens_per_second": tokens_per_second,
    });
    write_atomic(
        &args.out.join("bench_train.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let md = format!(
        "# bench_train ({backend}, {:?}, {}×{}, n = {}, batch {}, {} worker(s), f32)\n\n| s / step | image tokens / s |\n|---|---|\n| {per_step:.2} | {tokens_per_second:.0} |\n",
        args.preset, args.grid, args.grid, args.parallel, args.batch, args.workers
    );
    write_atomic(&args.out.join("bench_train.md"), md.as_bytes())?;
    print!("{md}");
    out.keep();
    Ok(())
}
