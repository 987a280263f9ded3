//! [`VideoTokenizerConfig`], its quantizer options and presets (docs/spec.md §8).

use burn::config::Config;

use crate::MAX_CODEBOOK_SIZE;

/// Why a video tokenizer configuration, or a clip size asked of it, is unusable. Every variant
/// names the config field (or clip dimension) at fault ([`VideoTokenizerConfigError::field`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VideoTokenizerConfigError {
    /// A size that must be positive is 0, or a list that must not be empty is.
    #[error("video tokenizer config field `{0}` must be positive / non-empty")]
    Zero(&'static str),
    /// A channel count not divisible by the GroupNorm groups.
    #[error(
        "video tokenizer config field `norm_groups`: {channels} channels are not divisible by {groups} groups"
    )]
    Groups {
        /// The channel count.
        channels: usize,
        /// The group count.
        groups: usize,
    },
    /// `temporal_downsample` does not hold one flag per down-sampling stage.
    #[error(
        "video tokenizer config field `temporal_downsample` has {given} entries; {levels} levels make {expected} down-sampling stages"
    )]
    TemporalStages {
        /// Entries given.
        given: usize,
        /// `channel_mult.len()`.
        levels: usize,
        /// `levels − 1`.
        expected: usize,
    },
    /// An FSQ level below 2 (a dimension with one value carries no information).
    #[error("video tokenizer config field `quantizer.levels`: level {value} at {index} is below 2")]
    FsqLevel {
        /// Position in `levels`.
        index: usize,
        /// The level.
        value: usize,
    },
    /// LFQ bits outside `1..=MAX_LFQ_BITS`.
    #[error(
        "video tokenizer config field `quantizer.bits` is {0}; LFQ supports 1..={MAX_LFQ_BITS}"
    )]
    LfqBits(usize),
    /// A codebook beyond [`MAX_CODEBOOK_SIZE`].
    #[error(
        "video tokenizer config field `quantizer`: its codebook of {0} codes is above the supported {MAX_CODEBOOK_SIZE}"
    )]
    CodebookTooLarge(usize),
    /// The stored `codebook_size` disagrees with the quantizer's.
    #[error(
        "video tokenizer config field `codebook_size` is {stored}, but the quantizer has {quantizer} codes"
    )]
    CodebookSize {
        /// The field's value.
        stored: usize,
        /// `quantizer.codebook_size()`.
        quantizer: usize,
    },
    /// A loss weight or temperature that is negative, zero where it must be positive, or not
    /// finite.
    #[error("video tokenizer config field `{field}` must be finite and {rule}, got {value}")]
    Number {
        /// The field.
        field: &'static str,
        /// "≥ 0" or "> 0".
        rule: &'static str,
        /// The value, as written.
        value: String,
    },
    /// A clip length the causal encoder cannot map onto whole latent frames: `frames − 1` must
    /// be a multiple of the temporal factor.
    #[error(
        "`{field}` = {frames}: a clip needs 1 + k·{factor} frames (k ≥ 0) for {factor}× causal temporal compression"
    )]
    Frames {
        /// `frames`, or the tensor dimension it came from.
        field: &'static str,
        /// The frame count.
        frames: usize,
        /// The temporal factor.
        factor: usize,
    },
    /// A frame side that is 0 or not a multiple of the spatial factor (`patch_size ×
    /// 2^(levels − 1)`).
    #[error(
        "`{field}` = {size} is not a positive multiple of the {factor}× spatial down-sampling (`patch_size` × 2^(spatial stages))"
    )]
    Size {
        /// `frame_size`, `height` or `width`.
        field: &'static str,
        /// The size.
        size: usize,
        /// The spatial factor.
        factor: usize,
    },
}

impl VideoTokenizerConfigError {
    /// The config field (or clip dimension) at fault.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Zero(field)
            | Self::Number { field, .. }
            | Self::Frames { field, .. }
            | Self::Size { field, .. } => field,
            Self::Groups { .. } => "norm_groups",
            Self::TemporalStages { .. } => "temporal_downsample",
            Self::FsqLevel { .. } => "quantizer.levels",
            Self::LfqBits(_) => "quantizer.bits",
            Self::CodebookTooLarge(_) => "quantizer",
            Self::CodebookSize { .. } => "codebook_size",
        }
    }
}

/// The most LFQ bits a config may ask for: 2^20 codes, [`MAX_CODEBOOK_SIZE`] (MAGVIT-v2 uses 18).
pub const MAX_LFQ_BITS: usize = 20;

/// Finite Scalar Quantization (Mentzer et al. 2023, arXiv 2309.15505, §3): each latent channel
/// is bounded and rounded to `levels[i]` values; the code id is the mixed-radix number of the
/// per-channel digits. No codebook parameters, no auxiliary loss.
#[derive(Config, Debug, PartialEq)]
pub struct FsqConfig {
    /// Values per latent channel; the latent has `levels.len()` channels and the codebook
    /// `Π levels` codes. Default `[8, 8, 8, 5, 5, 5]` = 64,000 codes (NBP's MAGVIT-v2
    /// reproduction, docs/spec.md §8; FSQ paper Table 1's recommendation for 2^16).
    #[config(default = "vec![8, 8, 8, 5, 5, 5]")]
    pub levels: Vec<usize>,
}

/// Lookup-Free Quantization (MAGVIT-v2, Yu et al. 2023, arXiv 2310.05737, §3.1): each of `bits`
/// latent channels is quantized to its sign, the code id is the binary number of the signs, and
/// an entropy penalty keeps codes confident and the codebook evenly used.
#[derive(Config, Debug, PartialEq)]
pub struct LfqConfig {
    /// Latent channels = bits of a code id; the codebook has `2^bits` codes (MAGVIT-v2: 18).
    #[config(default = 18)]
    pub bits: usize,
    /// Commitment weight β of `β · mse(z, sg(q))`.
    #[config(default = 0.25)]
    pub commitment_weight: f64,
    /// Weight of the entropy penalty `E[H(q(z))] − H(E[q(z)])` (MAGVIT-v2 §3.1; 0.1 as in the
    /// open reproductions). 0 turns it off.
    #[config(default = 0.1)]
    pub entropy_weight: f64,
    /// Temperature τ of the soft assignment `softmax(−‖z − c‖² / τ)` over the codes.
    #[config(default = 0.01)]
    pub entropy_temperature: f64,
}

/// Which quantizer a [`VideoTokenizerConfig`] uses. JSON: `{"kind": "fsq", "levels": [..]}` or
/// `{"kind": "lfq", "bits": 18, ..}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VideoQuantizerConfig {
    /// Finite Scalar Quantization (the default: NBP's reproduction of MAGVIT-v2 uses FSQ with
    /// 64,000 codes, docs/spec.md §8).
    Fsq(FsqConfig),
    /// MAGVIT-v2's Lookup-Free Quantization.
    Lfq(LfqConfig),
}

impl Default for VideoQuantizerConfig {
    /// FSQ `[8, 8, 8, 5, 5, 5]`.
    fn default() -> Self {
        Self::Fsq(FsqConfig::new())
    }
}

impl VideoQuantizerConfig {
    /// Channels of the quantized latent: `levels.len()` (FSQ) or `bits` (LFQ).
    pub fn dim(&self) -> usize {
        match self {
            Self::Fsq(c) => c.levels.len(),
            Self::Lfq(c) => c.bits,
        }
    }

    /// Codes: `Π levels` (FSQ, saturating) or `2^bits` (LFQ, saturating).
    pub fn codebook_size(&self) -> usize {
        match self {
            Self::Fsq(c) => c.levels.iter().fold(1usize, |n, &l| n.saturating_mul(l)),
            Self::Lfq(c) => 1usize.checked_shl(c.bits as u32).unwrap_or(usize::MAX),
        }
    }

    /// Checks levels / bits, the codebook size and the loss numbers.
    ///
    /// # Errors
    ///
    /// [`VideoTokenizerConfigError`] naming the field.
    pub fn validate(&self) -> Result<(), VideoTokenizerConfigError> {
        match self {
            Self::Fsq(c) => {
                if c.levels.is_empty() {
                    return Err(VideoTokenizerConfigError::Zero("quantizer.levels"));
                }
                if let Some((index, &value)) = c.levels.iter().enumerate().find(|(_, l)| **l < 2) {
                    return Err(VideoTokenizerConfigError::FsqLevel { index, value });
                }
            }
            Self::Lfq(c) => {
                if !(1..=MAX_LFQ_BITS).contains(&c.bits) {
                    return Err(VideoTokenizerConfigError::LfqBits(c.bits));
                }
                for (field, value, positive) in [
                    ("quantizer.commitment_weight", c.commitment_weight, false),
                    ("quantizer.entropy_weight", c.entropy_weight, false),
                    ("quantizer.entropy_temperature", c.entropy_temperature, true),
                ] {
                    let ok = value.is_finite() && if positive { value > 0.0 } else { value >= 0.0 };
                    if !ok {
                        let rule = if positive { "> 0" } else { "≥ 0" };
                        let value = value.to_string();
                        return Err(VideoTokenizerConfigError::Number { field, rule, value });
                    }
                }
            }
        }
        let size = self.codebook_size();
        if size > MAX_CODEBOOK_SIZE {
            return Err(VideoTokenizerConfigError::CodebookTooLarge(size));
        }
        Ok(())
    }
}

/// The pixel reconstruction loss of [`crate::VideoTokenizer::reconstruction_loss`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconstructionLoss {
    /// Mean absolute error.
    L1,
    /// Mean squared error (LlamaGen's pixel loss, docs/spec.md §6.2; MAGVIT's L2 term).
    Mse,
}

/// Hyper-parameters of the MAGVIT-v2-style causal video tokenizer (docs/spec.md §8; MAGVIT-v2,
/// arXiv 2310.05737, §3.2 and Appendix). Defaults are the `magvit2-fsq` preset: 17×128² clips →
/// 5×16×16 codes of a 64,000-entry FSQ codebook.
///
/// A Burn [`Config`] written out by hand rather than derived, so that `patch_size` can carry a
/// serde default: configs stored before the field existed (checkpoint metadata, training state
/// files) deserialize with `patch_size = 1`, the architecture they were built with. Every other
/// field is required by plain serde, as with the derive ([`VideoTokenizerConfig::from_json`]
/// fills any missing field from the defaults).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VideoTokenizerConfig {
    /// Pixel channels (3 for RGB).
    pub in_channels: usize,
    /// Side of the space-to-depth patch embedding in front of the encoder: a clip
    /// `[B, C, T, H, W]` enters the first conv as `[B, C·p², T, H/p, W/p]`, and the decoder's
    /// last conv emits `C·p²` channels that depth-to-space turns back into pixels. The spatial
    /// factor is `patch_size × 2^(levels − 1)`. 1 (no patching, the paper's layout) when absent
    /// from a stored config.
    #[serde(default = "default_patch_size")]
    pub patch_size: usize,
    /// Channels of the first (full-resolution after patching) level.
    pub base_channels: usize,
    /// Channel multiplier per level; every level but the last halves height and width, so the
    /// spatial factor is `patch_size × 2^(levels − 1)`.
    pub channel_mult: Vec<usize>,
    /// Causal 3D ResNet blocks per level, in the encoder and in the decoder.
    pub num_res_blocks: usize,
    /// One flag per down-sampling stage (after level `i`, `i < levels − 1`): whether the stage
    /// also halves time (`T → (T − 1)/2 + 1`). The temporal factor is `2^(flags set)`.
    /// MAGVIT-v2 compresses time in its two later stages.
    pub temporal_downsample: Vec<bool>,
    /// GroupNorm groups (each norm takes its statistics per frame, so the encoder stays causal).
    pub norm_groups: usize,
    /// The quantizer (FSQ by default).
    pub quantizer: VideoQuantizerConfig,
    /// Codes in the codebook. Derived from `quantizer` and stored so the JSON (and `par
    /// tokenizer-info`) states it; [`VideoTokenizerConfig::validate`] checks the two agree.
    /// Set the quantizer with [`VideoTokenizerConfig::quantized_with`] to keep them in step.
    pub codebook_size: usize,
    /// Pixel loss of [`crate::VideoTokenizer::reconstruction_loss`].
    pub reconstruction_loss: ReconstructionLoss,
    /// Frames of the clips the tokenizer is built for (17 = 1 + 4·4 in PAR, docs/spec.md §8).
    pub frames: usize,
    /// Height = width of those clips in pixels (128 in PAR).
    pub frame_size: usize,
}

fn default_patch_size() -> usize {
    1
}

impl Config for VideoTokenizerConfig {}

impl std::fmt::Display for VideoTokenizerConfig {
    /// The config as JSON (what the derived Burn configs print).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&burn::config::config_to_json(self))
    }
}

impl Default for VideoTokenizerConfig {
    /// [`VideoTokenizerConfig::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// `with_<field>` builders, as `#[derive(Config)]` would generate them.
macro_rules! builders {
    ($($with:ident: $field:ident: $ty:ty),* $(,)?) => {
        impl VideoTokenizerConfig {
            $(
                #[doc = concat!("`self` with `", stringify!($field), "` replaced.")]
                pub fn $with(mut self, $field: $ty) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}

builders! {
    with_in_channels: in_channels: usize,
    with_patch_size: patch_size: usize,
    with_base_channels: base_channels: usize,
    with_channel_mult: channel_mult: Vec<usize>,
    with_num_res_blocks: num_res_blocks: usize,
    with_temporal_downsample: temporal_downsample: Vec<bool>,
    with_norm_groups: norm_groups: usize,
    with_quantizer: quantizer: VideoQuantizerConfig,
    with_codebook_size: codebook_size: usize,
    with_reconstruction_loss: reconstruction_loss: ReconstructionLoss,
    with_frames: frames: usize,
    with_frame_size: frame_size: usize,
}

impl VideoTokenizerConfig {
    /// The `magvit2-fsq` preset: 3 input channels, no patching (`patch_size` 1), base 128
    /// channels × `[1, 2, 2, 4]`, 4 ResNet blocks per level, time halved in the last two
    /// stages, 32 GroupNorm groups, FSQ `[8, 8, 8, 5, 5, 5]` (64,000 codes), MSE, 17×128²
    /// clips.
    pub fn new() -> Self {
        Self {
            in_channels: 3,
            patch_size: 1,
            base_channels: 128,
            channel_mult: vec![1, 2, 2, 4],
            num_res_blocks: 4,
            temporal_downsample: vec![false, true, true],
            norm_groups: 32,
            quantizer: VideoQuantizerConfig::default(),
            codebook_size: 64_000,
            reconstruction_loss: ReconstructionLoss::Mse,
            frames: 17,
            frame_size: 128,
        }
    }

    /// `self` with `quantizer` and the `codebook_size` it implies.
    pub fn quantized_with(mut self, quantizer: VideoQuantizerConfig) -> Self {
        self.codebook_size = quantizer.codebook_size();
        self.quantizer = quantizer;
        self
    }

    /// Checks the invariants `init` relies on, and that `frames × frame_size²` clips fit.
    ///
    /// # Errors
    ///
    /// [`VideoTokenizerConfigError`] naming the field.
    pub fn validate(&self) -> Result<(), VideoTokenizerConfigError> {
        for (field, v) in [
            ("in_channels", self.in_channels),
            ("patch_size", self.patch_size),
            ("base_channels", self.base_channels),
            ("channel_mult", self.channel_mult.len()),
            ("num_res_blocks", self.num_res_blocks),
            ("norm_groups", self.norm_groups),
            ("frames", self.frames),
            ("frame_size", self.frame_size),
        ] {
            if v == 0 {
                return Err(VideoTokenizerConfigError::Zero(field));
            }
        }
        if self.channel_mult.contains(&0) {
            return Err(VideoTokenizerConfigError::Zero("channel_mult"));
        }
        for channels in
            self.channel_mult.iter().map(|m| m * self.base_channels).chain([self.base_channels])
        {
            if !channels.is_multiple_of(self.norm_groups) {
                return Err(VideoTokenizerConfigError::Groups {
                    channels,
                    groups: self.norm_groups,
                });
            }
        }
        let levels = self.channel_mult.len();
        if self.temporal_downsample.len() != levels - 1 {
            return Err(VideoTokenizerConfigError::TemporalStages {
                given: self.temporal_downsample.len(),
                levels,
                expected: levels - 1,
            });
        }
        self.quantizer.validate()?;
        let quantizer = self.quantizer.codebook_size();
        if self.codebook_size != quantizer {
            return Err(VideoTokenizerConfigError::CodebookSize {
                stored: self.codebook_size,
                quantizer,
            });
        }
        let [tf, sf] = self.downsample_factors();
        if !(self.frames - 1).is_multiple_of(tf) {
            let (frames, factor) = (self.frames, tf);
            return Err(VideoTokenizerConfigError::Frames { field: "frames", frames, factor });
        }
        if !self.frame_size.is_multiple_of(sf) {
            let (size, factor) = (self.frame_size, sf);
            return Err(VideoTokenizerConfigError::Size { field: "frame_size", size, factor });
        }
        Ok(())
    }

    /// `[temporal, spatial]` compression: `[2^(temporal stages), patch_size × 2^(levels − 1)]`
    /// (`[4, 8]` for every preset). Saturates at `usize::MAX` instead of overflowing.
    pub fn downsample_factors(&self) -> [usize; 2] {
        let pow2 = |n: usize| 1usize.checked_shl(n as u32).unwrap_or(usize::MAX);
        let t = self.temporal_downsample.iter().filter(|&&d| d).count();
        let stages = self.channel_mult.len().saturating_sub(1);
        [pow2(t), self.patch_size.saturating_mul(pow2(stages))]
    }

    /// Codes in the codebook, `quantizer.codebook_size()` (64,000 for FSQ `[8,8,8,5,5,5]`).
    pub fn codebook_size(&self) -> usize {
        self.quantizer.codebook_size()
    }

    /// The code grid of a `frames × height × width` clip: `[(frames − 1)/f_t + 1, height/f_s,
    /// width/f_s]` with `[f_t, f_s] = downsample_factors()` — the first frame gets a latent
    /// frame of its own (5×8×8 for 17×64² on the CPU presets, 5×16×16 for 17×128²).
    ///
    /// # Errors
    ///
    /// [`VideoTokenizerConfigError::Frames`] unless `frames ≥ 1` and `f_t` divides `frames − 1`;
    /// [`VideoTokenizerConfigError::Size`] unless `height`, `width` are positive multiples of `f_s`.
    pub fn latent_shape(
        &self,
        frames: usize,
        height: usize,
        width: usize,
    ) -> Result<[usize; 3], VideoTokenizerConfigError> {
        let [tf, sf] = self.downsample_factors();
        if frames == 0 || !(frames - 1).is_multiple_of(tf) {
            return Err(VideoTokenizerConfigError::Frames { field: "frames", frames, factor: tf });
        }
        for (field, size) in [("height", height), ("width", width)] {
            if size == 0 || !size.is_multiple_of(sf) {
                return Err(VideoTokenizerConfigError::Size { field, size, factor: sf });
            }
        }
        Ok([(frames - 1) / tf + 1, height / sf, width / sf])
    }

    /// Parses a JSON config; fields left out take their defaults (`magvit2-fsq`), except a
    /// missing `codebook_size`, which is derived from the quantizer.
    ///
    /// # Errors
    ///
    /// The JSON error (not an object, a field of the wrong type).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let given: serde_json::Value = serde_json::from_str(text)?;
        let derive_size = given.get("codebook_size").is_none();
        let mut config = par_store::from_json_with_defaults(&Self::new(), text)?;
        if derive_size {
            config.codebook_size = config.quantizer.codebook_size();
        }
        Ok(config)
    }
}

/// Named video tokenizer sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum VideoTokenizerPreset {
    /// The paper's scale (docs/spec.md §8): 17×128² RGB clips → 5×16×16 codes, FSQ
    /// `[8, 8, 8, 5, 5, 5]` = 64,000 codes, no patch embedding (`patch_size` 1), base 128
    /// channels × `[1, 2, 2, 4]`, 4 causal ResNet blocks per level (MAGVIT-v2's layout;
    /// 178,541,833 parameters).
    Magvit2Fsq,
    /// CPU scale: 17×64² clips → 5×8×8 codes. A 2×2 space-to-depth patch embedding
    /// (`patch_size` 2: 3 → 12 channels at 32²), then base 16 channels × `[1, 2, 6]` — two
    /// down-sampling stages, both halving time as well (17 → 9 → 5 frames, 32² → 16² → 8²; still
    /// 4× temporal and 2 × 2² = 8× spatial) — one ResNet block per level, 8 GroupNorm groups;
    /// FSQ `[8, 5, 5, 5]` = 1,000 codes (1,044,272 parameters).
    ///
    /// The codebook is 1,000 codes rather than the paper's 64,000 because the PAR model that
    /// reads these tokens is also CPU-sized and trained for minutes: it cannot learn a
    /// 64,000-entry vocabulary in that time (most ids would hardly be seen), while 1,000 codes
    /// are each seen often. The patch embedding exists because the full-resolution
    /// convolutions dominate on a CPU (Burn's generic conv3d backward): the previous layout
    /// (no patching, base 16 × `[1, 2, 4, 4]` with levels at 64², 32², 16², 8², 1.17 M
    /// parameters) took ≈ 9.5 s per forward + backward of 4 clips on 2 cores with `flex`
    /// (≈ 4.7 s with its rayon and SIMD features, as the binaries build it); this one takes
    /// ≈ 1.9 s (≈ 1.1 s).
    Magvit2FsqCpu,
    /// As `magvit2-fsq-cpu` with 10-bit LFQ (1,024 codes, about the FSQ preset's vocabulary)
    /// and its entropy penalty (1,060,406 parameters).
    Magvit2LfqCpu,
}

impl VideoTokenizerPreset {
    /// Every value, in declaration order.
    pub const ALL: [VideoTokenizerPreset; 3] = [
        VideoTokenizerPreset::Magvit2Fsq,
        VideoTokenizerPreset::Magvit2FsqCpu,
        VideoTokenizerPreset::Magvit2LfqCpu,
    ];
    /// Their names (as [`VideoTokenizerPreset::name`] gives them; what `FromStr` accepts).
    pub const NAMES: [&'static str; 3] = ["magvit2-fsq", "magvit2-fsq-cpu", "magvit2-lfq-cpu"];

    /// The value's name.
    pub fn name(self) -> &'static str {
        match self {
            VideoTokenizerPreset::Magvit2Fsq => "magvit2-fsq",
            VideoTokenizerPreset::Magvit2FsqCpu => "magvit2-fsq-cpu",
            VideoTokenizerPreset::Magvit2LfqCpu => "magvit2-lfq-cpu",
        }
    }

    /// The preset's configuration.
    pub fn config(self) -> VideoTokenizerConfig {
        let cpu = || {
            VideoTokenizerConfig::new()
                .with_patch_size(2)
                .with_base_channels(16)
                .with_channel_mult(vec![1, 2, 6])
                .with_temporal_downsample(vec![true, true])
                .with_num_res_blocks(1)
                .with_norm_groups(8)
                .with_frame_size(64)
        };
        match self {
            VideoTokenizerPreset::Magvit2Fsq => VideoTokenizerConfig::new(),
            VideoTokenizerPreset::Magvit2FsqCpu => cpu().quantized_with(VideoQuantizerConfig::Fsq(
                FsqConfig::new().with_levels(vec![8, 5, 5, 5]),
            )),
            VideoTokenizerPreset::Magvit2LfqCpu => {
                cpu().quantized_with(VideoQuantizerConfig::Lfq(LfqConfig::new().with_bits(10)))
            }
        }
    }
}

impl std::fmt::Display for VideoTokenizerPreset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for VideoTokenizerPreset {
    type Err = String;

    /// Parses a name of [`VideoTokenizerPreset::NAMES`].
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
            format!("unknown VideoTokenizerPreset `{s}` (one of {})", Self::NAMES.join(", "))
        })
    }
}
