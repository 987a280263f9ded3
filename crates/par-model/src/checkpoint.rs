//! Checkpoints: import of the official PyTorch `.pt` files (PAR and LlamaGen GPTs) and of
//! safetensors, and our own self-describing safetensors checkpoints (weights under the upstream
//! key names and PyTorch layout, the [`ParTransformerConfig`] as JSON in the metadata).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::{ConfigError, ParTransformer, ParTransformerConfig};

/// Metadata key of the model configuration in our safetensors checkpoints.
pub const CONFIG_METADATA_KEY: &str = "par_transformer_config";

/// Why a checkpoint could not be read, written or loaded into a model.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Not a PyTorch or safetensors checkpoint, or a damaged one.
    #[error("{path}: not a readable checkpoint: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the reader said.
        reason: String,
    },
    /// A weight the model needs is absent.
    #[error("{path}: missing key `{key}`")]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The state-dict key.
        key: String,
    },
    /// A weight the model does not have.
    #[error("{path}: unexpected key `{key}` (does --parallel / the preset match the checkpoint?)")]
    UnexpectedKey {
        /// The file.
        path: PathBuf,
        /// The state-dict key.
        key: String,
    },
    /// A weight of the wrong shape.
    #[error("{path}: key `{key}` has shape {actual:?}, the model expects {expected:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The state-dict key.
        key: String,
        /// The model's shape (PyTorch layout).
        expected: Vec<usize>,
        /// The file's shape.
        actual: Vec<usize>,
    },
    /// A tensor of a dtype we cannot turn into floats.
    #[error("{path}: key `{key}` has unsupported dtype {dtype}")]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The state-dict key.
        key: String,
        /// The dtype's name.
        dtype: String,
    },
    /// No configuration given and none stored in the file.
    #[error("{path}: the checkpoint stores no model config; pass --preset or --model-config")]
    NoConfig {
        /// The file.
        path: PathBuf,
    },
    /// The stored or given configuration is invalid.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ConfigError,
    },
}

/// One weight: shape (PyTorch layout) and values as f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightTensor {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values.
    pub values: Vec<f32>,
}

/// The weights of a checkpoint by state-dict key, plus the file's metadata (safetensors only).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDict {
    /// Weights by key.
    pub tensors: BTreeMap<String, WeightTensor>,
    /// String metadata (safetensors `__metadata__`).
    pub metadata: BTreeMap<String, String>,
    /// Where it came from (for error messages).
    pub path: PathBuf,
}

/// Wrapper keys tried in order when a PyTorch checkpoint nests its state dict (spec §4.6:
/// `model` for DDP checkpoints, `module` for DeepSpeed, `state_dict`; a bare dict otherwise).
pub const WRAPPER_KEYS: [&str; 3] = ["model", "module", "state_dict"];

/// Float encodings found in checkpoints.
#[derive(Debug, Clone, Copy)]
enum FloatKind {
    F32,
    F16,
    BF16,
    F64,
}

/// Decodes packed floats into f32: little-endian bytes (safetensors) when `little_endian`, else
/// native-endian (what `pytorch-reader` returns).
fn decode_floats(kind: FloatKind, bytes: &[u8], little_endian: bool) -> Vec<f32> {
    let le = little_endian || cfg!(target_endian = "little");
    fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
        b.try_into().expect("chunk of N bytes")
    }
    match kind {
        FloatKind::F32 => bytes
            .chunks_exact(4)
            .map(|b| if le { f32::from_le_bytes(arr(b)) } else { f32::from_be_bytes(arr(b)) })
            .collect(),
        FloatKind::F16 => bytes
            .chunks_exact(2)
            .map(|b| {
                if le { half::f16::from_le_bytes(arr(b)) } else { half::f16::from_be_bytes(arr(b)) }
                    .to_f32()
            })
            .collect(),
        FloatKind::BF16 => bytes
            .chunks_exact(2)
            .map(|b| {
                if le {
                    half::bf16::from_le_bytes(arr(b))
                } else {
                    half::bf16::from_be_bytes(arr(b))
                }
                .to_f32()
            })
            .collect(),
        FloatKind::F64 => bytes
            .chunks_exact(8)
            .map(
                |b| if le { f64::from_le_bytes(arr(b)) } else { f64::from_be_bytes(arr(b)) } as f32,
            )
            .collect(),
    }
}

fn is_safetensors(bytes: &[u8]) -> bool {
    // 8-byte little-endian header length, then a JSON object.
    bytes.len() >= 9 && bytes[8] == b'{'
}

impl StateDict {
    /// Reads a safetensors file or a PyTorch checkpoint (zip or legacy pickle), unwrapping the
    /// state dict from `model` / `module` / `state_dict` if present and skipping non-tensor
    /// entries (e.g. a pickled `args`). Floats of any precision become f32.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Io`], [`CheckpointError::Format`] or [`CheckpointError::Dtype`].
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path)
            .map_err(|source| CheckpointError::Io { path: path.into(), source })?;
        if is_safetensors(&bytes) {
            Self::from_safetensors(path, &bytes)
        } else {
            drop(bytes);
            Self::from_pytorch(path)
        }
    }

    fn from_safetensors(path: &Path, bytes: &[u8]) -> Result<Self, CheckpointError> {
        use safetensors::{Dtype, SafeTensors};
        let format = |reason: String| CheckpointError::Format { path: path.into(), reason };
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for (key, view) in st.tensors() {
            let kind = match view.dtype() {
                Dtype::F32 => FloatKind::F32,
                Dtype::F16 => FloatKind::F16,
                Dtype::BF16 => FloatKind::BF16,
                Dtype::F64 => FloatKind::F64,
                other => {
                    let dtype = format!("{other:?}");
                    return Err(CheckpointError::Dtype { path: path.into(), key, dtype });
                }
            };
            let values = decode_floats(kind, view.data(), true);
            tensors.insert(key, WeightTensor { shape: view.shape().to_vec(), values });
        }
        let metadata = meta.metadata().clone().unwrap_or_default().into_iter().collect();
        Ok(Self { tensors, metadata, path: path.into() })
    }

    fn from_pytorch(path: &Path) -> Result<Self, CheckpointError> {
        use pytorch_reader::{DType, PytorchReader};
        let format = |reason: String| CheckpointError::Format { path: path.into(), reason };
        let reader = PytorchReader::new(path).map_err(|e| format(e.to_string()))?;
        let all = reader.tensors();
        // A wrapped checkpoint shows its tensors as `model.<key>`; take the first wrapper present.
        let prefix = WRAPPER_KEYS
            .iter()
            .map(|w| format!("{w}."))
            .find(|p| all.keys().any(|k| k.starts_with(p.as_str())));
        let mut tensors = BTreeMap::new();
        for (key, tensor) in all.iter() {
            let name = match &prefix {
                Some(p) => match key.strip_prefix(p.as_str()) {
                    Some(rest) => rest.to_string(),
                    None => continue, // other top-level entries: optimizer state, ema, ...
                },
                None => key.clone(),
            };
            let kind = match tensor.dtype() {
                DType::F32 => FloatKind::F32,
                DType::F16 => FloatKind::F16,
                DType::BF16 => FloatKind::BF16,
                DType::F64 => FloatKind::F64,
                // Integer and bool buffers (e.g. a VQ's `codebook_used`) carry no weights; if the
                // model expected one, the key check reports it as missing.
                _ => continue,
            };
            let bytes = tensor.read().map_err(|e| format(e.to_string()))?;
            let values = decode_floats(kind, &bytes, false);
            tensors.insert(name, WeightTensor { shape: tensor.shape().to_vec(), values });
        }
        Ok(Self { tensors, metadata: BTreeMap::new(), path: path.into() })
    }

    /// Writes the weights (f32) and metadata as safetensors, atomically (temporary file + rename).
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Io`] or [`CheckpointError::Format`].
    pub fn write_safetensors(&self, path: &Path) -> Result<(), CheckpointError> {
        use safetensors::tensor::TensorView;
        let io = |source| CheckpointError::Io { path: path.into(), source };
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .tensors
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    t.shape.clone(),
                )
            })
            .collect();
        let views: Vec<(String, TensorView<'_>)> = bytes
            .iter()
            .map(|(k, b, s)| {
                (
                    k.clone(),
                    TensorView::new(safetensors::Dtype::F32, s.clone(), b).expect("sizes match"),
                )
            })
            .collect();
        let metadata: std::collections::HashMap<String, String> =
            self.metadata.clone().into_iter().collect();
        let serialized = safetensors::serialize(views, Some(metadata))
            .map_err(|e| CheckpointError::Format { path: path.into(), reason: e.to_string() })?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        std::io::Write::write_all(&mut file, &serialized).map_err(io)?;
        file.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// The model configuration stored by [`ParTransformer::save`], if any.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Format`] if the stored JSON does not parse.
    pub fn stored_config(&self) -> Result<Option<ParTransformerConfig>, CheckpointError> {
        self.metadata
            .get(CONFIG_METADATA_KEY)
            .map(|json| {
                serde_json::from_str(json).map_err(|e| CheckpointError::Format {
                    path: self.path.clone(),
                    reason: format!("stored config: {e}"),
                })
            })
            .transpose()
    }
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
        let expected = expected_keys(config);
        for (key, shape) in &expected {
            let tensor = state.tensors.get(key).ok_or_else(|| CheckpointError::MissingKey {
                path: path.clone(),
                key: key.clone(),
            })?;
            if &tensor.shape != shape {
                return Err(CheckpointError::Shape {
                    path: path.clone(),
                    key: key.clone(),
                    expected: shape.clone(),
                    actual: tensor.shape.clone(),
                });
            }
        }
        let known: std::collections::HashSet<&str> =
            expected.iter().map(|(k, _)| k.as_str()).collect();
        if let Some(key) = state.tensors.keys().find(|k| !known.contains(k.as_str()) && !ignored(k))
        {
            return Err(CheckpointError::UnexpectedKey { path, key: key.clone() });
        }
        let mut model = config
            .init(device)
            .map_err(|source| CheckpointError::Config { path: path.clone(), source })?;
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
        let config = serde_json::to_string(self.config()).expect("config serialises");
        Ok(StateDict {
            tensors,
            metadata: [(CONFIG_METADATA_KEY.to_string(), config)].into(),
            path: PathBuf::new(),
        })
    }

    /// Saves weights and config as one safetensors file (atomic write). PyTorch reads it with
    /// `safetensors.torch.load_file` under the upstream keys.
    ///
    /// # Errors
    ///
    /// [`CheckpointError`] on I/O failure.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let mut state = self.to_state_dict()?;
        state.path = path.into();
        state.write_safetensors(path)
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
        let config = match config {
            Some(c) => c.clone(),
            None => state
                .stored_config()?
                .ok_or_else(|| CheckpointError::NoConfig { path: path.into() })?,
        };
        Self::from_state_dict(&config, &state, device)
    }
}
