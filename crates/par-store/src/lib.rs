//! Checkpoint files shared by the model and the tokenizer: reading PyTorch `.pt` (via
//! `pytorch-reader`: zip, legacy pickle, tar) and safetensors into a [`StateDict`] of f32
//! weights under their upstream keys, checking keys and shapes, and writing safetensors
//! atomically with string metadata.
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub mod fingerprint;

pub use fingerprint::{FileFingerprint, InputChanged, InputFingerprints};

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file and a failure leaves nothing behind (the temporary file
/// is removed). Creates the parent directory.
///
/// # Errors
///
/// The I/O error of creating, writing or renaming.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut file, bytes)?;
    // Temporary files are created owner-only; outputs get the usual rw-r--r--.
    #[cfg(unix)]
    file.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Parses a JSON object over `defaults`: fields left out keep their default value, so configs
/// written before a field existed still load (Burn's `Config` derive requires every field).
///
/// # Errors
///
/// The JSON error (not an object, a field of the wrong type).
pub fn from_json_with_defaults<T: serde::Serialize + serde::de::DeserializeOwned>(
    defaults: &T,
    text: &str,
) -> Result<T, serde_json::Error> {
    let given: serde_json::Value = serde_json::from_str(text)?;
    let mut merged = serde_json::to_value(defaults)?;
    match (&mut merged, given) {
        (serde_json::Value::Object(base), serde_json::Value::Object(fields)) => base.extend(fields),
        (_, other) => {
            return Err(serde::de::Error::custom(format!("expected a JSON object, found {other}")));
        }
    }
    serde_json::from_value(merged)
}

/// The fields a JSON object sets explicitly (its top-level keys; none for other JSON), so that a
/// command can tell a setting the user wrote from a default [`from_json_with_defaults`] filled
/// in, and refuse, rather than replace, a written one that disagrees with the data.
pub fn json_keys(text: &str) -> Vec<String> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::Object(fields)) => fields.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

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
    #[error(
        "{path}: unexpected key `{key}` (do the parallel degree and the model size match the checkpoint?)"
    )]
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
    #[error(
        "{path}: the checkpoint stores no config; give the configuration it was made with (a preset or a config file)"
    )]
    NoConfig {
        /// The file.
        path: PathBuf,
    },
    /// The stored or given configuration is invalid.
    #[error("{path}: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A weight holds NaN or ±∞: the file is damaged, or it was saved from a diverged run.
    #[error(
        "{path}: key `{key}` holds {count} non-finite value(s) (first: {first} at flat index {index}); the checkpoint is damaged or was saved from a diverged run"
    )]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The state-dict key.
        key: String,
        /// How many values are NaN or infinite.
        count: usize,
        /// The first such value.
        first: f32,
        /// Its row-major index.
        index: usize,
    },
    /// A checkpoint of the other kind (a PAR model where a tokenizer is needed, or the reverse).
    #[error("{path} is a {found} checkpoint, not a {wanted}")]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// What the file holds.
        found: CheckpointKind,
        /// What was asked for.
        wanted: CheckpointKind,
    },
}

/// Metadata key of the PAR / LlamaGen model configuration in our safetensors checkpoints.
pub const MODEL_CONFIG_KEY: &str = "par_transformer_config";
/// Metadata key of the VQ tokenizer configuration in our safetensors checkpoints.
pub const TOKENIZER_CONFIG_KEY: &str = "par_tokenizer_config";

/// What a checkpoint holds, told from its stored config or, for upstream files, its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// A PAR / LlamaGen transformer (`tok_embeddings`, `layers.*`).
    Model,
    /// A VQ tokenizer (`encoder.*`, `quantize.embedding`).
    Tokenizer,
}

impl std::fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CheckpointKind::Model => "PAR model",
            CheckpointKind::Tokenizer => "tokenizer",
        })
    }
}

/// Refuses weights with NaN or ±∞ values, naming the key and the first bad value.
fn check_finite(path: &Path, key: &str, values: &[f32]) -> Result<(), CheckpointError> {
    let Some(index) = values.iter().position(|v| !v.is_finite()) else {
        return Ok(());
    };
    Err(CheckpointError::NonFinite {
        path: path.into(),
        key: key.into(),
        count: values[index..].iter().filter(|v| !v.is_finite()).count(),
        first: values[index],
        index,
    })
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
    /// [`CheckpointError::Io`], [`CheckpointError::Format`] or [`CheckpointError::Dtype`];
    /// [`CheckpointError::NonFinite`] for a weight holding NaN or ±∞, so no command computes
    /// with such weights.
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

    /// Reads safetensors bytes held in memory (e.g. weights compiled into a binary); `name`
    /// stands for the path in errors.
    ///
    /// # Errors
    ///
    /// As [`StateDict::read`].
    pub fn from_safetensors_bytes(bytes: &[u8], name: &str) -> Result<Self, CheckpointError> {
        Self::from_safetensors(Path::new(name), bytes)
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
            check_finite(path, &key, &values)?;
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
            check_finite(path, &name, &values)?;
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
        let bytes = self.to_safetensors_bytes()?;
        write_atomic(path, &bytes)
            .map_err(|source| CheckpointError::Io { path: path.into(), source })
    }

    /// The weights (f32) and metadata as the bytes of a safetensors file.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Format`] if safetensors refuses the tensors (naming `self.path`).
    pub fn to_safetensors_bytes(&self) -> Result<Vec<u8>, CheckpointError> {
        use safetensors::tensor::TensorView;
        let path = &self.path;
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
        safetensors::serialize(views, Some(metadata))
            .map_err(|e| CheckpointError::Format { path: path.clone(), reason: e.to_string() })
    }

    /// Stores `value` as JSON under `key` in the metadata (the inverse of
    /// [`StateDict::stored_json`]).
    ///
    /// # Panics
    ///
    /// If `value`'s `Serialize` implementation fails (never for plain config structs).
    pub fn store_json<T: serde::Serialize>(&mut self, key: &str, value: &T) {
        let json = serde_json::to_string(value).expect("value serialises");
        self.metadata.insert(key.to_string(), json);
    }

    /// The JSON value stored under `key` in the metadata, parsed, if present.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Format`] if the stored JSON does not parse as `T`.
    pub fn stored_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, CheckpointError> {
        self.metadata
            .get(key)
            .map(|json| {
                serde_json::from_str(json).map_err(|e| CheckpointError::Format {
                    path: self.path.clone(),
                    reason: format!("stored `{key}`: {e}"),
                })
            })
            .transpose()
    }

    /// What the file holds: its stored config if it has one, else its keys; `None` if neither
    /// tells.
    pub fn kind(&self) -> Option<CheckpointKind> {
        if self.metadata.contains_key(MODEL_CONFIG_KEY) {
            return Some(CheckpointKind::Model);
        }
        if self.metadata.contains_key(TOKENIZER_CONFIG_KEY) {
            return Some(CheckpointKind::Tokenizer);
        }
        let has = |prefix: &str| self.tensors.keys().any(|k| k.starts_with(prefix));
        match (has("tok_embeddings.") || has("layers."), has("encoder.") || has("quantize.")) {
            (true, false) => Some(CheckpointKind::Model),
            (false, true) => Some(CheckpointKind::Tokenizer),
            _ => None,
        }
    }

    /// Refuses a checkpoint of the other kind (e.g. a PAR model given as a tokenizer).
    ///
    /// # Errors
    ///
    /// [`CheckpointError::WrongKind`].
    pub fn expect_kind(&self, wanted: CheckpointKind) -> Result<(), CheckpointError> {
        match self.kind() {
            Some(found) if found != wanted => {
                Err(CheckpointError::WrongKind { path: self.path.clone(), found, wanted })
            }
            _ => Ok(()),
        }
    }

    /// The first weight holding NaN or ±∞, as the error [`StateDict::read`] would give for it
    /// (trainers check their weights before saving them).
    ///
    /// # Errors
    ///
    /// [`CheckpointError::NonFinite`].
    pub fn check_finite(&self) -> Result<(), CheckpointError> {
        self.tensors.iter().try_for_each(|(k, t)| check_finite(&self.path, k, &t.values))
    }

    /// Checks that every `expected` key is present with its shape (PyTorch layout) and that no
    /// other key is left except those `ignored` accepts (e.g. cache buffers).
    ///
    /// # Errors
    ///
    /// [`CheckpointError::MissingKey`], [`CheckpointError::Shape`] or
    /// [`CheckpointError::UnexpectedKey`], naming the key.
    pub fn check_keys(
        &self,
        expected: &[(String, Vec<usize>)],
        ignored: impl Fn(&str) -> bool,
    ) -> Result<(), CheckpointError> {
        let path = &self.path;
        for (key, shape) in expected {
            let tensor = self.tensors.get(key).ok_or_else(|| CheckpointError::MissingKey {
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
        match self.tensors.keys().find(|k| !known.contains(k.as_str()) && !ignored(k)) {
            Some(key) => {
                Err(CheckpointError::UnexpectedKey { path: path.clone(), key: key.clone() })
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(values: Vec<f32>, meta: &[(&str, &str)]) -> StateDict {
        let mut tensors = BTreeMap::new();
        tensors
            .insert("layers.0.w".to_string(), WeightTensor { shape: vec![values.len()], values });
        let metadata = meta.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        StateDict { tensors, metadata, path: PathBuf::from("x.safetensors") }
    }

    #[test]
    fn non_finite_weights_are_refused_on_read_naming_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.safetensors");
        state(vec![1.0, f32::NAN, 2.0, f32::INFINITY], &[]).write_safetensors(&path).unwrap();
        match StateDict::read(&path) {
            Err(CheckpointError::NonFinite { key, count, index, .. }) => {
                assert_eq!((key.as_str(), count, index), ("layers.0.w", 2, 1))
            }
            other => panic!("expected NonFinite, got {other:?}"),
        }
        state(vec![1.0, -2.0], &[]).write_safetensors(&path).unwrap();
        StateDict::read(&path).unwrap().check_finite().unwrap();
        assert!(state(vec![f32::NEG_INFINITY], &[]).check_finite().is_err());
    }

    #[test]
    fn kind_from_stored_config_or_keys() {
        assert_eq!(
            state(vec![1.0], &[(MODEL_CONFIG_KEY, "{}")]).kind(),
            Some(CheckpointKind::Model)
        );
        assert_eq!(
            state(vec![1.0], &[(TOKENIZER_CONFIG_KEY, "{}")]).kind(),
            Some(CheckpointKind::Tokenizer)
        );
        assert_eq!(state(vec![1.0], &[]).kind(), Some(CheckpointKind::Model), "layers.* keys");
        let tok = state(vec![1.0], &[(TOKENIZER_CONFIG_KEY, "{}")]);
        assert!(matches!(
            tok.expect_kind(CheckpointKind::Model),
            Err(CheckpointError::WrongKind { found: CheckpointKind::Tokenizer, .. })
        ));
        tok.expect_kind(CheckpointKind::Tokenizer).unwrap();
    }
}
