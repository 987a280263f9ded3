//! Video tokenizer checkpoints: self-describing safetensors through `par-store`, keyed by the
//! module path (`encoder.levels.0.res.0.conv1.conv.weight`, …; our own names — no upstream
//! checkpoint exists, docs/spec.md §8), the config JSON in the metadata under
//! [`VIDEO_CONFIG_METADATA_KEY`] (distinct from the image tokenizer's key, so the two kinds of
//! file are told apart).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use burn::tensor::TensorData;
use par_store::{CheckpointError, CheckpointKind, StateDict, WeightTensor};

use super::{VideoTokenizer, VideoTokenizerConfig};

/// Metadata key of the video tokenizer configuration in our safetensors checkpoints.
pub const VIDEO_CONFIG_METADATA_KEY: &str = "par_video_tokenizer_config";

/// Why a video tokenizer checkpoint could not be read, written or loaded.
#[derive(Debug, thiserror::Error)]
pub enum VideoCheckpointError {
    /// Reading / writing the file, or a missing, unexpected or mis-shaped key (names the file
    /// and the key).
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The file is not a video tokenizer checkpoint (an image tokenizer, a PAR model, or a file
    /// without our metadata).
    #[error(
        "{path} is {found}, not a video tokenizer checkpoint (no `{VIDEO_CONFIG_METADATA_KEY}` metadata)"
    )]
    WrongKind {
        /// The file.
        path: PathBuf,
        /// What it holds, in words.
        found: &'static str,
    },
    /// The stored configuration does not parse or is invalid.
    #[error("{path}: stored `{VIDEO_CONFIG_METADATA_KEY}`: {reason}")]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Collects `(key, shape, data)` of every float parameter, the key being its dotted module path;
/// `data` only when `with_data` (shapes come from the lazy initialiser, so collecting keys
/// allocates nothing).
struct Collect<F> {
    path: Vec<String>,
    f: F,
    with_data: bool,
}

impl<F: FnMut(String, Vec<usize>, Option<TensorData>)> ModuleVisitor for Collect<F> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let shape = param.lazy_shape().to_vec();
        let data = self.with_data.then(|| param.val().into_data());
        (self.f)(self.path.join("."), shape, data);
    }
}

/// Replaces every float parameter by the state dict's tensor of its key (keys and shapes are
/// checked before).
struct Load<'a> {
    path: Vec<String>,
    state: &'a StateDict,
    device: &'a Device,
}

impl ModuleMapper for Load<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let w = &self.state.tensors[&self.path.join(".")];
        let tensor =
            Tensor::from_data(TensorData::new(w.values.clone(), w.shape.clone()), self.device);
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}

fn collect(
    model: &VideoTokenizer,
    with_data: bool,
    mut f: impl FnMut(String, Vec<usize>, Option<TensorData>),
) {
    let mut visitor = Collect { path: Vec::new(), f: &mut f, with_data };
    model.visit(&mut visitor);
}

/// Every state-dict key of a video tokenizer with this config and its shape. Parameters are
/// initialised lazily: nothing is drawn or allocated on `device`.
///
/// # Errors
///
/// [`VideoCheckpointError::Config`] (with an empty path) if the config is invalid.
pub fn video_expected_keys(
    config: &VideoTokenizerConfig,
    device: &Device,
) -> Result<Vec<(String, Vec<usize>)>, VideoCheckpointError> {
    let model = config.init(device).map_err(|e| VideoCheckpointError::Config {
        path: PathBuf::new(),
        reason: e.to_string(),
    })?;
    Ok(keys_of(&model))
}

fn keys_of(model: &VideoTokenizer) -> Vec<(String, Vec<usize>)> {
    let mut keys = Vec::new();
    collect(model, false, |key, shape, _| keys.push((key, shape)));
    keys
}

/// What a state dict that is not a video tokenizer holds, in words.
fn describe(state: &StateDict) -> &'static str {
    match state.kind() {
        Some(CheckpointKind::Tokenizer) => "an image (VQ) tokenizer checkpoint",
        Some(CheckpointKind::Model) => "a PAR model checkpoint",
        None => "a checkpoint of unknown kind",
    }
}

/// The video tokenizer configuration stored by [`VideoTokenizer::save`], if any.
///
/// # Errors
///
/// [`VideoCheckpointError::Config`] if the stored JSON does not parse.
pub fn stored_video_config(
    state: &StateDict,
) -> Result<Option<VideoTokenizerConfig>, VideoCheckpointError> {
    state
        .metadata
        .get(VIDEO_CONFIG_METADATA_KEY)
        .map(|json| {
            VideoTokenizerConfig::from_json(json).map_err(|e| VideoCheckpointError::Config {
                path: state.path.clone(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

impl VideoTokenizer {
    /// A tokenizer with the weights and stored config of `state` (our key names).
    ///
    /// # Errors
    ///
    /// [`VideoCheckpointError::WrongKind`] for a state dict without our metadata (naming its
    /// path), [`VideoCheckpointError::Config`] for a bad stored config, and
    /// [`VideoCheckpointError::Checkpoint`] naming a missing, unexpected or mis-shaped key.
    pub fn from_state_dict(
        state: &StateDict,
        device: &Device,
    ) -> Result<Self, VideoCheckpointError> {
        let config = stored_video_config(state)?.ok_or_else(|| {
            VideoCheckpointError::WrongKind { path: state.path.clone(), found: describe(state) }
        })?;
        let model = config.init(device).map_err(|e| VideoCheckpointError::Config {
            path: state.path.clone(),
            reason: e.to_string(),
        })?;
        state.check_keys(&keys_of(&model), |_| false)?;
        let mut loader = Load { path: Vec::new(), state, device };
        Ok(model.map(&mut loader))
    }

    /// Reads a checkpoint written by [`VideoTokenizer::save`].
    ///
    /// # Errors
    ///
    /// As [`VideoTokenizer::from_state_dict`], plus I/O and format errors naming `path`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, VideoCheckpointError> {
        Self::from_state_dict(&StateDict::read(path)?, device)
    }

    /// The weights (f32) under their module paths, with the config as metadata
    /// ([`VIDEO_CONFIG_METADATA_KEY`]).
    ///
    /// # Errors
    ///
    /// [`VideoCheckpointError::Checkpoint`] ([`CheckpointError::Format`]) if a weight cannot be
    /// read back from the device.
    pub fn to_state_dict(&self) -> Result<StateDict, VideoCheckpointError> {
        let mut tensors = BTreeMap::new();
        let mut failure = None;
        collect(self, true, |key, shape, data| {
            match data.expect("collected with data").try_into_vec_as::<f32>() {
                Ok(values) => {
                    tensors.insert(key, WeightTensor { shape, values });
                }
                Err(e) => failure = Some(format!("reading `{key}`: {e:?}")),
            }
        });
        if let Some(reason) = failure {
            return Err(CheckpointError::Format { path: PathBuf::new(), reason }.into());
        }
        let mut state = StateDict { tensors, ..StateDict::default() };
        state.store_json(VIDEO_CONFIG_METADATA_KEY, self.config());
        Ok(state)
    }

    /// Writes the tokenizer as safetensors, atomically, with its config in the metadata, so
    /// [`VideoTokenizer::load`] needs nothing else.
    ///
    /// # Errors
    ///
    /// [`VideoCheckpointError::Checkpoint`] on a read-back or write failure (naming `path`).
    pub fn save(&self, path: &Path) -> Result<(), VideoCheckpointError> {
        Ok(self.to_state_dict()?.write_safetensors(path)?)
    }
}
