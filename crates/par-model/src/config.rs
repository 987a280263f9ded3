//! [`ParTransformerConfig`]: the decoder's hyper-parameters, presets and parameter count.

use burn::config::Config;
use par_order::{OrderError, ParSchedule, RegionGrid, ScheduleVariant};

/// Why a model configuration is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A size that must be positive is 0.
    #[error("model config field `{field}` must be at least 1")]
    Zero {
        /// The field.
        field: &'static str,
    },
    /// `d_model` is not a multiple of `4·n_heads` (2D RoPE needs `head_dim` divisible by 4).
    #[error("d_model {d_model} must be divisible by 4·n_heads = {}: 2D RoPE rotates head_dim/4 row and head_dim/4 column pairs", 4 * n_heads)]
    HeadDim {
        /// Model width.
        d_model: usize,
        /// Attention heads.
        n_heads: usize,
    },
    /// A dropout probability outside `[0, 1)`.
    #[error("model config field `{field}` must be in [0, 1), got {value}")]
    Probability {
        /// The field.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// A number that is not finite or outside its range.
    #[error("model config field `{field}` must be {expected}, got {value}")]
    Number {
        /// The field.
        field: &'static str,
        /// The range, in words.
        expected: &'static str,
        /// The value.
        value: String,
    },
    /// A video model (`frames > 1`) with 3D RoPE on heads too narrow to give every axis a pair.
    #[error(
        "model config field `n_heads`: 3D RoPE needs head_dim = d_model / n_heads ≥ 8 (one rotated pair per axis at least), got {head_dim}"
    )]
    HeadDimVideo {
        /// `d_model / n_heads`.
        head_dim: usize,
    },
    /// More latent frames than [`MAX_FRAMES`].
    #[error("model config field `frames` is {0}: at most {MAX_FRAMES} latent frames are supported")]
    TooManyFrames(usize),
    /// A grid larger than [`MAX_GRID_SIZE`].
    #[error(
        "model config field `grid_size` is {0}: at most {MAX_GRID_SIZE} tokens per side are supported ({MAX_GRID_SIZE}² = 65,536 tokens, 4096 px with a 16× tokenizer)"
    )]
    GridTooLarge(usize),
    /// A video model (`frames > 1`) given to a path that handles images only.
    #[error(
        "model config field `frames` is {frames}: this is a video model, and {what} handles images only (frames = 1)"
    )]
    VideoModel {
        /// Latent frames of the model.
        frames: usize,
        /// The image-only path.
        what: &'static str,
    },
    /// The grid and parallel degree do not make a valid region grid.
    #[error("model config grid: {0}")]
    Grid(#[from] OrderError),
}

impl ConfigError {
    /// The config field at fault (`grid_size` and `parallel` for grid errors).
    pub fn field(&self) -> &'static str {
        match self {
            ConfigError::Zero { field }
            | ConfigError::Probability { field, .. }
            | ConfigError::Number { field, .. } => field,
            ConfigError::HeadDim { .. } | ConfigError::HeadDimVideo { .. } => "n_heads",
            ConfigError::TooManyFrames(_) | ConfigError::VideoModel { .. } => "frames",
            ConfigError::Grid(OrderError::ZeroFrames) => "frames",
            ConfigError::GridTooLarge(_) | ConfigError::Grid(_) => "grid_size",
        }
    }
}

/// The largest codebook (`vocab_size`) or class count a model is built for (2^20): embedding
/// tables beyond are typos that would only fail on allocation.
pub const MAX_TABLE_ROWS: usize = 1 << 20;

/// The largest code grid side a model is built for: the RoPE table and the KV cache grow with
/// `grid_size²`, and 256 (65,536 tokens) is 10× the side of the paper's largest zero-shot
/// resolution (32 at 512 px); larger values are typos, not experiments.
pub const MAX_GRID_SIZE: usize = 256;

/// The most latent frames a model is built for: 64 latent frames are 253 video frames with a
/// 4× temporal tokenizer, 15× the paper's 17 (spec §8); larger values are typos.
pub const MAX_FRAMES: usize = 64;

/// How image tokens learn where they are (docs/spec.md §2.3 for images, §8 for video).
///
/// The paper says only "3D positional embeddings" for video (spec §8, §11): both readings are
/// here. [`PositionEmbedding::Rope`] is the default because it is what the image model uses (so a
/// video model is the image model with one more rotated axis), it needs no table sized to the
/// grid (zero-shot resolution and length keep working), and the KV-cached decode needs nothing
/// new.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum PositionEmbedding {
    /// Rotary embeddings (the default): LlamaGen's 2D RoPE (row, column) for images, and for video
    /// (`frames > 1`) 3D RoPE over (frame, row, column), see [`crate::rope::RopeAxes`].
    #[default]
    Rope,
    /// Learned absolute embeddings, factorised as `frame[t] + row[y] + col[x]` (`[T, d]`, `[L, d]`,
    /// `[L, d]` tables, N(0, 0.02) like the other embeddings) and added to the code embeddings of
    /// image tokens; no rotation (the class and transition slots keep the reference's zeroed
    /// q/k). The tables are sized to the grid, so the model cannot change resolution or length
    /// after training.
    Learned,
}

impl PositionEmbedding {
    /// Every value, in declaration order.
    pub const ALL: [PositionEmbedding; 2] = [PositionEmbedding::Rope, PositionEmbedding::Learned];
    /// Their names (what `FromStr` accepts; the serde names).
    pub const NAMES: [&'static str; 2] = ["rope", "learned"];

    /// The value's name.
    pub fn name(self) -> &'static str {
        match self {
            PositionEmbedding::Rope => "rope",
            PositionEmbedding::Learned => "learned",
        }
    }
}

impl std::fmt::Display for PositionEmbedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PositionEmbedding {
    type Err = String;

    /// Parses a name of [`PositionEmbedding::NAMES`].
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|v| v.name() == s).ok_or_else(|| {
            format!("unknown PositionEmbedding `{s}` (one of {})", Self::NAMES.join(", "))
        })
    }
}

/// Hyper-parameters of the PAR / LlamaGen class-conditional decoder (docs/spec.md §4.1–4.3).
///
/// Defaults are LlamaGen's `ModelArgs` (GPT-B width) with the 256 px grid (16×16) and PAR-4×;
/// `parallel = 1` is LlamaGen's raster model (no transition tokens). With RoPE positions nothing
/// stored in a checkpoint depends on `grid_size` or `frames`: a model can be built at a larger
/// grid for zero-shot higher resolution (spec §2.3).
///
/// `frames > 1` makes a video model (spec §8): a `frames × grid_size × grid_size` code grid with
/// spatial regions, 3D RoPE (or learned 3D embeddings, [`PositionEmbedding`]).
#[derive(Config, Debug, PartialEq)]
pub struct ParTransformerConfig {
    /// Codebook size of the VQ tokenizer (output classes), `V`.
    #[config(default = 16384)]
    pub vocab_size: usize,
    /// Image classes `C`; the class table has `C + 1` rows, the last being the null class used by
    /// classifier-free guidance.
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Model width (upstream `dim`).
    #[config(default = 768)]
    pub d_model: usize,
    /// Transformer blocks (upstream `n_layer`).
    #[config(default = 12)]
    pub n_layers: usize,
    /// Attention heads (upstream `n_head`; no grouped-query attention in any config).
    #[config(default = 12)]
    pub n_heads: usize,
    /// SwiGLU hidden size is rounded up to a multiple of this (upstream `multiple_of`).
    #[config(default = 256)]
    pub multiple_of: usize,
    /// Optional SwiGLU hidden-size multiplier (upstream `ffn_dim_multiplier`, unused by the presets).
    #[config(default = "None")]
    pub ffn_dim_multiplier: Option<f64>,
    /// Tokens per side of the code grid, `L`.
    #[config(default = 16)]
    pub grid_size: usize,
    /// Latent frames of the code grid, `T`: 1 for images, 5 for the paper's 17-frame video
    /// (docs/spec.md §8). Regions are spatial only and span all frames.
    #[config(default = 1)]
    pub frames: usize,
    /// How image tokens get their positions: RoPE (2D for images, 3D for video) or learned.
    #[config(default = "PositionEmbedding::Rope")]
    pub position_embedding: PositionEmbedding,
    /// Parallel degree `n = M²` (1 = LlamaGen raster order).
    #[config(default = 4)]
    pub parallel: usize,
    /// RoPE base.
    #[config(default = 10000.0)]
    pub rope_base: f64,
    /// RMSNorm epsilon.
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// Standard deviation of the N(0, σ) initialisation of linear and embedding weights.
    #[config(default = 0.02)]
    pub initializer_range: f64,
    /// Dropout on the embedded input sequence (upstream `token_dropout_p`).
    #[config(default = 0.1)]
    pub token_dropout: f64,
    /// Dropout after the attention projection (upstream `resid_dropout_p`).
    #[config(default = 0.1)]
    pub resid_dropout: f64,
    /// Dropout after the feed-forward (upstream `ffn_dropout_p`).
    #[config(default = 0.1)]
    pub ffn_dropout: f64,
    /// Dropout on attention probabilities (upstream `attn_dropout_p`: 0 in code, 0.1 in the
    /// paper's Table 5).
    #[config(default = 0.0)]
    pub attn_dropout: f64,
    /// Largest drop-path rate; block `i` uses `rate · i / (n_layers − 1)` (upstream linspace).
    #[config(default = 0.0)]
    pub drop_path_rate: f64,
    /// PAR as published (the default), or one of the paper's Table 4 ablations: raster groups,
    /// causal attention inside a group, no sequential start (`par_order::ScheduleVariant`). Only
    /// the schedule changes; the weights are the same.
    #[config(default = "ScheduleVariant::default()")]
    pub variant: ScheduleVariant,
}

/// Named model sizes (LlamaGen's `GPT_*`, docs/spec.md §4.1) plus small ones for CPU work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Preset {
    /// 2 layers, 2 heads, width 32, codebook 64, 10 classes: unit tests and fixtures.
    GptTiny,
    /// 4 layers, 4 heads, width 128: quick CPU experiments (Fashion-MNIST demo size).
    GptSmall,
    /// 12 layers, 12 heads, width 768 (111 M at n = 4).
    GptB,
    /// 24 layers, 16 heads, width 1024 (343 M).
    GptL,
    /// 36 layers, 20 heads, width 1280 (775 M).
    GptXl,
    /// 48 layers, 24 heads, width 1536 (1.4 B).
    GptXxl,
    /// 48 layers, 40 heads, width 2560 (3.9 B).
    GptXxxl,
    /// 22 layers, 32 heads, width 2048 (1.2 B).
    Gpt1b,
    /// 24 layers, 32 heads, width 3200, head_dim 100 (3.1 B).
    Gpt3b,
}

impl Preset {
    /// Every value, in declaration order.
    pub const ALL: [Preset; 9] = [
        Preset::GptTiny,
        Preset::GptSmall,
        Preset::GptB,
        Preset::GptL,
        Preset::GptXl,
        Preset::GptXxl,
        Preset::GptXxxl,
        Preset::Gpt1b,
        Preset::Gpt3b,
    ];
    /// Their names (as [`Preset::name`] gives them; what `FromStr` accepts).
    pub const NAMES: [&'static str; 9] = [
        "gpt-tiny",
        "gpt-small",
        "gpt-b",
        "gpt-l",
        "gpt-xl",
        "gpt-xxl",
        "gpt-xxxl",
        "gpt-1b",
        "gpt-3b",
    ];

    /// The value's name.
    pub fn name(self) -> &'static str {
        match self {
            Preset::GptTiny => "gpt-tiny",
            Preset::GptSmall => "gpt-small",
            Preset::GptB => "gpt-b",
            Preset::GptL => "gpt-l",
            Preset::GptXl => "gpt-xl",
            Preset::GptXxl => "gpt-xxl",
            Preset::GptXxxl => "gpt-xxxl",
            Preset::Gpt1b => "gpt-1b",
            Preset::Gpt3b => "gpt-3b",
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    /// Parses a name of [`Preset::NAMES`].
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown Preset `{s}` (one of {})", Self::NAMES.join(", ")))
    }
}

impl Preset {
    /// The preset's configuration at the given grid and parallel degree (ImageNet: 16384 codes,
    /// 1000 classes; the small presets use their own codebook and class counts).
    pub fn config(self, grid_size: usize, parallel: usize) -> ParTransformerConfig {
        let (n_layers, n_heads, d_model) = match self {
            Preset::GptTiny => (2, 2, 32),
            Preset::GptSmall => (4, 4, 128),
            Preset::GptB => (12, 12, 768),
            Preset::GptL => (24, 16, 1024),
            Preset::GptXl => (36, 20, 1280),
            Preset::GptXxl => (48, 24, 1536),
            Preset::GptXxxl => (48, 40, 2560),
            Preset::Gpt1b => (22, 32, 2048),
            Preset::Gpt3b => (24, 32, 3200),
        };
        let config = ParTransformerConfig::new()
            .with_n_layers(n_layers)
            .with_n_heads(n_heads)
            .with_d_model(d_model)
            .with_grid_size(grid_size)
            .with_parallel(parallel);
        match self {
            Preset::GptTiny => config.with_vocab_size(64).with_num_classes(10).with_multiple_of(32),
            Preset::GptSmall => {
                config.with_vocab_size(1024).with_num_classes(10).with_multiple_of(64)
            }
            _ => config,
        }
    }
}

/// Codebook size of the paper's video tokenizer: FSQ levels [8, 8, 8, 5, 5, 5] (docs/spec.md §8).
pub const UCF101_CODEBOOK_SIZE: usize = 64_000;
/// Classes of UCF-101.
pub const UCF101_CLASSES: usize = 101;

impl Preset {
    /// The preset's video configuration (docs/spec.md §8): `frames` latent frames of
    /// `grid_size²` tokens with spatial parallelism `parallel`, 3D RoPE, and the paper's UCF-101
    /// setting for the large presets (64,000 FSQ codes, 101 classes, Table 6 dropouts: token,
    /// residual, feed-forward and attention dropout 0.1). The small presets keep their own
    /// codebook and class counts.
    pub fn video_config(
        self,
        frames: usize,
        grid_size: usize,
        parallel: usize,
    ) -> ParTransformerConfig {
        let config = self.config(grid_size, parallel).with_frames(frames).with_attn_dropout(0.1);
        match self {
            Preset::GptTiny | Preset::GptSmall => config,
            _ => config.with_vocab_size(UCF101_CODEBOOK_SIZE).with_num_classes(UCF101_CLASSES),
        }
    }
}

impl ParTransformerConfig {
    /// Checks every invariant [`ParTransformerConfig::init`] relies on.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("num_classes", self.num_classes),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("multiple_of", self.multiple_of),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { field });
            }
        }
        if !self.d_model.is_multiple_of(4 * self.n_heads) {
            return Err(ConfigError::HeadDim { d_model: self.d_model, n_heads: self.n_heads });
        }
        for (field, value) in [
            ("token_dropout", self.token_dropout),
            ("resid_dropout", self.resid_dropout),
            ("ffn_dropout", self.ffn_dropout),
            ("attn_dropout", self.attn_dropout),
            ("drop_path_rate", self.drop_path_rate),
        ] {
            if !(0.0..1.0).contains(&value) {
                return Err(ConfigError::Probability { field, value: value.to_string() });
            }
        }
        for (field, value, ok, expected) in [
            ("rope_base", self.rope_base, self.rope_base > 1.0, "finite and > 1"),
            ("norm_eps", self.norm_eps, self.norm_eps > 0.0, "finite and > 0"),
            (
                "initializer_range",
                self.initializer_range,
                self.initializer_range >= 0.0,
                "finite and ≥ 0",
            ),
            (
                "ffn_dim_multiplier",
                self.ffn_dim_multiplier.unwrap_or(1.0),
                self.ffn_dim_multiplier.unwrap_or(1.0) > 0.0,
                "finite and > 0",
            ),
        ] {
            if !(value.is_finite() && ok) {
                return Err(ConfigError::Number { field, expected, value: value.to_string() });
            }
        }
        for (field, value) in [("vocab_size", self.vocab_size), ("num_classes", self.num_classes)] {
            if value > MAX_TABLE_ROWS {
                return Err(ConfigError::Number {
                    field,
                    expected: "at most 1,048,576",
                    value: value.to_string(),
                });
            }
        }
        if self.grid_size > MAX_GRID_SIZE {
            return Err(ConfigError::GridTooLarge(self.grid_size));
        }
        if self.frames > MAX_FRAMES {
            return Err(ConfigError::TooManyFrames(self.frames));
        }
        if self.frames > 1
            && self.position_embedding == PositionEmbedding::Rope
            && self.head_dim() < 8
        {
            return Err(ConfigError::HeadDimVideo { head_dim: self.head_dim() });
        }
        self.region_grid()?;
        Ok(())
    }

    /// The code grid and its regions (`frames × grid_size²` tokens, spatial regions).
    ///
    /// # Errors
    ///
    /// [`OrderError`] if `frames`/`grid_size`/`parallel` are not a valid PAR grid.
    pub fn region_grid(&self) -> Result<RegionGrid, OrderError> {
        RegionGrid::video(self.frames, self.grid_size, self.parallel)
    }

    /// Whether this is a video model (`frames > 1`).
    pub fn is_video(&self) -> bool {
        self.frames > 1
    }

    /// Refuses a video config where only images are handled (a code grid of `frames × L²`
    /// tokens must never be read as an `L × L` image with the frames silently dropped).
    ///
    /// # Errors
    ///
    /// [`ConfigError::VideoModel`] naming `what` if `frames > 1`.
    pub fn expect_image(&self, what: &'static str) -> Result<(), ConfigError> {
        if self.is_video() {
            return Err(ConfigError::VideoModel { frames: self.frames, what });
        }
        Ok(())
    }

    /// The sequence layout, decode steps, mask and RoPE positions of this config's grid and
    /// variant.
    ///
    /// # Errors
    ///
    /// [`OrderError`] if `grid_size`/`parallel` are not a valid PAR grid.
    pub fn schedule(&self) -> Result<ParSchedule, OrderError> {
        Ok(ParSchedule::with_variant(self.region_grid()?, self.variant))
    }

    /// Channels per head, `d_model / n_heads`.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// SwiGLU hidden size: `find_multiple(int(2·4·d_model/3 [· multiplier]), multiple_of)`.
    pub fn ffn_hidden(&self) -> usize {
        let mut hidden = 2 * 4 * self.d_model / 3;
        if let Some(m) = self.ffn_dim_multiplier {
            hidden = (m * hidden as f64) as usize;
        }
        hidden.div_ceil(self.multiple_of) * self.multiple_of
    }

    /// Trainable parameters, counted from the config (no allocation):
    /// `L·(4·d² + 3·d·h + 2·d) + 2·V·d + (C+1)·d + (n−1)·d + d`, plus `(T + 2·L_grid)·d` for
    /// learned positions.
    pub fn num_parameters(&self) -> u64 {
        let (d, h) = (self.d_model as u64, self.ffn_hidden() as u64);
        let per_layer = 4 * d * d + 3 * d * h + 2 * d;
        let positions = match self.position_embedding {
            PositionEmbedding::Rope => 0,
            PositionEmbedding::Learned => (self.frames + 2 * self.grid_size) as u64 * d,
        };
        self.n_layers as u64 * per_layer
            + 2 * self.vocab_size as u64 * d
            + (self.num_classes as u64 + 1) * d
            + (self.parallel.saturating_sub(1)) as u64 * d
            + d
            + positions
    }

    /// Bytes of the weights at `bytes_per_param` (4 for f32, 2 for bf16).
    pub fn weight_bytes(&self, bytes_per_param: u64) -> u64 {
        self.num_parameters() * bytes_per_param
    }

    /// An upper estimate of the f32 activations a training step on `sequences` sequences keeps
    /// for the backward pass, without activation checkpointing: per layer, ten `d_model`-wide
    /// tensors (two norms, q, k, v, the attention output, two residuals, the projections) and
    /// three SwiGLU-hidden-wide ones per token, plus the attention scores and probabilities
    /// (`2 · heads · S²`); then the logits, their softmax and gradient (`3 · S · vocab`); times 2
    /// for the gradients and Burn's autodiff intermediates (calibrated on flex: the measured peak
    /// stays below it, docs/training.md). `S = frames · grid² + n` slots. In `f64`, so that
    /// absurd batches give a huge number instead of wrapping; used to refuse a batch the machine
    /// cannot hold before training starts.
    pub fn training_bytes(&self, sequences: usize) -> f64 {
        let rows = sequences as f64;
        let slots = (self.frames as f64) * (self.grid_size as f64).powi(2) + self.parallel as f64;
        let per_token = 10.0 * self.d_model as f64 + 3.0 * self.ffn_hidden() as f64;
        let per_layer = slots * per_token + 2.0 * self.n_heads as f64 * slots * slots;
        let logits = 3.0 * slots * self.vocab_size as f64;
        2.0 * 4.0 * rows * (self.n_layers as f64 * per_layer + logits)
    }

    /// An upper estimate of the f32 memory that KV-cached sampling of `sequences` rows needs on
    /// top of the weights (a batch of B images with classifier-free guidance is 2·B rows): the
    /// cache, `2 · layers · rows · S · d_model`, plus one step's attention scores,
    /// `rows · heads · n · S`, and logits, `rows · n · vocab`, for sequences of
    /// `S = frames · grid² + n` slots and steps of at most `n` tokens; times 2 for the step's
    /// temporaries (calibrated on the host engine and flex: the measured peak stays below it).
    /// In `f64` so that absurd configs overflow to a huge number rather than wrap; used to
    /// refuse a batch or a grid the machine cannot hold before anything is allocated.
    pub fn sampling_bytes(&self, sequences: usize) -> f64 {
        let rows = sequences as f64;
        let slots = (self.frames as f64) * (self.grid_size as f64).powi(2) + self.parallel as f64;
        let step = self.parallel.max(1) as f64;
        let cache = 2.0 * self.n_layers as f64 * rows * slots * self.d_model as f64;
        let scores = rows * self.n_heads as f64 * step * slots;
        let logits = rows * step * self.vocab_size as f64;
        2.0 * 4.0 * (cache + scores + logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_match_the_reference() {
        // docs/spec.md §4.1 table (n = 4) and the figures.
        let n4 = |p: Preset| p.config(16, 4).num_parameters();
        assert_eq!(n4(Preset::GptB), 110_890_752);
        assert_eq!(n4(Preset::GptL), 342_914_048);
        assert_eq!(n4(Preset::GptXl), 774_703_360);
        assert_eq!(n4(Preset::GptXxl), 1_410_977_280);
        assert_eq!(n4(Preset::GptXxxl), 3_893_035_520);
        assert_eq!(n4(Preset::Gpt1b), 1_199_622_144);
        assert_eq!(n4(Preset::Gpt3b), 3_096_668_800);
        for p in [Preset::GptB, Preset::GptL, Preset::GptXl, Preset::Gpt3b] {
            let d = p.config(16, 4).d_model as u64;
            assert_eq!(p.config(16, 1).num_parameters(), n4(p) - 3 * d);
            assert_eq!(p.config(16, 16).num_parameters(), n4(p) + 12 * d);
        }
    }

    #[test]
    fn closed_form_counts_the_built_module() {
        // The closed form against the module Burn builds (an independent count).
        use burn::module::Module;
        let device = burn::prelude::Device::flex();
        for p in [Preset::GptTiny, Preset::GptSmall] {
            for (grid, parallel) in [(4, 1), (4, 4), (8, 16), (8, 4)] {
                let c = p.config(grid, parallel);
                let built = c.init(&device).unwrap().num_params() as u64;
                assert_eq!(c.num_parameters(), built, "{p:?} grid {grid} n = {parallel}");
                for positions in PositionEmbedding::ALL {
                    let v = p.video_config(3, grid, parallel).with_position_embedding(positions);
                    let built = v.init(&device).unwrap().num_params() as u64;
                    assert_eq!(
                        v.num_parameters(),
                        built,
                        "{p:?} video {positions:?} n = {parallel}"
                    );
                }
            }
        }
    }

    #[test]
    fn ffn_hidden_sizes() {
        let h = |p: Preset| p.config(16, 4).ffn_hidden();
        assert_eq!(
            [
                h(Preset::GptB),
                h(Preset::GptL),
                h(Preset::GptXl),
                h(Preset::GptXxl),
                h(Preset::Gpt3b)
            ],
            [2048, 2816, 3584, 4096, 8704]
        );
        assert_eq!(Preset::Gpt3b.config(16, 4).head_dim(), 100);
    }

    #[test]
    fn validate_names_the_field() {
        assert_eq!(
            ParTransformerConfig::new().with_n_layers(0).validate(),
            Err(ConfigError::Zero { field: "n_layers" })
        );
        assert!(matches!(
            ParTransformerConfig::new().with_d_model(40).with_n_heads(4).validate(),
            Err(ConfigError::HeadDim { .. })
        ));
        assert!(matches!(
            ParTransformerConfig::new().with_parallel(2).validate(),
            Err(ConfigError::Grid(OrderError::NotPerfectSquare { parallel: 2 }))
        ));
        assert!(matches!(
            ParTransformerConfig::new().with_attn_dropout(1.0).validate(),
            Err(ConfigError::Probability { field: "attn_dropout", .. })
        ));
        for p in [Preset::GptTiny, Preset::GptSmall, Preset::GptB, Preset::Gpt3b] {
            p.config(16, 4).validate().unwrap();
        }
        assert_eq!(
            ParTransformerConfig::new().with_norm_eps(f64::NAN).validate().unwrap_err().field(),
            "norm_eps"
        );
        assert_eq!(
            ParTransformerConfig::new()
                .with_rope_base(f64::INFINITY)
                .validate()
                .unwrap_err()
                .field(),
            "rope_base"
        );
        assert_eq!(
            ParTransformerConfig::new().with_grid_size(MAX_GRID_SIZE + 16).validate(),
            Err(ConfigError::GridTooLarge(MAX_GRID_SIZE + 16))
        );
        ParTransformerConfig::new()
            .with_grid_size(MAX_GRID_SIZE)
            .with_parallel(16)
            .validate()
            .unwrap();
    }
}
