//! Encode throughput of the VQ tokenizer (issue: the small preset on Fashion-MNIST and `vq-16` at
//! 256×256, images/s on CPU). Times `encode` alone (views already cropped and normalised) and the
//! whole per-image pipeline (ADM crop + 2 views + encode) for the Fashion-MNIST case.
//!
//! `cargo run --release -p experiments --bin bench_tokenize -- --backend flex
//!  [--idx /usr/share/datasets/fashion-mnist]` writes `bench_tokenize.json` and `.md` under `--out`.
#![recursion_limit = "256"]

use std::path::PathBuf;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use clap::Parser;
use experiments::{median, write_atomic};
use par_data::{Augmentation, IdxImages, IdxSplit, augment};
use par_device::DeviceArgs;
use par_tokenizer::TokenizerPreset;

#[derive(Parser)]
#[command(allow_negative_numbers = true, about = "Benchmark VQ tokenizer encoding")]
struct Args {
    #[command(flatten)]
    device: DeviceArgs,
    /// Fashion-MNIST IDX directory (real images for the small preset); random images without it.
    #[arg(long)]
    idx: Option<PathBuf>,
    /// Small preset to time on 32×32 grayscale images.
    #[arg(long, value_parser = par_app::choice::<par_tokenizer::TokenizerPreset>(&par_tokenizer::TokenizerPreset::NAMES), default_value = "vq-small-16")]
    small: TokenizerPreset,
    /// Images per forward for the small preset.
    #[arg(long, default_value_t = 64)]
    small_batch: usize,
    /// Images per forward for vq-16 at 256×256.
    #[arg(long, default_value_t = 4)]
    vq16_batch: usize,
    /// Timed batches (median reported), after one warm-up.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Skip vq-16 (slow on CPU).
    #[arg(long)]
    skip_vq16: bool,
    /// Output directory.
    #[arg(long, default_value = "runs/bench_tokenize")]
    out: PathBuf,
}

#[derive(serde::Serialize)]
struct Row {
    case: String,
    preset: String,
    image_size: usize,
    batch: usize,
    seconds_per_batch: f64,
    images_per_second: f64,
}

fn time(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    median(&mut t)
}

fn name(p: TokenizerPreset) -> String {
    p.name().to_string()
}

fn main() -> std::process::ExitCode {
    par_app::finish(run(Args::parse()))
}

fn run(args: Args) -> anyhow::Result<()> {
    let out = par_app::OutputDir::check(&args.out, "--out", &[("--idx", args.idx.as_deref())])?;
    par_app::check_positive("small-batch", args.small_batch)?;
    par_app::check_positive("vq16-batch", args.vq16_batch)?;
    par_app::limits::check_repeats("repeats", args.repeats)?;
    let backend_now = args.device.backend()?;
    for (flag, batch, config, side) in [
        ("--small-batch", args.small_batch, args.small.config(), 32),
        ("--vq16-batch", args.vq16_batch, TokenizerPreset::Vq16.config(), 256),
    ] {
        if flag == "--vq16-batch" && args.skip_vq16 {
            continue;
        }
        par_app::limits::check_memory(
            flag,
            &format!("a batch of {batch} images of {side} px"),
            batch as f64 * (config.image_channels * side * side) as f64 * 4.0,
        )?;
        par_app::limits::check_device_memory(
            backend_now,
            flag,
            &format!("encoding {batch} images of {side} px at once"),
            config.activation_bytes(batch, side),
        )?;
    }
    let device = args.device.device()?;
    let backend = args.device.backend()?;
    let mut rows = Vec::new();

    let small = args.small.config().init(&device)?;
    let b = args.small_batch;
    let source = match &args.idx {
        Some(dir) => {
            Some(par_app::InputResult::input(IdxImages::open(dir, IdxSplit::Test))?.take(b))
        }
        None => None,
    };
    let pixels: Vec<f32> = match &source {
        Some(set) => (0..set.len())
            .flat_map(|i| augment(&set.image(i), 32, Augmentation::CenterFlip)[0].to_chw_signed())
            .collect(),
        None => Tensor::<4>::random([b, 1, 32, 32], Distribution::Uniform(-1.0, 1.0), &device)
            .into_data()
            .try_into_vec_as::<f32>()?,
    };
    let n = pixels.len() / 1024;
    let x = Tensor::<4>::from_data(TensorData::new(pixels, [n, 1, 32, 32]), &device);
    let s = time(args.repeats, || {
        small.encode(x.clone()).into_data();
    });
    rows.push(Row {
        case: "encode".into(),
        preset: name(args.small),
        image_size: 32,
        batch: n,
        seconds_per_batch: s,
        images_per_second: n as f64 / s,
    });
    if let Some(set) = &source {
        let s = time(args.repeats, || {
            let data: Vec<f32> = (0..set.len())
                .flat_map(|i| augment(&set.image(i), 32, Augmentation::CenterFlip))
                .flat_map(|v| v.to_chw_signed())
                .collect();
            let x =
                Tensor::<4>::from_data(TensorData::new(data, [2 * set.len(), 1, 32, 32]), &device);
            small.encode(x).into_data();
        });
        rows.push(Row {
            case: "crop + 2 views + encode (Fashion-MNIST)".into(),
            preset: name(args.small),
            image_size: 32,
            batch: set.len(),
            seconds_per_batch: s,
            images_per_second: set.len() as f64 / s,
        });
    }
    if !args.skip_vq16 {
        let vq16 = TokenizerPreset::Vq16.config().init(&device)?;
        let b = args.vq16_batch;
        let x = Tensor::<4>::random([b, 3, 256, 256], Distribution::Uniform(-1.0, 1.0), &device);
        let s = time(args.repeats, || {
            vq16.encode(x.clone()).into_data();
        });
        rows.push(Row {
            case: "encode".into(),
            preset: "vq-16".into(),
            image_size: 256,
            batch: b,
            seconds_per_batch: s,
            images_per_second: b as f64 / s,
        });
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let report = serde_json::json!({
        "benchmark": "bench_tokenize",
        "backend": backend,
        "dtype": args.device.dtype,
        "cpu_threads": threads,
        "repeats": args.repeats,
        "rows": rows,
    });
    write_atomic(
        &args.out.join("bench_tokenize.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    let mut md = format!(
        "# bench_tokenize ({backend}, {threads} threads)\n\n| case | preset | px | batch | s / batch | images / s |\n|---|---|---|---|---|---|\n"
    );
    for r in &rows {
        md += &format!(
            "| {} | {} | {} | {} | {:.3} | {:.1} |\n",
            r.case, r.preset, r.image_size, r.batch, r.seconds_per_batch, r.images_per_second
        );
    }
    write_atomic(&args.out.join("bench_tokenize.md"), md.as_bytes())?;
    print!("{md}");
    out.keep();
    Ok(())
}
