//! `par score`: teacher-forced logits of raster-order code grids, as `.npy`.

use std::path::PathBuf;

use anyhow::bail;
use burn::prelude::*;
use burn::tensor::TensorData;
use par_app::{OutputFile, invalid};
use par_device::DeviceArgs;
use par_model::TransformerInput;
use par_order::tensor::permute_codes;

use super::model::ModelArgs;
use crate::npy;

/// Arguments of `par score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// Model checkpoint (.pt / .pth / .safetensors).
    #[arg(long)]
    checkpoint: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Class ids, integer `.npy` of shape `[batch]`.
    #[arg(long)]
    classes: PathBuf,
    /// Code grids in raster order, integer `.npy` of shape `[batch, N]`.
    #[arg(long)]
    tokens: PathBuf,
    /// Output: f32 `.npy` of shape `[batch, N, vocab]`; entry `[b, p]` is the distribution of the
    /// PAR-order token `p` (PAR position p = raster index `order[p]`, see `par order`).
    #[arg(long)]
    out: PathBuf,
    /// Grids scored per forward.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `par score`.
pub fn run(args: &ScoreArgs) -> anyhow::Result<()> {
    par_app::check_positive("batch-size", args.batch_size)?;
    let out = OutputFile::check(
        &args.out,
        "--out",
        &[
            ("--checkpoint", Some(&args.checkpoint)),
            ("--model-config", args.model.model_config.as_deref()),
            ("--classes", Some(&args.classes)),
            ("--tokens", Some(&args.tokens)),
        ],
    )?;
    let tokens = npy::read_ints(&args.tokens)?;
    let classes = npy::read_ints(&args.classes)?;
    let device = args.device.device()?;
    let model = args.model.load(&args.checkpoint, &device)?;
    let config = model.config().clone();
    let n = model.schedule().decode_seq_length();
    let [batch, width] = tokens.shape[..] else {
        invalid!("{}: expected shape [batch, {n}], got {:?}", args.tokens.display(), tokens.shape);
    };
    if batch == 0 {
        invalid!("{}: no code grids (shape {:?})", args.tokens.display(), tokens.shape);
    }
    if width != n {
        invalid!(
            "{}: {width} tokens per grid, but a {}×{}×{} grid (frames × rows × columns) has {n}",
            args.tokens.display(),
            config.frames,
            config.grid_size,
            config.grid_size
        );
    }
    if classes.shape != [batch] {
        invalid!("{}: expected shape [{batch}], got {:?}", args.classes.display(), classes.shape);
    }
    if let Some(v) = tokens.values.iter().find(|&&v| v < 0 || v as usize >= config.vocab_size) {
        invalid!(
            "{}: code id {v} outside the codebook 0..{}",
            args.tokens.display(),
            config.vocab_size
        );
    }
    if let Some(c) = classes.values.iter().find(|&&c| c < 0 || c as usize > config.num_classes) {
        invalid!(
            "{}: class id {c} outside 0..={} ({} = null class)",
            args.classes.display(),
            config.num_classes,
            config.num_classes
        );
    }
    let vocab = config.vocab_size;
    let mut logits = Vec::with_capacity(batch * n * vocab);
    for start in (0..batch).step_by(args.batch_size) {
        let b = args.batch_size.min(batch - start);
        let raster = Tensor::<2, Int>::from_data(
            TensorData::new(tokens.values[start * n..(start + b) * n].to_vec(), [b, n]),
            &device,
        );
        let input = TransformerInput {
            tokens: permute_codes(raster, model.schedule().order())?,
            classes: Tensor::from_data(
                TensorData::new(classes.values[start..start + b].to_vec(), [b]),
                &device,
            ),
        };
        let part = model
            .forward(input)?
            .into_data()
            .try_into_vec_as::<f32>()
            .map_err(|e| anyhow::anyhow!("reading logits: {e:?}"))?;
        if let Some(i) = part.iter().position(|x| !x.is_finite()) {
            let (grid, position) = (start + i / (n * vocab), i / vocab % n);
            bail!(
                "non-finite logits for grid {grid} (PAR position {position}, code {}: {}); the model's weights or activations overflow",
                i % vocab,
                part[i]
            );
        }
        logits.extend(part);
    }
    npy::write_f32(&out, &[batch, n, vocab], &logits)?;
    eprintln!("scored {batch} grid(s) → {}", args.out.display());
    Ok(())
}
