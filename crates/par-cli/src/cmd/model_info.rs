//! `par model-info`: a preset's configuration and parameter count (counted, not allocated), for
//! images or, with `--frames`, for video (docs/spec.md §8).

use par_model::{PositionEmbedding, Preset};

use super::order::Format;

/// Arguments of `par model-info`.
#[derive(Debug, clap::Args)]
pub struct ModelInfoArgs {
    /// Model size.
    #[arg(long, value_parser = par_app::choice::<par_model::Preset>(&par_model::Preset::NAMES))]
    preset: Preset,
    /// Parallel degree n.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Tokens per side of the code grid.
    #[arg(long, default_value_t = 16)]
    grid: usize,
    /// Latent frames of the code grid: 1 = images; more = a video model (the paper's UCF-101
    /// setting: 5 latent frames of 17-frame clips, 64,000 FSQ codes, 101 classes, Table 6
    /// dropouts, for presets from gpt-b up).
    #[arg(long, default_value_t = 1)]
    frames: usize,
    /// Positions of image tokens: rope (2D, or 3D for video) or learned.
    #[arg(long, value_parser = par_app::choice::<PositionEmbedding>(&PositionEmbedding::NAMES), default_value = "rope")]
    position_embedding: PositionEmbedding,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

fn preset_name(preset: Preset) -> String {
    preset.name().to_string()
}

/// Runs `par model-info`.
pub fn run(args: &ModelInfoArgs) -> anyhow::Result<()> {
    let config = if args.frames > 1 {
        args.preset.video_config(args.frames, args.grid, args.parallel)
    } else {
        args.preset.config(args.grid, args.parallel).with_frames(args.frames)
    }
    .with_position_embedding(args.position_embedding);
    config.validate().map_err(|e| {
        let e = par_app::name_flag(e.into(), &par_app::long_flags::<ModelInfoArgs>());
        e.context(format!(
            "--grid {} --parallel {} --frames {}",
            args.grid, args.parallel, args.frames
        ))
    })?;
    let parameters = config.num_parameters();
    match args.format {
        Format::Json => {
            let report = serde_json::json!({
                "preset": preset_name(args.preset),
                "parameters": parameters,
                "weight_bytes_f32": config.weight_bytes(4),
                "ffn_hidden": config.ffn_hidden(),
                "head_dim": config.head_dim(),
                "decode_steps": config.schedule()?.num_steps(),
                "tokens": config.region_grid()?.num_image_tokens(),
                "config": config,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Format::Text => {
            println!(
                "{}: {} parameters ({:.2} M), {} layers × {} heads × width {}, FFN {}, {} decode steps at {}×{}×{} with n = {}",
                preset_name(args.preset),
                parameters,
                parameters as f64 / 1e6,
                config.n_layers,
                config.n_heads,
                config.d_model,
                config.ffn_hidden(),
                config.schedule()?.num_steps(),
                args.frames,
                args.grid,
                args.grid,
                args.parallel
            );
        }
    }
    Ok(())
}
