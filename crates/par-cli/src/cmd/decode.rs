//! `par decode`: code grids → a PNG grid of images through a VQ tokenizer.

use std::path::PathBuf;

use anyhow::Context;
use burn::prelude::*;
use par_app::{InputResult, OutputFile, invalid};
use par_data::PixelImage;
use par_device::DeviceArgs;
use par_tokenizer::{TokenizerPreset, VqTokenizer, VqTokenizerConfig};

use crate::npy;

/// Arguments of `par decode`.
#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// Codes in raster order: integer `.npy` of shape `[batch, h·w]` (square grids) or
    /// `[batch, h, w]`, e.g. the output of `par generate`.
    #[arg(long)]
    codes: PathBuf,
    #[command(flatten)]
    tokenizer: TokenizerArgs,
    /// Images per row of the grid [default: ⌈√batch⌉].
    #[arg(long)]
    columns: Option<usize>,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    /// Images decoded per forward.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    #[command(flatten)]
    device: DeviceArgs,
}

/// The tokenizer flags shared by `par tokenize` and `par decode`.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenizerArgs {
    /// Tokenizer checkpoint: ours (config inside) or `vq_ds16_c2i.pt` layout (.pt or
    /// .safetensors, then give --tokenizer-preset or --tokenizer-config).
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Tokenizer size, for checkpoints that store no config (e.g. `vq-16` for LlamaGen's).
    #[arg(long, value_parser = par_app::choice::<par_tokenizer::TokenizerPreset>(&par_tokenizer::TokenizerPreset::NAMES), conflicts_with = "tokenizer_config")]
    pub tokenizer_preset: Option<TokenizerPreset>,
    /// Tokenizer config as JSON (`VqTokenizerConfig`), instead of a preset.
    #[arg(long)]
    pub tokenizer_config: Option<PathBuf>,
}

impl TokenizerArgs {
    /// The configuration the flags give (`None`: the one stored in the checkpoint).
    fn config(&self) -> anyhow::Result<Option<VqTokenizerConfig>> {
        if let Some(path) = &self.tokenizer_config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))
                .input()?;
            return match VqTokenizerConfig::from_json(&text) {
                Ok(c) => Ok(Some(c)),
                Err(e) => invalid!("{}: not a tokenizer config: {e}", path.display()),
            };
        }
        Ok(self.tokenizer_preset.map(TokenizerPreset::config))
    }

    /// Loads the checkpoint with the configuration the flags give, or the one stored inside.
    ///
    /// # Errors
    ///
    /// An unreadable or invalid `--tokenizer-config` (exit 2); a checkpoint that cannot be read
    /// or does not match the configuration.
    pub fn load(&self, device: &Device) -> anyhow::Result<VqTokenizer> {
        let config = self.config()?;
        if let Some(config) = &config {
            config.validate()?;
        }
        VqTokenizer::load(&self.tokenizer, config.as_ref(), device).input()
    }
}

/// Runs `par decode`.
pub fn run(args: &DecodeArgs) -> anyhow::Result<()> {
    par_app::check_positive("batch-size", args.batch_size)?;
    if let Some(c) = args.columns {
        par_app::check_positive("columns", c)?;
    }
    let out = OutputFile::check(
        &args.out,
        "--out",
        &[
            ("--codes", Some(&args.codes)),
            ("--tokenizer", Some(&args.tokenizer.tokenizer)),
            ("--tokenizer-config", args.tokenizer.tokenizer_config.as_deref()),
        ],
    )?;
    let codes = npy::read_ints(&args.codes)?;
    let (batch, h, w) = match codes.shape[..] {
        [b, n] if n.isqrt() * n.isqrt() == n => (b, n.isqrt(), n.isqrt()),
        [b, h, w] => (b, h, w),
        _ => invalid!(
            "{}: expected shape [batch, h·w] (square) or [batch, h, w], got {:?}",
            args.codes.display(),
            codes.shape
        ),
    };
    if batch == 0 || h == 0 || w == 0 {
        invalid!("{}: no code grids (shape {:?})", args.codes.display(), codes.shape);
    }
    let device = args.device.device()?;
    let model = args.tokenizer.load(&device)?;
    let config = model.config().clone();
    // What the code grids imply: the decoder's activations for a batch, and every image (u8) in
    // memory for the grid picture.
    let f = config.downsample_factor();
    let side = h.max(w).saturating_mul(f);
    if side > par_data::MAX_IMAGE_SIZE {
        invalid!(
            "{}: code grids of {h}×{w} decode to {side} px, above the supported {} px",
            args.codes.display(),
            par_data::MAX_IMAGE_SIZE
        );
    }
    par_app::limits::check_device_memory(
        args.device.backend()?,
        "--codes/--batch-size",
        &format!("decoding {} grid(s) of {h}×{w} codes at once", args.batch_size.min(batch)),
        config.activation_bytes(args.batch_size.min(batch), side),
    )?;
    par_app::limits::check_memory(
        "--codes",
        &format!("{batch} decoded image(s) of {side}×{side} px and their grid"),
        2.0 * batch as f64 * (config.image_channels * side * side) as f64,
    )?;
    if let Some(c) = codes.values.iter().find(|&&c| c < 0 || c as usize >= config.codebook_size) {
        invalid!(
            "{}: code id {c} outside the codebook 0..{}",
            args.codes.display(),
            config.codebook_size
        );
    }
    let images = model.decode_images(&codes.values, batch, h, w, args.batch_size, None)?;
    let (iw, ih) = (images[0].width, images[0].height);
    let columns =
        args.columns.unwrap_or_else(|| batch.isqrt() + usize::from(batch.isqrt().pow(2) < batch));
    let rows = batch.div_ceil(columns);
    let png = PixelImage::grid(&images, columns, 0, 0).to_png().context("encoding PNG")?;
    out.write(&png)?;
    eprintln!(
        "decoded {batch} grid(s) of {h}×{w} codes → {} ({columns}×{rows} images of {iw}×{ih})",
        args.out.display()
    );
    Ok(())
}
