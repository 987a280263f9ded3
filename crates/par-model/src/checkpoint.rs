//! Checkpoints: import of the official PyTorch `.pt` files (PAR and LlamaGen GPTs) and of
//! safetensors, and our own self-describing safetensors checkpoints (weights under the upstream
//! key names and PyTorch layout, the [`ParTransformerConfig`] as JSON in the metadata).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use par_store::{CheckpointError, CheckpointKind, StateDict, WRAPPER_KEYS, WeightTensor};

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::{ParTransformer, ParTransformerConfig};

/// Metadata key of the model configuration in our safetensors checkpoints.
pub const CONFIG_METADATA_KEY: &str = par_store::MODEL_CONFIG_KEY;

/// The model configuration stored by [`ParTransformer::save`], if any.
///
/// # Errors
///
/// [`CheckpointError::Format`] if the stored JSON does not parse.
pub fn stored_config(state: &StateDict) -> Result<Option<ParTransformerConfig>, CheckpointError> {
    // Fields added later (e.g. `variant`) take their defaults in checkpoints written before them.
    state
        .metadata
        .get(CONFIG_METADATA_KEY)
        .map(|json| {
            par_store::from_json_with_defaults(&ParTransformerConfig::new(), json).map_err(|e| {
                CheckpointError::Format {
                    path: state.path.clone(),
                    reason: format!("stored `{CONFIG_METADATA_KEY}`: {e}"),
                }
            })
        })
        .transpose()
}

/// Every state-dict key of a model with this config and its PyTorch-layout shape (spec §4.5).
pub fn expected_keys(config: &ParTransformerConfig) -> Vec<(String, Vec<usize>)> {
    let (d, h) = (config.d_model, config.ffn_hidden());
    let mut keys = vec![
        ("cls_embedding.embedding_table.weight".to_string(), vec![config.num_classes + 1, d]),
        ("tok_embeddings.weight".to_string(), vec![config.vocab_size, d]),
    ];
    if config.parallel > 1 {
        keys.push((
            "spe_tok_embeddings.special_embeddings.weight".into(),
            vec![config.parallel - 1, d],
        ));
    }
    for i in 0..config.n_layers {
        let p = format!("layers.{i}");
        keys.extend([
            (format!("{p}.attention.wqkv.weight"), vec![3 * d, d]),
            (format!("{p}.attention.wo.weight"), vec![d, d]),
            (format!("{p}.feed_forward.w1.weight"), vec![h, d]),
            (format!("{p}.feed_forward.w3.weight"), vec![h, d]),
            (format!("{p}.feed_forward.w2.weight"), vec![d, h]),
            (format!("{p}.attention_norm.weight"), vec![d]),
            (format!("{p}.ffn_norm.weight"), vec![d]),
        ]);
    }
    keys.push(("norm.weight".into(), vec![d]));
    keys.push(("output.weight".into(), vec![config.vocab_size, d]));
    keys
}

/// Keys of buffers that upstream state dicts may hold and that carry no weights.
fn ignored(key: &str) -> bool {
    key.contains(".kv_cache.") || key.ends_with("freqs_cis") || key.ends_with("causal_mask")
}

fn transpose(w: &WeightTensor) -> Vec<f32> {
    let (rows, cols) = (w.shape[0], w.shape[1]);
    let mut out = vec![0.0; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = w.values[r * cols + c];
        }
    }
    out
}

impl ParTransformer {
    /// Builds a model of `config` from a state dict with the upstream keys, checking that every
    /// key is present with its shape and that no unknown key is left (KV-cache buffers are
    /// ignored). PyTorch `Linear` weights `[out, in]` are transposed to Burn's `[in, out]`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError`] naming the offending key, or the invalid config.
    pub fn from_state_dict(
        config: &ParTransformerConfig,
        state: &StateDict,
        device: &Device,
    ) -> Result<Self, CheckpointError> {
        let path = state.path.clone();
        state.expect_kind(CheckpointKind::Model)?;
        state.check_keys(&expected_keys(config), ignored)?;
        let mut model = config
            .init(device)
            .map_err(|e| CheckpointError::Config { path: path.clone(), reason: e.to_string() })?;
        let get = |key: &str| &state.tensors[key];
        let matrix = |key: &str| {
            let w = get(key);
            Param::from_tensor(Tensor::<2>::from_data(
                TensorData::new(w.values.clone(), [w.shape[0], w.shape[1]]),
                device,
            ))
        };
        let linear = |key: &str| {
            let w = get(key);
            Param::from_tensor(Tensor::<2>::from_data(
                TensorData::new(transpose(w), [w.shape[1], w.shape[0]]),
                device,
            ))
        };
        let vector = |key: &str| {
            let w = get(key);
            Param::from_tensor(Tensor::<1>::from_data(
                TensorData::new(w.values.clone(), [w.shape[0]]),
                device,
            ))
        };
        model.cls_embedding.embedding_table.weight = matrix("cls_embedding.embedding_table.weight");
        model.tok_embeddings.weight = matrix("tok_embeddings.weight");
        if let Some(spe) = model.spe_tok_embeddings.as_mut() {
            spe.special_embeddings.weight = matrix("spe_tok_embeddings.special_embeddings.weight");
        }
        for (i, layer) in model.layers.iter_mut().enumerate() {
            let p = format!("layers.{i}");
            layer.attention.wqkv.weight = linear(&format!("{p}.attention.wqkv.weight"));
            layer.attention.wo.weight = linear(&format!("{p}.attention.wo.weight"));
            layer.feed_forward.w1.weight = linear(&format!("{p}.feed_forward.w1.weight"));
            layer.feed_forward.w2.weight = linear(&format!("{p}.feed_forward.w2.weight"));
            layer.feed_forward.w3.weight = linear(&format!("{p}.feed_forward.w3.weight"));
            layer.attention_norm.weight = vector(&format!("{p}.attention_norm.weight"));
            layer.ffn_norm.weight = vector(&format!("{p}.ffn_norm.weight"));
        }
        model.norm.weight = vector("norm.weight");
        model.output.weight = linear("output.weight");
        Ok(model)
    }

    /// The weights under the upstream keys in PyTorch layout (inverse of
    /// [`ParTransformer::from_state_dict`]), with the config stored as metadata.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Format`] if a weight cannot be read back from the device.
    pub fn to_state_dict(&self) -> Result<StateDict, CheckpointError> {
        let read = |t: TensorData, key: &str| {
            t.try_into_vec_as::<f32>().map_err(|e| CheckpointError::Format {
                path: PathBuf::new(),
                reason: format!("reading `{key}`: {e:?}"),
            })
        };
        let mut tensors = BTreeMap::new();
        let mut put =
            |key: String, tensor: TensorData, linear: bool| -> Result<(), CheckpointError> {
                let shape = tensor.shape().to_vec();
                let values = read(tensor, &key)?;
                let w = WeightTensor { shape: shape.clone(), values };
                let w = if linear {
                    WeightTensor { shape: vec![shape[1], shape[0]], values: transpose(&w) }
                } else {
                    w
                };
                tensors.insert(key, w);
                Ok(())
            };
        put(
            "cls_embedding.embedding_table.weight".into(),
            self.cls_embedding.embedding_table.weight.val().into_data(),
            false,
        )?;
        put("tok_embeddings.weight".into(), self.tok_embeddings.weight.val().into_data(), false)?;
        if let Some(spe) = &self.spe_tok_embeddings {
            put(
                "spe_tok_embeddings.special_embeddings.weight".into(),
                spe.special_embeddings.weight.val().into_data(),
                false,
            )?;
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let p = format!("layers.{i}");
            put(
                format!("{p}.attention.wqkv.weight"),
                layer.attention.wqkv.weight.val().into_data(),
                true,
            )?;
            put(
                format!("{p}.attention.wo.weight"),
                layer.attention.wo.weight.val().into_data(),
                true,
            )?;
            put(
                format!("{p}.feed_forward.w1.weight"),
                layer.feed_forward.w1.weight.val().into_data(),
                true,
            )?;
            put(
                format!("{p}.feed_forward.w2.weight"),
                layer.feed_forward.w2.weight.val().into_data(),
                true,
            )?;
            put(
                format!("{p}.feed_forward.w3.weight"),
                layer.feed_forward.w3.weight.val().into_data(),
                true,
            )?;
            put(
                format!("{p}.attention_norm.weight"),
                layer.attention_norm.weight.val().into_data(),
                false,
            )?;
            put(format!("{p}.ffn_norm.weight"), layer.ffn_norm.weight.val().into_data(), false)?;
        }
        put("norm.weight".into(), self.norm.weight.val().into_data(), false)?;
        put("output.weight".into(), self.output.weight.val().into_data(), true)?;
        let mut state = StateDict { tensors, ..StateDict::default() };
        state.store_json(CONFIG_METADATA_KEY, self.config());
        Ok(state)
    }

    /// Saves weights and config as one safetensors file (atomic write). PyTorch reads it with
    /// `safetensors.torch.load_file` under the upstream keys.
    ///
    /// # Errors
    ///
    /// [`CheckpointError`] on I/O failure.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        self.to_state_dict()?.write_safetensors(path)
    }

    /// Loads a checkpoint: ours (config stored inside) or an upstream `.pt` / safetensors file.
    /// `config` overrides the stored one (e.g. a larger `grid_size` for zero-shot higher
    /// resolution) and is required for files that store none.
    ///
    /// # Errors
    ///
    /// [`CheckpointError`].
    pub fn load(
        path: &Path,
        config: Option<&ParTransformerConfig>,
        device: &Device,
    ) -> Result<Self, CheckpointError> {
        let state = StateDict::read(path)?;
        state.expect_kind(CheckpointKind::Model)?;
        let config = match config {
            Some(c) => c.clone(),
            None => stored_config(&state)?
                .ok_or_else(|| CheckpointError::NoConfig { path: path.into() })?,
        };
        Self::from_state_dict(&config, &state, device)
    }
}
