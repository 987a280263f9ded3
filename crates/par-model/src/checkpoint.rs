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

/// How a parameter is stored under its upstream key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// An embedding table: the same `[rows, cols]` layout in both.
    Matrix,
    /// A linear layer: PyTorch's `[out, in]`, Burn's `[in, out]` (transposed on load and save).
    Linear,
    /// A norm weight `[d]`.
    Vector,
}

/// Which parameter of the model a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    ClassEmbedding,
    TokenEmbedding,
    TransitionTokens,
    PositionFrame,
    PositionRow,
    PositionCol,
    Wqkv(usize),
    Wo(usize),
    W1(usize),
    W2(usize),
    W3(usize),
    AttentionNorm(usize),
    FfnNorm(usize),
    Norm,
    Output,
}

/// One entry of the key table.
struct Key {
    name: String,
    /// The upstream (PyTorch) shape.
    shape: Vec<usize>,
    layout: Layout,
    field: Field,
}

/// The key table of a configuration, in upstream registration order (docs/spec.md §4.5): the
/// one list that [`expected_keys`], [`ParTransformer::from_state_dict`] and
/// [`ParTransformer::to_state_dict`] walk.
fn key_table(config: &ParTransformerConfig) -> Vec<Key> {
    let (d, h) = (config.d_model, config.ffn_hidden());
    let key = |name: String, shape: Vec<usize>, layout, field| Key { name, shape, layout, field };
    let mut keys = vec![
        key(
            "cls_embedding.embedding_table.weight".into(),
            vec![config.num_classes + 1, d],
            Layout::Matrix,
            Field::ClassEmbedding,
        ),
        key(
            "tok_embeddings.weight".into(),
            vec![config.vocab_size, d],
            Layout::Matrix,
            Field::TokenEmbedding,
        ),
    ];
    if config.parallel > 1 {
        keys.push(key(
            "spe_tok_embeddings.special_embeddings.weight".into(),
            vec![config.parallel - 1, d],
            Layout::Matrix,
            Field::TransitionTokens,
        ));
    }
    if config.position_embedding == crate::PositionEmbedding::Learned {
        // Ours only: no upstream model has learned positions (docs/spec.md §8).
        for (axis, rows, field) in [
            ("frame", config.frames, Field::PositionFrame),
            ("row", config.grid_size, Field::PositionRow),
            ("col", config.grid_size, Field::PositionCol),
        ] {
            keys.push(key(
                format!("pos_embeddings.{axis}.weight"),
                vec![rows, d],
                Layout::Matrix,
                field,
            ));
        }
    }
    for i in 0..config.n_layers {
        let p = format!("layers.{i}");
        keys.extend([
            key(
                format!("{p}.attention.wqkv.weight"),
                vec![3 * d, d],
                Layout::Linear,
                Field::Wqkv(i),
            ),
            key(format!("{p}.attention.wo.weight"), vec![d, d], Layout::Linear, Field::Wo(i)),
            key(format!("{p}.feed_forward.w1.weight"), vec![h, d], Layout::Linear, Field::W1(i)),
            key(format!("{p}.feed_forward.w3.weight"), vec![h, d], Layout::Linear, Field::W3(i)),
            key(format!("{p}.feed_forward.w2.weight"), vec![d, h], Layout::Linear, Field::W2(i)),
            key(
                format!("{p}.attention_norm.weight"),
                vec![d],
                Layout::Vector,
                Field::AttentionNorm(i),
            ),
            key(format!("{p}.ffn_norm.weight"), vec![d], Layout::Vector, Field::FfnNorm(i)),
        ]);
    }
    keys.push(key("norm.weight".into(), vec![d], Layout::Vector, Field::Norm));
    keys.push(key(
        "output.weight".into(),
        vec![config.vocab_size, d],
        Layout::Linear,
        Field::Output,
    ));
    keys
}

/// A parameter of the model, by rank.
enum Slot<'a> {
    Two(&'a mut Param<Tensor<2>>),
    One(&'a mut Param<Tensor<1>>),
}

/// The parameter `field` names, or `None` when the model lacks it (no transition tokens at
/// n = 1; a layer index past the model's).
fn slot(model: &mut ParTransformer, field: Field) -> Option<Slot<'_>> {
    Some(match field {
        Field::ClassEmbedding => Slot::Two(&mut model.cls_embedding.embedding_table.weight),
        Field::TokenEmbedding => Slot::Two(&mut model.tok_embeddings.weight),
        Field::TransitionTokens => {
            Slot::Two(&mut model.spe_tok_embeddings.as_mut()?.special_embeddings.weight)
        }
        Field::PositionFrame => Slot::Two(&mut model.pos_embeddings.as_mut()?.frame.weight),
        Field::PositionRow => Slot::Two(&mut model.pos_embeddings.as_mut()?.row.weight),
        Field::PositionCol => Slot::Two(&mut model.pos_embeddings.as_mut()?.col.weight),
        Field::Wqkv(i) => Slot::Two(&mut model.layers.get_mut(i)?.attention.wqkv.weight),
        Field::Wo(i) => Slot::Two(&mut model.layers.get_mut(i)?.attention.wo.weight),
        Field::W1(i) => Slot::Two(&mut model.layers.get_mut(i)?.feed_forward.w1.weight),
        Field::W2(i) => Slot::Two(&mut model.layers.get_mut(i)?.feed_forward.w2.weight),
        Field::W3(i) => Slot::Two(&mut model.layers.get_mut(i)?.feed_forward.w3.weight),
        Field::AttentionNorm(i) => Slot::One(&mut model.layers.get_mut(i)?.attention_norm.weight),
        Field::FfnNorm(i) => Slot::One(&mut model.layers.get_mut(i)?.ffn_norm.weight),
        Field::Norm => Slot::One(&mut model.norm.weight),
        Field::Output => Slot::Two(&mut model.output.weight),
    })
}

/// Every key a checkpoint of `config` must hold, with its upstream shape, in registration order.
pub fn expected_keys(config: &ParTransformerConfig) -> Vec<(String, Vec<usize>)> {
    key_table(config).into_iter().map(|k| (k.name, k.shape)).collect()
}

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
        for key in key_table(config) {
            let w = &state.tensors[&key.name];
            let (values, shape) = match key.layout {
                Layout::Linear => (transpose(w), vec![w.shape[1], w.shape[0]]),
                Layout::Matrix | Layout::Vector => (w.values.clone(), w.shape.clone()),
            };
            match slot(&mut model, key.field).expect("the table lists the config's parameters") {
                Slot::Two(p) => {
                    *p = Param::from_tensor(Tensor::from_data(
                        TensorData::new(values, [shape[0], shape[1]]),
                        device,
                    ))
                }
                Slot::One(p) => {
                    *p = Param::from_tensor(Tensor::from_data(
                        TensorData::new(values, [shape[0]]),
                        device,
                    ))
                }
            }
        }
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
        let mut model = self.clone();
        for key in key_table(self.config()) {
            let data = match slot(&mut model, key.field)
                .expect("the table lists the config's parameters")
            {
                Slot::Two(p) => p.val().into_data(),
                Slot::One(p) => p.val().into_data(),
            };
            let stored =
                WeightTensor { shape: data.shape().to_vec(), values: read(data, &key.name)? };
            let w = match key.layout {
                Layout::Linear => {
                    WeightTensor { shape: key.shape.clone(), values: transpose(&stored) }
                }
                Layout::Matrix | Layout::Vector => stored,
            };
            tensors.insert(key.name, w);
        }
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
