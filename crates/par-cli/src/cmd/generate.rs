//! `par generate`: class-conditional code grids (raster order) as `.npy`.

use std::path::PathBuf;

use par_app::OutputFile;
use par_device::DeviceArgs;

use super::model::ModelArgs;
use crate::npy;

/// Arguments of `par generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Model checkpoint (.pt / .pth / .safetensors).
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Class ids, comma-separated (one image each).
    #[arg(long, value_delimiter = ',', required = true)]
    classes: Vec<usize>,
    #[command(flatten)]
    sampling: super::sampling::SamplingArgs,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output: int64 `.npy` `[len(classes), N]` in raster order (video models:
    /// `[len(classes), frames, L, L]`).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `par generate`.
pub fn run(args: &GenerateArgs) -> anyhow::Result<()> {
    let config = args.sampling.config(args.seed);
    config
        .validate()
        .map_err(|e| par_app::name_flag(e.into(), &par_app::long_flags::<GenerateArgs>()))?;
    let out = OutputFile::check(
        &args.out,
        "--out",
        &[
            ("--checkpoint", Some(&args.checkpoint)),
            ("--model-config", args.model.model_config.as_deref()),
        ],
    )?;
    let backend = args.device.sampling_backend()?;
    let device = args.device.with_backend(backend).device()?;
    let model = args.model.load(&args.checkpoint, &device)?;
    let codes = par_app::sample_codes(backend, &model, &args.classes, &config)?;
    let n = model.schedule().decode_seq_length();
    let flat: Vec<i64> = codes.iter().flatten().map(|&c| c as i64).collect();
    let c = model.config();
    // Video grids keep their frames (`[B, T, L, L]`), so an image decoder cannot take them for
    // an image; images stay `[B, N]`.
    let shape = if c.is_video() {
        vec![codes.len(), c.frames, c.grid_size, c.grid_size]
    } else {
        vec![codes.len(), n]
    };
    npy::write_i64(&out, &shape, &flat)?;
    eprintln!("generated {} code grid(s) of {n} tokens → {}", codes.len(), args.out.display());
    Ok(())
}
