//! `par tokenizer-info`: a tokenizer preset's configuration and parameter count — the VQ image
//! tokenizers and the MAGVIT-v2-style video tokenizers (docs/spec.md §8).

use burn::module::Module;
use par_tokenizer::{TokenizerPreset, VideoQuantizerConfig, VideoTokenizerPreset};

use super::order::Format;

/// An image or a video tokenizer preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyTokenizerPreset {
    /// A VQ image tokenizer.
    Image(TokenizerPreset),
    /// A causal video tokenizer.
    Video(VideoTokenizerPreset),
}

const fn concat<const N: usize>(a: &[&'static str], b: &[&'static str]) -> [&'static str; N] {
    assert!(a.len() + b.len() == N, "name count");
    let mut out = [""; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    while i < N {
        out[i] = b[i - a.len()];
        i += 1;
    }
    out
}

/// Every preset name: the image presets, then the video presets.
pub const PRESET_NAMES: [&str; TokenizerPreset::NAMES.len() + VideoTokenizerPreset::NAMES.len()] =
    concat(&TokenizerPreset::NAMES, &VideoTokenizerPreset::NAMES);

impl std::str::FromStr for AnyTokenizerPreset {
    type Err = String;

    /// Parses a name of [`PRESET_NAMES`].
    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(Self::Image).or_else(|_| s.parse().map(Self::Video)).map_err(|_: String| {
            format!("unknown tokenizer preset `{s}` (one of {})", PRESET_NAMES.join(", "))
        })
    }
}

/// Arguments of `par tokenizer-info`.
#[derive(Debug, clap::Args)]
pub struct TokenizerInfoArgs {
    /// Tokenizer size: an image (VQ) preset or a video (MAGVIT-v2-style) preset.
    #[arg(long, value_parser = par_app::choice::<AnyTokenizerPreset>(&PRESET_NAMES))]
    preset: AnyTokenizerPreset,
    /// json: image `{"preset", "parameters", "downsample_factor", "config"}`; video `{"preset",
    /// "parameters", "downsample_factors", "latent_shape", "tokens", "config"}` (the config holds
    /// `codebook_size`); text: one line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Runs `par tokenizer-info` (parameters are counted from shapes; Burn initialises lazily, so
/// no weights are drawn).
pub fn run(args: &TokenizerInfoArgs) -> anyhow::Result<()> {
    match args.preset {
        AnyTokenizerPreset::Image(preset) => image(preset, args.format),
        AnyTokenizerPreset::Video(preset) => video(preset, args.format),
    }
}

fn image(preset: TokenizerPreset, format: Format) -> anyhow::Result<()> {
    let config = preset.config();
    let parameters = config.init(&par_device::DeviceArgs::default().device()?)?.num_params();
    let name = preset.name();
    match format {
        Format::Json => {
            let report = serde_json::json!({
                "preset": name,
                "parameters": parameters,
                "downsample_factor": config.downsample_factor(),
                "config": config,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Format::Text => println!(
            "{name}: {parameters} parameters ({:.2} M), {}× down-sampling, codebook {} × {}",
            parameters as f64 / 1e6,
            config.downsample_factor(),
            config.codebook_size,
            config.codebook_dim
        ),
    }
    Ok(())
}

fn video(preset: VideoTokenizerPreset, format: Format) -> anyhow::Result<()> {
    let config = preset.config();
    let parameters = config.init(&par_device::DeviceArgs::default().device()?)?.num_params();
    let name = preset.name();
    let [tf, sf] = config.downsample_factors();
    let (frames, size) = (config.frames, config.frame_size);
    let latent = config.latent_shape(frames, size, size)?;
    match format {
        Format::Json => {
            let report = serde_json::json!({
                "preset": name,
                "parameters": parameters,
                "downsample_factors": [tf, sf],
                "latent_shape": latent,
                "tokens": latent.iter().product::<usize>(),
                "config": config,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Format::Text => {
            let quantizer = match &config.quantizer {
                VideoQuantizerConfig::Fsq(q) => format!("FSQ {:?}", q.levels),
                VideoQuantizerConfig::Lfq(q) => format!("LFQ {} bits", q.bits),
            };
            println!(
                "{name}: {parameters} parameters ({:.2} M), {tf}× temporal / {sf}× spatial \
                 down-sampling, {frames}×{size}² clips → {}×{}×{} codes, codebook {} ({quantizer})",
                parameters as f64 / 1e6,
                latent[0],
                latent[1],
                latent[2],
                config.codebook_size,
            );
        }
    }
    Ok(())
}
