//! Model selection shared by the model commands: `--checkpoint`, `--preset` / `--model-config`,
//! `--parallel`, `--grid`.

use std::path::PathBuf;

use anyhow::Context;
use burn::prelude::Device;
use par_model::{ParTransformer, ParTransformerConfig, Preset};

/// Which model to build or load.
#[derive(Debug, clap::Args)]
pub struct ModelArgs {
    /// A named model size.
    #[arg(long, value_enum, conflicts_with = "model_config")]
    pub preset: Option<Preset>,
    /// A model config as JSON: a `ParTransformerConfig`, e.g. the `config` object printed by
    /// `par model-info --format json`.
    #[arg(long)]
    pub model_config: Option<PathBuf>,
    /// Parallel degree n (1 = LlamaGen, 4, 16) [default: the checkpoint's stored config, else 4].
    #[arg(long)]
    pub parallel: Option<usize>,
    /// Tokens per side of the code grid, 16 for 256 px, 24 for 384 px [default: the checkpoint's
    /// stored config, else 16]; a larger grid than trained is PAR's zero-shot higher resolution.
    #[arg(long)]
    pub grid: Option<usize>,
}

impl ModelArgs {
    /// The configuration named by the flags, if any (preset or JSON, with overrides).
    pub fn config(&self) -> anyhow::Result<Option<ParTransformerConfig>> {
        let base = match (&self.preset, &self.model_config) {
            (Some(preset), _) => Some(preset.config(16, 4)),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                match serde_json::from_str(&text) {
                    Ok(config) => Some(config),
                    Err(e) => crate::invalid!("{}: not a model config: {e}", path.display()),
                }
            }
            (None, None) => None,
        };
        Ok(base.map(|c| self.apply_overrides(c)))
    }

    fn apply_overrides(&self, mut config: ParTransformerConfig) -> ParTransformerConfig {
        if let Some(n) = self.parallel {
            config.parallel = n;
        }
        if let Some(l) = self.grid {
            config.grid_size = l;
        }
        config
    }

    /// Loads `checkpoint` with the flags' config, or the one stored in it (with overrides).
    pub fn load(
        &self,
        checkpoint: &std::path::Path,
        device: &Device,
    ) -> anyhow::Result<ParTransformer> {
        let state = par_model::StateDict::read(checkpoint)?;
        let config = match self.config()? {
            Some(c) => c,
            None => self.apply_overrides(
                par_model::stored_config(&state)?
                    .ok_or(par_model::CheckpointError::NoConfig { path: checkpoint.into() })?,
            ),
        };
        config.validate()?;
        Ok(ParTransformer::from_state_dict(&config, &state, device)?)
    }
}
