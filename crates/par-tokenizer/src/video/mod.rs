//! A MAGVIT-v2-style causal video tokenizer (docs/spec.md §8; Yu et al. 2023, "Language Model
//! Beats Diffusion — Tokenizer is Key to Visual Generation", arXiv 2310.05737, §3): RGB clips
//! `[B, 3, T, H, W]` in `[−1, 1]` ↔ code grids `[B, (T − 1)/4 + 1, H/8, W/8]` — PAR's 17×128²
//! UCF-101 clips become 5×16×16 = 1280 tokens of a 64,000-code vocabulary.
//!
//! # Design
//!
//! - **Causal 3D convolutions** ([`CausalConv3d`], MAGVIT-v2 §3.2). Every conv pads time only in
//!   front, with `k_t − 1` copies of the first frame, and space symmetrically with zeros, so an
//!   output frame depends on no later input frame. The GroupNorms ([`FrameGroupNorm`]) take
//!   their statistics per frame for the same reason (a norm over `T` would leak the future).
//! - **The first frame on its own.** Temporal down-sampling is a causal conv with kernel 3,
//!   stride 2 and two replicated front frames: `T → (T − 1)/2 + 1` (17 → 9 → 5 in two stages),
//!   so latent frame 0 sees input frame 0 only and latent frame `t > 0` sees frames `≤ 4t`.
//!   A single image (`T = 1`) is a valid clip with one latent frame, as in MAGVIT-v2's joint
//!   image–video vocabulary. Spatial down-sampling is the same conv's stride 2 in height and
//!   width (three stages: 8×).
//! - **Patch embedding** (`patch_size`, [`space_to_depth`] / [`depth_to_space`]): optionally,
//!   each `p × p` pixel patch becomes `3·p²` channels before the encoder's first conv, and the
//!   decoder's last conv emits `3·p²` channels that are put back into `p × p` patches. The
//!   spatial factor is `p × 2^(stages)`. The paper-scale preset has none (`p = 1`); the CPU
//!   presets use `p = 2` and two stages (both also halving time), because full-resolution 3D
//!   convolutions dominate the cost on a CPU.
//! - **Depth-to-space up-sampling** ([`DepthToSpaceUpsample`], MAGVIT-v2 Appendix): the decoder
//!   mirrors the encoder with a pointwise conv to `C · 2 · 2 (· 2)` channels whose groups are
//!   moved into 2×2 space (and 2× time) by reshape/permute, in steps of at most 6 dimensions
//!   (Burn's ndarray backend supports no more); after a temporal step the first frame is
//!   dropped (`5 → 10 → 9 → 18 → 17`), the inverse of the causal stride.
//! - **ResNet blocks** ([`ResBlock3d`]): GroupNorm + SiLU + causal 3×3×3 convs, like the image
//!   tokenizer's, without attention.
//! - **Quantizer** ([`VideoQuantizer`]): FSQ by default ([`Fsq`]; Mentzer et al. 2023, arXiv
//!   2309.15505) with levels `[8, 8, 8, 5, 5, 5]` = 64,000 codes, because PAR's tokenizer is
//!   "MAGVIT-v2 reproduced by NBP" with a 64K vocabulary and NBP's published reproduction uses
//!   exactly this FSQ (spec §8); FSQ has no codebook parameters, no auxiliary loss and no
//!   collapse to fight. MAGVIT-v2's own Lookup-Free Quantization ([`Lfq`], §3.1: sign codes,
//!   `2^bits` ids, commitment + entropy penalty) is the option (`magvit2-lfq-cpu`). The CPU
//!   presets use small vocabularies (FSQ `[8, 5, 5, 5]` = 1,000 codes, LFQ 10 bits = 1,024)
//!   that a CPU-sized PAR model can learn in minutes.
//!
//! Checkpoints are self-describing safetensors ([`VideoTokenizer::save`] /
//! [`VideoTokenizer::load`]) with the config under [`VIDEO_CONFIG_METADATA_KEY`]; an image
//! tokenizer file is refused with [`VideoCheckpointError::WrongKind`] and vice versa.

mod blocks;
mod checkpoint;
mod config;
mod fsq;
mod lfq;
mod quantizer;
mod tokenizer;

#[cfg(test)]
mod tests;

pub use blocks::{
    CausalConv3d, DecoderLevel, DepthToSpaceUpsample, EncoderLevel, FrameGroupNorm, ResBlock3d,
    VideoDecoder, VideoEncoder, depth_to_space, space_to_depth,
};
pub use checkpoint::{
    VIDEO_CONFIG_METADATA_KEY, VideoCheckpointError, stored_video_config, video_expected_keys,
};
pub use config::{
    FsqConfig, LfqConfig, MAX_LFQ_BITS, ReconstructionLoss, VideoQuantizerConfig,
    VideoTokenizerConfig, VideoTokenizerConfigError, VideoTokenizerPreset,
};
pub use fsq::{CodeError, FSQ_EPS, Fsq};
pub use lfq::{Lfq, entropy_penalty};
pub use quantizer::{VideoQuantizer, VideoQuantizerOutput};
pub use tokenizer::{VideoTokenizer, VideoTokenizerError, VideoTokenizerOutput};
