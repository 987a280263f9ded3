//! Decode latency of the KV-cached PAR sampler (issue: GPT-B at 16×16, one image with guidance,
//! i.e. internal batch 2, n ∈ {1, 4, 16}).
//!
//! `cargo run --release -p experiments --bin bench_decode -- --backend flex [--preset gpt-b]`
//! writes `bench_decode.json` and `bench_decode.md` under `--out`.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use experiments::{median, write_atomic};
use par_device::DeviceArgs;
use par_model::Preset;
use par_sample::{SampleConfig, generate};

#[derive(Parser)]
#[command(allow_negative_numbers = true, about = "Benchmark KV-cached PAR decoding")]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,
    /// Model size (random weights: latency does not depend on their values).
    #[arg(long, value_enum, default_value = "gpt-b")]
    preset: Preset,
    /// Tokens per side.
    #[arg(long, default_value_t = 16)]
    grid: usize,
    /// Parallel degrees to time.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    parallel: Vec<usize>,
    /// Images per call (each doubled by guidance).
    #[arg(long, default_value_t = 1)]
    images: usize,
    /// Timed generations per degree (median reported), after one warm-up.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Output directory.
    #[arg(long, default_value = "runs/bench_decode")]
    out: PathBuf,
}

#[derive(serde::Serialize)]
struct Row {
    parallel: usize,
    steps: usize,
    seconds_per_image: f64,
    ms_per_step: f64,
    /// f32 weight bytes read per step divided by the step time (GB/s).
    effective_gb_per_s: f64,
}

fn main() -> std::process::ExitCode {
    par_app::finish(run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let out = par_app::OutputDir::check(&args.out, "--out")?;
    let device = args.device.device()?;
    let backend = args.device.backend()?;
    let sample = SampleConfig { cfg_scale: 1.5, seed: 0, ..SampleConfig::default() };
    let classes: Vec<usize> = (0..args.images).map(|i| i % 10).collect();
    let mut rows = Vec::new();
    let mut parameters = 0;
    for &n in &args.parallel {
        let config = args.preset.config(args.grid, n);
        parameters = config.num_parameters();
        let model = config.init(&device)?;
        let steps = config.region_grid()?.num_steps();
        generate(&model, &classes, &sample, &device)?; // warm-up
        let mut times: Vec<f64> = Vec::new();
        for _ in 0..args.repeats {
            let start = Instant::now();
            generate(&model, &classes, &sample, &device)?;
            times.push(start.elapsed().as_secs_f64());
        }
        let seconds = median(&mut times);
        let ms_per_step = seconds * 1e3 / steps as f64;
        let row = Row {
            parallel: n,
            steps,
            seconds_per_image: seconds / args.images as f64,
            ms_per_step,
            effective_gb_per_s: config.weight_bytes(4) as f64 / (ms_per_step * 1e-3) / 1e9,
        };
        eprintln!(
            "n = {n}: {steps} steps, {:.2} s/image, {:.1} ms/step",
            row.seconds_per_image, row.ms_per_step
        );
        rows.push(row);
    }
    let report = serde_json::json!({
        "benchmark": "bench_decode",
        "backend": backend,
        "dtype": args.device.dtype,
        "preset": args.preset,
        "parameters": parameters,
        "grid": args.grid,
        "images_per_call": args.images,
        "internal_batch": 2 * args.images,
        "repeats": args.repeats,
        "rows": rows,
    });
    write_atomic(
        &args.out.join("bench_decode.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let mut md = format!(
        "# bench_decode ({backend}, {:?}, {}×{}, {} image(s) with guidance)\n\n| n | steps | s / image | ms / step | effective GB/s |\n|---|---|---|---|---|\n",
        args.preset, args.grid, args.grid, args.images
    );
    for r in &rows {
        md += &format!(
            "| {} | {} | {:.2} | {:.1} | {:.2} |\n",
            r.parallel, r.steps, r.seconds_per_image, r.ms_per_step, r.effective_gb_per_s
        );
    }
    write_atomic(&args.out.join("bench_decode.md"), md.as_bytes())?;
    print!("{md}");
    out.keep();
    Ok(())
}
