//! Generation latency and throughput on the compiled backends: the supplement's Table 7
//! (seconds per image at batch 1 with classifier-free guidance, 1× / 4× / 16×) plus throughput
//! rows (images per second at batch 32, the setting of a 50,000-image FID run).
//!
//! `cargo run --release -p experiments --bin bench_latency -- [--preset gpt-b] [--grid 16]
//! [--backends flex,host] [--out runs/bench_latency]` writes `latency.json` (a list of rows) and
//! `latency.md`. Random weights: a step's cost does not depend on their values. `--smoke`
//! (gpt-tiny, 16×16, one repeat) runs in CI.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use experiments::{median, write_atomic};
use par_device::{Backend, DeviceArgs};
use par_model::{ParTransformer, Preset};
use par_sample::{SampleConfig, generate};

#[derive(Parser)]
#[command(
    allow_negative_numbers = true,
    about = "Generation latency (batch 1) and throughput (batch 32) per backend and parallel degree"
)]
struct Args {
    /// Backends to time [default: every one compiled in].
    #[arg(long, value_delimiter = ',')]
    backends: Option<Vec<Backend>>,
    #[command(flatten)]
    device: DeviceArgs,
    /// Model size (random weights).
    #[arg(long, value_parser = par_app::choice::<par_model::Preset>(&par_model::Preset::NAMES), default_value = "gpt-b")]
    preset: Preset,
    /// Tokens per side of the code grid (16: 256 px, 24: 384 px, 32: 512 px with VQ-16).
    #[arg(long, default_value_t = 16)]
    grid: usize,
    /// Parallel degrees.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    parallel: Vec<usize>,
    /// Batch sizes: 1 is the latency row (Table 7), larger ones throughput rows.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    batch: Vec<usize>,
    /// Classifier-free guidance scale (> 1 doubles every batch).
    #[arg(long, default_value_t = 1.5)]
    cfg_scale: f32,
    /// Timed generations per row (median reported), after one warm-up (which also runs
    /// autotune on the GPU backends).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// gpt-tiny at 16×16, batches 1 and 4, one repeat: a check that every path runs (CI).
    #[arg(long)]
    smoke: bool,
    /// Output directory.
    #[arg(long, default_value = "runs/bench_latency")]
    out: PathBuf,
}

/// One row of `latency.json`.
#[derive(serde::Serialize)]
struct Row {
    backend: Backend,
    /// Burn's kernel fusion and autotune compiled in for this backend.
    fusion: bool,
    parallel: usize,
    grid: usize,
    /// Images per call (each doubled by guidance).
    batch: usize,
    /// Decode steps (transformer forwards) per image.
    steps: usize,
    seconds_per_image: f64,
    ms_per_step: f64,
    images_per_second: f64,
    /// Seconds per image of 1× on the same backend and batch over this row's.
    speedup_over_1x: Option<f64>,
}

fn main() -> std::process::ExitCode {
    par_app::finish(run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let out = par_app::OutputDir::check(&args.out, "--out", &[])?;
    par_app::check_positive("repeats", args.repeats)?;
    par_app::check_float("cfg-scale", args.cfg_scale as f64, Some(0.0), None)?;
    let (preset, grid, batches, repeats) = if args.smoke {
        (Preset::GptTiny, 16, vec![1, 4], 1)
    } else {
        (args.preset, args.grid, args.batch.clone(), args.repeats)
    };
    for &b in &batches {
        par_app::check_positive("batch", b)?;
    }
    let backends = args.backends.clone().unwrap_or_else(Backend::compiled);
    let sample = SampleConfig { cfg_scale: args.cfg_scale, seed: 0, ..SampleConfig::default() };
    let mut rows: Vec<Row> = Vec::new();
    for &backend in &backends {
        let device = args.device.with_backend(backend).device()?;
        for &n in &args.parallel {
            let config = preset.config(grid, n);
            config.validate()?;
            let steps = config.schedule()?.num_steps();
            let model = config.init(&device)?;
            let engine = backend.decodes_on_host().then(|| par_cpu::CpuDecoder::new(&model));
            let run_once = |classes: &[usize]| -> anyhow::Result<f64> {
                let start = Instant::now();
                match &engine {
                    Some(e) => generate(e, classes, &sample)?,
                    None => generate::<ParTransformer>(&model, classes, &sample)?,
                };
                Ok(start.elapsed().as_secs_f64())
            };
            for &batch in &batches {
                let classes: Vec<usize> = (0..batch).map(|i| i % config.num_classes).collect();
                run_once(&classes)?; // warm-up (kernel compilation and autotune on GPUs)
                let mut times = (0..repeats)
                    .map(|_| run_once(&classes))
                    .collect::<anyhow::Result<Vec<f64>>>()?;
                let seconds = median(&mut times);
                let row = Row {
                    backend,
                    fusion: backend.fusion(),
                    parallel: n,
                    grid,
                    batch,
                    steps,
                    seconds_per_image: seconds / batch as f64,
                    ms_per_step: seconds * 1e3 / steps as f64,
                    images_per_second: batch as f64 / seconds,
                    speedup_over_1x: None,
                };
                eprintln!(
                    "{backend} n = {n:2} batch {batch:2}: {steps} steps, {:.3} s/image, {:.1} ms/step, {:.2} images/s",
                    row.seconds_per_image, row.ms_per_step, row.images_per_second
                );
                rows.push(row);
            }
        }
    }
    let base: Vec<(Backend, usize, f64)> = rows
        .iter()
        .filter(|r| r.parallel == 1)
        .map(|r| (r.backend, r.batch, r.seconds_per_image))
        .collect();
    for r in &mut rows {
        r.speedup_over_1x = base
            .iter()
            .find(|(b, batch, _)| *b == r.backend && *batch == r.batch)
            .map(|(_, _, s)| s / r.seconds_per_image);
    }
    write_atomic(&args.out.join("latency.json"), serde_json::to_string_pretty(&rows)?.as_bytes())?;
    let mut md = format!(
        "# Generation latency: {preset:?} at {grid}×{grid}, guidance {}, f32, random weights\n\n\
         | backend | fusion | n | batch | steps | s / image | ms / step | images / s | speed-up over 1× |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        args.cfg_scale
    );
    for r in &rows {
        md += &format!(
            "| {} | {} | {} | {} | {} | {:.3} | {:.1} | {:.2} | {} |\n",
            r.backend,
            match (r.backend, r.fusion) {
                (Backend::Wgpu | Backend::Cuda, true) => "on",
                (Backend::Wgpu | Backend::Cuda, false) => "off",
                _ => "n/a",
            },
            r.parallel,
            r.batch,
            r.steps,
            r.seconds_per_image,
            r.ms_per_step,
            r.images_per_second,
            r.speedup_over_1x.map_or("—".into(), |s| format!("{s:.2}×"))
        );
    }
    write_atomic(&args.out.join("latency.md"), md.as_bytes())?;
    print!("{md}");
    out.keep();
    Ok(())
}
