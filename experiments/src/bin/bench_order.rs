//! Benchmark of the ordering: building a schedule (permutation, steps, mask) for the paper's
//! grids on the host, and permuting a training batch of code grids on a device.
//!
//! `cargo run --release -p experiments --bin bench_order -- [--backend flex] [--out runs/bench_order]`
//! writes `bench_order.json` and `bench_order.md` there.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::TensorData;
use clap::Parser;
use experiments::{median, write_atomic};
use par_device::DeviceArgs;
use par_order::tensor::permute_codes;
use par_order::{ParSchedule, RegionGrid};

#[derive(Parser)]
#[command(
    allow_negative_numbers = true,
    about = "Benchmark the PAR ordering on the host and on a device"
)]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,
    /// Output directory for bench_order.json and bench_order.md.
    #[arg(long, default_value = "runs/bench_order")]
    out: PathBuf,
    /// Code grids per permuted batch (the paper's batch for PAR-L/XL is 256).
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// Timed repetitions per measurement (median reported).
    #[arg(long, default_value_t = 20)]
    repeats: usize,
}

#[derive(serde::Serialize)]
struct Row {
    grid_size: usize,
    frames: usize,
    parallel: usize,
    steps: usize,
    /// Median seconds to build `ParSchedule` + steps + training mask on the host.
    schedule_s: f64,
    /// Median seconds to permute a `[batch, N]` int batch on the device (data already there).
    permute_batch_s: f64,
    /// Image tokens permuted per second on the device.
    permute_tokens_per_s: f64,
}

fn time(repeats: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm-up
    let mut samples: Vec<f64> = (0..repeats)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut samples)
}

fn main() -> std::process::ExitCode {
    par_app::finish(run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let out = par_app::OutputDir::check(&args.out, "--out", &[])?;
    par_app::check_positive("batch", args.batch)?;
    par_app::limits::check_repeats("repeats", args.repeats)?;
    // The largest grid below has 5·16² tokens per code grid (i64 on the host, then the device).
    par_app::limits::check_memory(
        "--batch",
        &format!("a batch of {} code grids of 1,280 tokens", args.batch),
        args.batch as f64 * 1280.0 * 8.0 * 3.0,
    )?;
    let device = args.device.device()?;
    let backend = args.device.backend()?;
    let mut rows = Vec::new();
    for (frames, l, n) in
        [(1, 16, 1), (1, 16, 4), (1, 16, 16), (1, 24, 4), (1, 24, 16), (1, 32, 16), (5, 16, 16)]
    {
        let grid = RegionGrid::video(frames, l, n)?;
        let schedule_s = time(args.repeats, || {
            let s = ParSchedule::new(grid);
            std::hint::black_box((
                s.steps(),
                s.attend_mask(s.train_seq_length()).expect("within the layout"),
            ));
        });
        let schedule = ParSchedule::new(grid);
        let tokens = grid.num_image_tokens();
        let data: Vec<i64> = (0..args.batch * tokens).map(|i| (i % 16384) as i64).collect();
        let codes =
            Tensor::<2, Int>::from_data(TensorData::new(data, [args.batch, tokens]), &device);
        let permute_batch_s = time(args.repeats, || {
            let out = permute_codes(codes.clone(), schedule.order()).expect("grid matches");
            device.sync().expect("device should sync");
            std::hint::black_box(out);
        });
        rows.push(Row {
            grid_size: l,
            frames,
            parallel: n,
            steps: grid.num_steps(),
            schedule_s,
            permute_batch_s,
            permute_tokens_per_s: (args.batch * tokens) as f64 / permute_batch_s,
        });
    }
    let report = serde_json::json!({
        "benchmark": "bench_order",
        "backend": backend,
        "batch": args.batch,
        "repeats": args.repeats,
        "rows": rows,
    });
    write_atomic(
        &args.out.join("bench_order.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let mut md = format!(
        "# bench_order ({backend}, batch {})\n\n| grid | n | steps | schedule (ms) | permute batch (ms) | Mtokens/s |\n|---|---|---|---|---|---|\n",
        args.batch
    );
    for r in &rows {
        md += &format!(
            "| {}{}×{} | {} | {} | {:.3} | {:.3} | {:.1} |\n",
            if r.frames > 1 { format!("{}×", r.frames) } else { String::new() },
            r.grid_size,
            r.grid_size,
            r.parallel,
            r.steps,
            r.schedule_s * 1e3,
            r.permute_batch_s * 1e3,
            r.permute_tokens_per_s / 1e6
        );
    }
    write_atomic(&args.out.join("bench_order.md"), md.as_bytes())?;
    print!("{md}");
    out.keep();
    Ok(())
}
