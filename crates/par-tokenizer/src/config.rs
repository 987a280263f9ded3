//! [`VqTokenizerConfig`] and presets.

use burn::config::Config;

/// Why a tokenizer configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizerConfigError {
    /// A size that must be positive is 0 or a list is empty.
    #[error("tokenizer config field `{0}` must be positive / non-empty")]
    Zero(&'static str),
    /// A channel count not divisible by the 32 GroupNorm groups.
    #[error("tokenizer config: {channels} channels are not divisible by {groups} GroupNorm groups")]
    Groups {
        /// The channel count.
        channels: usize,
        /// The group count.
        groups: usize,
    },
    /// A codebook beyond [`MAX_CODEBOOK_SIZE`].
    #[error(
        "tokenizer config field `codebook_size` is {0}, above the supported {MAX_CODEBOOK_SIZE}"
    )]
    CodebookTooLarge(usize),
    /// A loss weight that is negative or not finite.
    #[error("tokenizer config field `{field}` must be finite and ≥ 0, got {value}")]
    Number {
        /// The field.
        field: &'static str,
        /// The value, as written.
        value: String,
    },
}

/// The largest codebook a tokenizer config may ask for (2^20 entries; LlamaGen uses 2^14, LFQ
/// tokenizers 2^18): larger values are typos that would only fail on allocation.
pub const MAX_CODEBOOK_SIZE: usize = 1 << 20;

impl TokenizerConfigError {
    /// The config field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            TokenizerConfigError::Zero(field) | TokenizerConfigError::Number { field, .. } => field,
            TokenizerConfigError::Groups { .. } => "norm_groups",
            TokenizerConfigError::CodebookTooLarge(_) => "codebook_size",
        }
    }
}

/// Hyper-parameters of LlamaGen's VQ tokenizer (docs/spec.md §6.1). Defaults are `vq_ds16_c2i`.
#[derive(Config, Debug, PartialEq)]
pub struct VqTokenizerConfig {
    /// Image channels (3 for RGB, 1 for grayscale).
    #[config(default = 3)]
    pub image_channels: usize,
    /// Base channel count `ch`.
    #[config(default = 128)]
    pub base_channels: usize,
    /// Channel multiplier per level; the image is down-sampled `2^(levels−1)` times.
    #[config(default = "vec![1, 1, 2, 2, 4]")]
    pub channel_mult: Vec<usize>,
    /// ResNet blocks per encoder level (the decoder uses one more).
    #[config(default = 2)]
    pub num_res_blocks: usize,
    /// Channels of the latent before `quant_conv`.
    #[config(default = 256)]
    pub z_channels: usize,
    /// Codebook entries.
    #[config(default = 16384)]
    pub codebook_size: usize,
    /// Codebook vector size.
    #[config(default = 8)]
    pub codebook_dim: usize,
    /// GroupNorm groups.
    #[config(default = 32)]
    pub norm_groups: usize,
    /// Commitment loss weight β.
    #[config(default = 0.25)]
    pub commitment_weight: f64,
    /// Weight of the codebook entropy loss (LlamaGen `--entropy-loss-ratio`, default 0 = off).
    #[config(default = 0.0)]
    pub entropy_loss_ratio: f64,
}

/// Named tokenizer sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TokenizerPreset {
    /// LlamaGen's `vq_ds16_c2i`: 16× down-sampling, 16384 × 8 codebook (71.9 M parameters).
    Vq16,
    /// Grayscale 32×32 → 8×8 codes (3 levels, 4× down-sampling), 1024 × 8 codebook:
    /// Fashion-MNIST on CPU.
    VqSmall8,
    /// Grayscale 32×32 → 16×16 codes (2 levels, 2× down-sampling), 1024 × 8 codebook:
    /// Fashion-MNIST on CPU.
    VqSmall16,
    /// Grayscale 32×32 → 16×16 codes with a quarter of `vq-small-16`'s compute (base 16
    /// channels) and a 256 × 8 codebook: the CPU demo's tokenizer (the demo gives it 64 entries
    /// and one more down-sampling level for its 8×8 grid, or 16 entries on `--grid 16`).
    VqTiny16,
}

impl TokenizerPreset {
    /// Every value, in declaration order.
    pub const ALL: [TokenizerPreset; 4] = [
        TokenizerPreset::Vq16,
        TokenizerPreset::VqSmall8,
        TokenizerPreset::VqSmall16,
        TokenizerPreset::VqTiny16,
    ];
    /// Their names (as [`TokenizerPreset::name`] gives them; what `FromStr` accepts).
    pub const NAMES: [&'static str; 4] = ["vq-16", "vq-small-8", "vq-small-16", "vq-tiny-16"];

    /// The value's name.
    pub fn name(self) -> &'static str {
        match self {
            TokenizerPreset::Vq16 => "vq-16",
            TokenizerPreset::VqSmall8 => "vq-small-8",
            TokenizerPreset::VqSmall16 => "vq-small-16",
            TokenizerPreset::VqTiny16 => "vq-tiny-16",
        }
    }
}

impl std::fmt::Display for TokenizerPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TokenizerPreset {
    type Err = String;

    /// Parses a name of [`TokenizerPreset::NAMES`].
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
            format!("unknown TokenizerPreset `{s}` (one of {})", Self::NAMES.join(", "))
        })
    }
}

impl TokenizerPreset {
    /// The preset's configuration.
    pub fn config(self) -> VqTokenizerConfig {
        match self {
            TokenizerPreset::Vq16 => VqTokenizerConfig::new(),
            TokenizerPreset::VqSmall8 => VqTokenizerConfig::new()
                .with_image_channels(1)
                .with_base_channels(32)
                .with_channel_mult(vec![1, 2, 4])
                .with_num_res_blocks(1)
                .with_z_channels(64)
                .with_codebook_size(1024),
            TokenizerPreset::VqTiny16 => VqTokenizerConfig::new()
                .with_image_channels(1)
                .with_base_channels(16)
                .with_channel_mult(vec![1, 2])
                .with_num_res_blocks(1)
                .with_z_channels(32)
                .with_codebook_size(256)
                .with_norm_groups(8),
            TokenizerPreset::VqSmall16 => VqTokenizerConfig::new()
                .with_image_channels(1)
                .with_base_channels(32)
                .with_channel_mult(vec![1, 2])
                .with_num_res_blocks(1)
                .with_z_channels(64)
                .with_codebook_size(1024),
        }
    }
}

impl VqTokenizerConfig {
    /// Checks the invariants `init` relies on.
    ///
    /// # Errors
    ///
    /// [`TokenizerConfigError`] naming the field.
    pub fn validate(&self) -> Result<(), TokenizerConfigError> {
        for (field, v) in [
            ("image_channels", self.image_channels),
            ("base_channels", self.base_channels),
            ("num_res_blocks", self.num_res_blocks),
            ("z_channels", self.z_channels),
            ("codebook_size", self.codebook_size),
            ("codebook_dim", self.codebook_dim),
            ("norm_groups", self.norm_groups),
            ("channel_mult", self.channel_mult.len()),
        ] {
            if v == 0 {
                return Err(TokenizerConfigError::Zero(field));
            }
        }
        for channels in
            self.channel_mult.iter().map(|m| m * self.base_channels).chain([self.base_channels])
        {
            if channels == 0 || channels % self.norm_groups != 0 {
                return Err(TokenizerConfigError::Groups { channels, groups: self.norm_groups });
            }
        }
        if self.codebook_size > MAX_CODEBOOK_SIZE {
            return Err(TokenizerConfigError::CodebookTooLarge(self.codebook_size));
        }
        for (field, value) in [
            ("commitment_weight", self.commitment_weight),
            ("entropy_loss_ratio", self.entropy_loss_ratio),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(TokenizerConfigError::Number { field, value: value.to_string() });
            }
        }
        Ok(())
    }

    /// Parses a JSON config; fields left out take their defaults (`vq_ds16_c2i`), so configs and
    /// checkpoints written before a field existed still load.
    ///
    /// # Errors
    ///
    /// The JSON error (not an object, unknown type of a field).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        par_store::from_json_with_defaults(&Self::new(), text)
    }

    /// Spatial down-sampling factor, `2^(levels − 1)` (16 for VQ-16).
    pub fn downsample_factor(&self) -> usize {
        1 << (self.channel_mult.len().saturating_sub(1))
    }

    /// Positions of the lowest level, where the single-head self-attention blocks run (their
    /// scores are `positions²` per image).
    fn attention_positions(&self, side: usize) -> f64 {
        (side as f64 / self.downsample_factor() as f64).powi(2)
    }

    /// Channels × positions of every level's feature maps for one image, summed, and the largest.
    fn level_sizes(&self, side: usize) -> (f64, f64) {
        let sizes = self.channel_mult.iter().enumerate().map(|(level, m)| {
            let s = side as f64 / f64::from(1u32 << level.min(31));
            (m * self.base_channels) as f64 * s * s
        });
        sizes.fold((0.0, self.image_channels as f64 * (side as f64).powi(2)), |(sum, max), x| {
            (sum + x, max.max(x))
        })
    }

    /// An upper estimate of the f32 memory a training step on `images` images of `side × side`
    /// pixels keeps for the backward pass: every level's residual blocks (six activations each,
    /// two per convolution and norm) in the encoder and the decoder, and the scores and
    /// probabilities of every attention block (`2·num_res_blocks + 3` of them, at the lowest
    /// level), times 4 for the gradients and Burn's autodiff intermediates (calibrated on flex:
    /// the measured peak stays below it, docs/training.md). In `f64`, so that absurd sizes give
    /// a huge number instead of wrapping; used to refuse a batch the machine cannot hold.
    pub fn training_bytes(&self, images: usize, side: usize) -> f64 {
        let (sum, _) = self.level_sizes(side);
        let convs = sum * 2.0 * (6.0 * self.num_res_blocks as f64 + 4.0);
        let t = self.attention_positions(side);
        let attention = (2.0 * self.num_res_blocks as f64 + 3.0) * 2.0 * t * t;
        4.0 * 4.0 * images as f64 * (convs + attention)
    }

    /// An upper estimate of the f32 memory that encoding or decoding `images` images of
    /// `side × side` pixels at once needs: four live activations (a residual block's input,
    /// output and normalised copies) of the largest level, plus an attention block's scores,
    /// probabilities and their transposed copy at the lowest level (`3 · positions²`), per
    /// image. In `f64`, so that absurd sizes give a huge number instead of wrapping; used to
    /// refuse an image size or batch the machine cannot hold before anything is allocated.
    pub fn activation_bytes(&self, images: usize, side: usize) -> f64 {
        let (_, largest) = self.level_sizes(side);
        let t = self.attention_positions(side);
        4.0 * images as f64 * (4.0 * largest + 3.0 * t * t)
    }
}
