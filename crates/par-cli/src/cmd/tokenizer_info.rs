//! `par tokenizer-info`: a VQ tokenizer preset's configuration and parameter count.

use burn::module::Module;
use par_tokenizer::TokenizerPreset;

use super::order::Format;

/// Arguments of `par tokenizer-info`.
#[derive(Debug, clap::Args)]
pub struct TokenizerInfoArgs {
    /// Tokenizer size.
    #[arg(long, value_parser = par_app::choice::<par_tokenizer::TokenizerPreset>(&par_tokenizer::TokenizerPreset::NAMES))]
    preset: TokenizerPreset,
    /// json: `{"preset", "parameters", "downsample_factor", "config"}`; text: one line.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Runs `par tokenizer-info` (parameters are counted from shapes; Burn initialises lazily, so
/// no weights are drawn).
pub fn run(args: &TokenizerInfoArgs) -> anyhow::Result<()> {
    let config = args.preset.config();
    let parameters = config.init(&par_device::DeviceArgs::default().device()?)?.num_params();
    let name = args.preset.name();
    match args.format {
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
