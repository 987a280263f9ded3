//! Model selection shared by the model commands: `--checkpoint`, `--preset` / `--model-config`,
//! `--parallel`, `--grid`.

use std::path::PathBuf;

use anyhow::Context;
use burn::prelude::Device;
use par_app::InputResult;
use par_model::{ParTransformer, ParTransformerConfig, Preset};

/// Which model to build or load.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// A named model size.
    #[arg(long, value_parser = par_app::choice::<par_model::Preset>(&par_model::Preset::NAMES), conflicts_with = "model_config")]
    pub preset: Option<Preset>,
    /// A model config as JSON: a `ParTransformerConfig`, e.g. the `config` object printed by
    /// `par model-info --format json`; fields left out take their defaults (GPT-B, n = 4, 16×16).
    #[arg(long)]
    pub model_config: Option<PathBuf>,
    /// Parallel degree n (1 = LlamaGen, 4, 16) [default: read from the checkpoint (its
    /// transition-token table has n − 1 rows); given, it must match the checkpoint].
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
                    .with_context(|| format!("reading {}", path.display()))
                    .input()?;
                match par_store::from_json_with_defaults(&ParTransformerConfig::new(), &text) {
                    Ok(config) => Some(config),
                    Err(e) => par_app::invalid!("{}: not a model config: {e}", path.display()),
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
    ///
    /// # Errors
    ///
    /// Everything about the checkpoint and the config is the input's fault (exit status 2): a
    /// missing or damaged file, non-finite weights, a tokenizer checkpoint, keys or shapes that
    /// do not fit, an invalid config.
    pub fn load(
        &self,
        checkpoint: &std::path::Path,
        device: &Device,
    ) -> anyhow::Result<ParTransformer> {
        let given = self.config()?;
        if let Some(config) = &given {
            config.validate()?; // before reading a possibly large file
        }
        let state = par_model::StateDict::read(checkpoint).input()?;
        state.expect_kind(par_model::CheckpointKind::Model)?;
        // The parallel degree the weights were trained for: n − 1 transition-token rows.
        let trained = state
            .tensors
            .get("spe_tok_embeddings.special_embeddings.weight")
            .map_or(1, |t| t.shape.first().copied().unwrap_or(0) + 1);
        if let Some(n) = self.parallel.filter(|&n| n != trained) {
            par_app::invalid!(
                "--parallel {n} does not match {}: it holds a PAR-{trained}× model ({} transition tokens); drop --parallel or pass --parallel {trained}",
                checkpoint.display(),
                trained - 1
            );
        }
        let stored = par_model::stored_config(&state)?;
        // A video checkpoint must not be read as an image model (or the other way round), nor
        // learned positions as RoPE: what the weights were trained for wins, as for --parallel.
        if let (Some(given), Some(stored)) = (&given, &stored)
            && (given.frames != stored.frames
                || given.position_embedding != stored.position_embedding)
        {
            par_app::invalid!(
                "the model config asks for frames = {}, position_embedding = {}, but {} holds a model of frames = {}, position_embedding = {}; drop --preset/--model-config or match them",
                given.frames,
                given.position_embedding,
                checkpoint.display(),
                stored.frames,
                stored.position_embedding
            );
        }
        // A parallel degree the --model-config writes out is used or refused, never replaced by
        // the checkpoint's (a preset's default degree is not the user's).
        if let (Some(path), Some(given)) = (&self.model_config, &given)
            && given.parallel != trained
            && self.parallel.is_none()
        {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if par_store::json_keys(&text).iter().any(|k| k == "parallel") {
                par_app::invalid!(
                    "--model-config {} sets parallel = {}, but {} holds a PAR-{trained}× model ({} transition tokens); make them agree or leave parallel out",
                    path.display(),
                    given.parallel,
                    checkpoint.display(),
                    trained - 1
                );
            }
        }
        let mut config = match given {
            Some(c) => c,
            None => self.apply_overrides(
                stored.ok_or(par_model::CheckpointError::NoConfig { path: checkpoint.into() })?,
            ),
        };
        config.parallel = trained;
        config.validate()?;
        let loaded = ParTransformer::from_state_dict(&config, &state, device);
        // A shape that does not fit names the setting the model was built from.
        let given_by = match (&self.preset, &self.model_config) {
            (Some(preset), _) => Some(format!("--preset {}", preset.name())),
            (None, Some(path)) => Some(format!("--model-config {}", path.display())),
            (None, None) => None,
        };
        match given_by {
            Some(flag) => loaded.with_context(|| flag).input(),
            None => loaded.input(),
        }
    }
}
