//! Import of LlamaGen VQ checkpoints (`vq_ds16_c2i.pt` layout, docs/spec.md §6.3): every key and
//! shape checked, the error names the key; the `quantize.codebook_used` statistics buffer is
//! ignored. Conv weights keep PyTorch's `[out, in, kh, kw]` layout; GroupNorm `weight`/`bias`
//! become Burn's `gamma`/`beta`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, GroupNorm};
use burn::prelude::*;
use burn::tensor::TensorData;
use par_store::WeightTensor;
pub use par_store::{CheckpointError, StateDict};

use crate::blocks::{AttnBlock, Level, Mid, ResnetBlock};
use crate::{VqTokenizer, VqTokenizerConfig};

/// A parameterised leaf of the tokenizer and its upstream key prefix.
enum Leaf<'a> {
    Conv(&'a mut Conv2d),
    Norm(&'a mut GroupNorm),
    Codebook(&'a mut Embedding),
}

type Visit<'v> = dyn FnMut(String, Leaf<'_>) + 'v;

fn res(block: &mut ResnetBlock, p: &str, f: &mut Visit<'_>) {
    f(format!("{p}.norm1"), Leaf::Norm(&mut block.norm1));
    f(format!("{p}.conv1"), Leaf::Conv(&mut block.conv1));
    f(format!("{p}.norm2"), Leaf::Norm(&mut block.norm2));
    f(format!("{p}.conv2"), Leaf::Conv(&mut block.conv2));
    if let Some(c) = block.nin_shortcut.as_mut() {
        f(format!("{p}.nin_shortcut"), Leaf::Conv(c));
    }
}

fn attn(block: &mut AttnBlock, p: &str, f: &mut Visit<'_>) {
    f(format!("{p}.norm"), Leaf::Norm(&mut block.norm));
    f(format!("{p}.q"), Leaf::Conv(&mut block.q));
    f(format!("{p}.k"), Leaf::Conv(&mut block.k));
    f(format!("{p}.v"), Leaf::Conv(&mut block.v));
    f(format!("{p}.proj_out"), Leaf::Conv(&mut block.proj_out));
}

fn mid(m: &mut Mid, p: &str, f: &mut Visit<'_>) {
    res(&mut m.res_in, &format!("{p}.0"), f);
    attn(&mut m.attn, &format!("{p}.1"), f);
    res(&mut m.res_out, &format!("{p}.2"), f);
}

fn levels(levels: &mut [Level], p: &str, f: &mut Visit<'_>) {
    for (i, level) in levels.iter_mut().enumerate() {
        for (j, r) in level.res.iter_mut().enumerate() {
            res(r, &format!("{p}.conv_blocks.{i}.res.{j}"), f);
        }
        for (j, a) in level.attn.iter_mut().enumerate() {
            attn(a, &format!("{p}.conv_blocks.{i}.attn.{j}"), f);
        }
        if let Some(d) = level.downsample.as_mut() {
            f(format!("{p}.conv_blocks.{i}.downsample.conv"), Leaf::Conv(&mut d.conv));
        }
        if let Some(u) = level.upsample.as_mut() {
            f(format!("{p}.conv_blocks.{i}.upsample.conv"), Leaf::Conv(&mut u.conv));
        }
    }
}

/// Visits every parameterised leaf with its upstream key prefix.
fn walk(model: &mut VqTokenizer, f: &mut Visit<'_>) {
    let e = &mut model.encoder;
    f("encoder.conv_in".into(), Leaf::Conv(&mut e.conv_in));
    levels(&mut e.conv_blocks, "encoder", f);
    mid(&mut e.mid, "encoder.mid", f);
    f("encoder.norm_out".into(), Leaf::Norm(&mut e.norm_out));
    f("encoder.conv_out".into(), Leaf::Conv(&mut e.conv_out));
    let d = &mut model.decoder;
    f("decoder.conv_in".into(), Leaf::Conv(&mut d.conv_in));
    mid(&mut d.mid, "decoder.mid", f);
    levels(&mut d.conv_blocks, "decoder", f);
    f("decoder.norm_out".into(), Leaf::Norm(&mut d.norm_out));
    f("decoder.conv_out".into(), Leaf::Conv(&mut d.conv_out));
    f("quantize.embedding".into(), Leaf::Codebook(&mut model.quantize.embedding));
    f("quant_conv".into(), Leaf::Conv(&mut model.quant_conv));
    f("post_quant_conv".into(), Leaf::Conv(&mut model.post_quant_conv));
}

/// Refuses a video tokenizer checkpoint (its keys start with `encoder.` too, so `par-store`
/// would take it for an image tokenizer).
fn refuse_video(state: &StateDict) -> Result<(), CheckpointError> {
    if state.metadata.contains_key(crate::video::VIDEO_CONFIG_METADATA_KEY) {
        return Err(CheckpointError::Config {
            path: state.path.clone(),
            reason: "a video tokenizer checkpoint, not an image (VQ) tokenizer".into(),
        });
    }
    Ok(())
}

fn ignored(key: &str) -> bool {
    key == "quantize.codebook_used"
}

fn param<const D: usize>(state: &StateDict, key: &str, device: &Device) -> Param<Tensor<D>> {
    let w = &state.tensors[key];
    let shape: [usize; D] = w.shape.clone().try_into().expect("shape checked against the model");
    Param::from_tensor(Tensor::from_data(TensorData::new(w.values.clone(), shape), device))
}

/// Every state-dict key of a tokenizer with this config and its shape (PyTorch layout).
/// Parameters are initialised lazily: nothing is drawn or allocated on `device`.
///
/// # Errors
///
/// [`CheckpointError::Config`] if the config is invalid.
pub fn expected_keys(
    config: &VqTokenizerConfig,
    device: &Device,
) -> Result<Vec<(String, Vec<usize>)>, CheckpointError> {
    let mut model = config
        .init(device)
        .map_err(|e| CheckpointError::Config { path: Default::default(), reason: e.to_string() })?;
    Ok(keys_of(&mut model))
}

fn keys_of(model: &mut VqTokenizer) -> Vec<(String, Vec<usize>)> {
    let mut keys = Vec::new();
    walk(model, &mut |p, leaf| match leaf {
        Leaf::Conv(c) => {
            keys.push((format!("{p}.weight"), c.weight.lazy_shape().to_vec()));
            if let Some(b) = &c.bias {
                keys.push((format!("{p}.bias"), b.lazy_shape().to_vec()));
            }
        }
        Leaf::Norm(n) => {
            if let (Some(g), Some(b)) = (&n.gamma, &n.beta) {
                keys.push((format!("{p}.weight"), g.lazy_shape().to_vec()));
                keys.push((format!("{p}.bias"), b.lazy_shape().to_vec()));
            }
        }
        Leaf::Codebook(e) => keys.push((format!("{p}.weight"), e.weight.lazy_shape().to_vec())),
    });
    keys
}

impl VqTokenizer {
    /// A tokenizer of `config` with the weights of `state` (upstream key names).
    ///
    /// # Errors
    ///
    /// [`CheckpointError`] naming a missing, unexpected or mis-shaped key, or the invalid config;
    /// [`CheckpointError::Config`] for a video tokenizer checkpoint.
    pub fn from_state_dict(
        config: &VqTokenizerConfig,
        state: &StateDict,
        device: &Device,
    ) -> Result<Self, CheckpointError> {
        state.expect_kind(par_store::CheckpointKind::Tokenizer)?;
        refuse_video(state)?;
        let mut model = config.init(device).map_err(|e| CheckpointError::Config {
            path: state.path.clone(),
            reason: e.to_string(),
        })?;
        state.check_keys(&keys_of(&mut model), ignored)?;
        walk(&mut model, &mut |p, leaf| match leaf {
            Leaf::Conv(c) => {
                c.weight = param(state, &format!("{p}.weight"), device);
                if c.bias.is_some() {
                    c.bias = Some(param(state, &format!("{p}.bias"), device));
                }
            }
            Leaf::Norm(n) => {
                if n.gamma.is_some() {
                    n.gamma = Some(param(state, &format!("{p}.weight"), device));
                    n.beta = Some(param(state, &format!("{p}.bias"), device));
                }
            }
            Leaf::Codebook(e) => e.weight = param(state, &format!("{p}.weight"), device),
        });
        Ok(model)
    }

    /// Reads a checkpoint: ours ([`VqTokenizer::save`], config stored inside) or a LlamaGen `.pt`
    /// (state dict bare or under `model` / `module` / `state_dict`) / safetensors file. `config`
    /// overrides the stored one and is required for files that store none.
    ///
    /// # Errors
    ///
    /// [`CheckpointError`]; [`CheckpointError::NoConfig`] without a config.
    pub fn load(
        path: &Path,
        config: Option<&VqTokenizerConfig>,
        device: &Device,
    ) -> Result<Self, CheckpointError> {
        let state = StateDict::read(path)?;
        state.expect_kind(par_store::CheckpointKind::Tokenizer)?;
        refuse_video(&state)?;
        let config = match config {
            Some(c) => c.clone(),
            None => stored_config(&state)?
                .ok_or_else(|| CheckpointError::NoConfig { path: path.into() })?,
        };
        Self::from_state_dict(&config, &state, device)
    }

    /// The weights under the upstream keys (PyTorch layout, f32) with the config as metadata
    /// ([`CONFIG_METADATA_KEY`]): the inverse of [`VqTokenizer::from_state_dict`].
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Format`] if a weight cannot be read back from the device.
    pub fn to_state_dict(&self) -> Result<StateDict, CheckpointError> {
        let mut tensors = BTreeMap::new();
        let mut failure = None;
        let mut put = |key: String, data: TensorData| {
            let shape = data.shape().to_vec();
            match data.try_into_vec_as::<f32>() {
                Ok(values) => {
                    tensors.insert(key, WeightTensor { shape, values });
                }
                Err(e) => failure = Some(format!("reading `{key}`: {e:?}")),
            }
        };
        let mut model = self.clone();
        walk(&mut model, &mut |p, leaf| match leaf {
            Leaf::Conv(c) => {
                put(format!("{p}.weight"), c.weight.val().into_data());
                if let Some(b) = &c.bias {
                    put(format!("{p}.bias"), b.val().into_data());
                }
            }
            Leaf::Norm(n) => {
                if let (Some(g), Some(b)) = (&n.gamma, &n.beta) {
                    put(format!("{p}.weight"), g.val().into_data());
                    put(format!("{p}.bias"), b.val().into_data());
                }
            }
            Leaf::Codebook(e) => put(format!("{p}.weight"), e.weight.val().into_data()),
        });
        if let Some(reason) = failure {
            return Err(CheckpointError::Format { path: PathBuf::new(), reason });
        }
        let mut state = StateDict { tensors, ..StateDict::default() };
        state.store_json(CONFIG_METADATA_KEY, self.config());
        Ok(state)
    }

    /// Writes our checkpoint format atomically: safetensors with the upstream keys (so LlamaGen
    /// tooling reads it after `safetensors.torch.load_file`) and the config in the metadata, so
    /// later commands need no tokenizer flags.
    ///
    /// # Errors
    ///
    /// [`CheckpointError`] on a read-back or write failure.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        self.to_state_dict()?.write_safetensors(path)
    }
}

/// Metadata key of the tokenizer configuration in our safetensors checkpoints.
pub const CONFIG_METADATA_KEY: &str = par_store::TOKENIZER_CONFIG_KEY;

/// The configuration stored by [`VqTokenizer::save`], if any.
///
/// # Errors
///
/// [`CheckpointError::Format`] if the stored JSON does not parse.
pub fn stored_config(state: &StateDict) -> Result<Option<VqTokenizerConfig>, CheckpointError> {
    state
        .metadata
        .get(CONFIG_METADATA_KEY)
        .map(|json| {
            VqTokenizerConfig::from_json(json).map_err(|e| CheckpointError::Format {
                path: state.path.clone(),
                reason: format!("stored `{CONFIG_METADATA_KEY}`: {e}"),
            })
        })
        .transpose()
}
