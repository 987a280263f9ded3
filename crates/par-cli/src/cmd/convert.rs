//! `par convert`: an official `.pt` (or any readable checkpoint) into our self-describing
//! safetensors checkpoint, so later commands need no `--preset` / `--parallel` / `--grid`.

use std::path::PathBuf;

use par_app::OutputFile;
use par_device::DeviceArgs;

use super::model::ModelArgs;

/// Arguments of `par convert`.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// Checkpoint to read (.pt / .pth / .safetensors).
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Output: safetensors with the upstream keys and the model config in its metadata.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `par convert`: loads with every key and shape checked, then saves atomically.
pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let out = OutputFile::check(
        &args.out,
        "--out",
        &[
            ("--checkpoint", Some(&args.checkpoint)),
            ("--model-config", args.model.model_config.as_deref()),
        ],
    )?;
    let device = args.device.device()?;
    let model = args.model.load(&args.checkpoint, &device)?;
    let mut state = model.to_state_dict()?;
    state.path = args.out.clone();
    out.write(&state.to_safetensors_bytes()?)?;
    eprintln!(
        "{} → {} ({} parameters, n = {}, grid {})",
        args.checkpoint.display(),
        args.out.display(),
        model.config().num_parameters(),
        model.config().parallel,
        model.config().grid_size
    );
    Ok(())
}
