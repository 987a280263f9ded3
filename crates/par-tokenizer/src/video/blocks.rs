//! Causal 3D building blocks of the video tokenizer (MAGVIT-v2, arXiv 2310.05737, §3.2:
//! causal 3D CNN; Appendix: ResNet blocks, strided-conv down-sampling, depth-to-space
//! up-sampling).

use burn::module::Param;
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{Initializer, PaddingConfig3d};
use burn::prelude::*;
use burn::tensor::activation::silu;

use super::VideoTokenizerConfig;

/// A 3D convolution that is causal in time: the input is padded in front with `k_t − 1`
/// copies of its first frame (replicate padding, nothing after the last frame), and
/// symmetrically in space with `k/2` zeros. Output frame `t` then depends on input frames
/// `≤ s·t` only (`s` the temporal stride), so a clip's first frame is encoded on its own, like
/// an image (MAGVIT-v2 §3.2).
///
/// # Shapes
///
/// - input: `[batch, in_channels, frames, height, width]`, f32
/// - output: `[batch, out_channels, (frames − 1)/s_t + 1, ⌊(height − 1)/s_h⌋ + 1,
///   ⌊(width − 1)/s_w⌋ + 1]` for odd spatial kernels
#[derive(Module, Debug)]
pub struct CausalConv3d {
    /// The convolution (temporal padding 0, spatial padding `k/2`).
    pub conv: Conv3d,
    /// Frames prepended (`k_t − 1`).
    pub time_pad: usize,
}

impl CausalConv3d {
    /// A causal conv from `channels[0]` to `channels[1]` with `kernel` `[k_t, k_h, k_w]` and
    /// `stride` `[s_t, s_h, s_w]`; weights drawn lazily (Burn's default Kaiming-uniform).
    ///
    /// # Panics
    ///
    /// If a channel count or a kernel size is 0 (Burn's own checks).
    pub fn new(
        channels: [usize; 2],
        kernel: [usize; 3],
        stride: [usize; 3],
        device: &Device,
    ) -> Self {
        let conv = Conv3dConfig::new(channels, kernel)
            .with_stride(stride)
            .with_padding(PaddingConfig3d::Explicit(0, kernel[1] / 2, kernel[2] / 2))
            .init(device);
        Self { conv, time_pad: kernel[0] - 1 }
    }

    /// # Shapes
    ///
    /// See [`CausalConv3d`].
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let x = if self.time_pad > 0 {
            let first = x.clone().narrow(2, 0, 1).repeat_dim(2, self.time_pad);
            Tensor::cat(vec![first, x], 2)
        } else {
            x
        };
        self.conv.forward(x)
    }
}

/// GroupNorm with its statistics taken per frame (over the group's channels × height × width),
/// so it stays causal: a plain GroupNorm over `[C/G, T, H, W]` would let the last frame change
/// the normalisation of the first. Learned per-channel `gamma` (init 1) and `beta` (init 0),
/// ε = 1e-6 as in the image tokenizer.
///
/// # Shapes
///
/// - input / output: `[batch, channels, frames, height, width]`
#[derive(Module, Debug)]
pub struct FrameGroupNorm {
    /// Scale, `[channels]`.
    pub gamma: Param<Tensor<1>>,
    /// Shift, `[channels]`.
    pub beta: Param<Tensor<1>>,
    /// Groups.
    pub groups: usize,
    /// ε.
    pub epsilon: f64,
}

impl FrameGroupNorm {
    /// A norm over `channels` channels in `groups` groups.
    ///
    /// # Panics
    ///
    /// If `groups` does not divide `channels` (the config's `validate` rules it out).
    pub fn new(groups: usize, channels: usize, device: &Device) -> Self {
        assert!(
            groups > 0 && channels.is_multiple_of(groups),
            "{channels} channels, {groups} groups"
        );
        Self {
            gamma: Initializer::Ones.init([channels], device),
            beta: Initializer::Zeros.init([channels], device),
            groups,
            epsilon: 1e-6,
        }
    }

    /// # Shapes
    ///
    /// See [`FrameGroupNorm`].
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let [b, c, t, h, w] = x.dims();
        let g = self.groups;
        let grouped = x.reshape([b, g, c / g, t, h * w]);
        let mean = grouped.clone().mean_dim(2).mean_dim(4); // [b, g, 1, t, 1]
        let centred = grouped - mean;
        let var = centred.clone().square().mean_dim(2).mean_dim(4);
        let normed = (centred / (var + self.epsilon).sqrt()).reshape([b, c, t, h, w]);
        normed * self.gamma.val().reshape([1, c, 1, 1, 1])
            + self.beta.val().reshape([1, c, 1, 1, 1])
    }
}

/// `GN → SiLU → causal conv3×3×3 → GN → SiLU → causal conv3×3×3`, plus a 1×1×1 `shortcut`
/// when the channel count changes (the image tokenizer's ResnetBlock in causal 3D; MAGVIT-v2
/// Appendix).
///
/// # Shapes
///
/// - input: `[batch, cin, frames, height, width]`; output: `[batch, cout, frames, height, width]`
#[derive(Module, Debug)]
pub struct ResBlock3d {
    /// First norm.
    pub norm1: FrameGroupNorm,
    /// First conv.
    pub conv1: CausalConv3d,
    /// Second norm.
    pub norm2: FrameGroupNorm,
    /// Second conv.
    pub conv2: CausalConv3d,
    /// 1×1×1 projection of the input when `cin ≠ cout`.
    pub shortcut: Option<CausalConv3d>,
}

impl ResBlock3d {
    /// A block from `cin` to `cout` channels with `groups` GroupNorm groups.
    ///
    /// # Panics
    ///
    /// As [`FrameGroupNorm::new`].
    pub fn new(cin: usize, cout: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm1: FrameGroupNorm::new(groups, cin, device),
            conv1: CausalConv3d::new([cin, cout], [3, 3, 3], [1, 1, 1], device),
            norm2: FrameGroupNorm::new(groups, cout, device),
            conv2: CausalConv3d::new([cout, cout], [3, 3, 3], [1, 1, 1], device),
            shortcut: (cin != cout)
                .then(|| CausalConv3d::new([cin, cout], [1, 1, 1], [1, 1, 1], device)),
        }
    }

    /// # Shapes
    ///
    /// See [`ResBlock3d`].
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let h = self.conv1.forward(silu(self.norm1.forward(x.clone())));
        let h = self.conv2.forward(silu(self.norm2.forward(h)));
        let shortcut = match &self.shortcut {
            Some(c) => c.forward(x),
            None => x,
        };
        shortcut + h
    }
}

/// Space-to-depth: every `p × p` patch of a frame becomes `p²` channels — the encoder's patch
/// embedding (`patch_size`). Output channel `c·p² + dy·p + dx` at `(t, y, x)` is input channel
/// `c` at `(t, p·y + dy, p·x + dx)`; the inverse of [`depth_to_space`]. `p = 1` returns `x`.
/// Uses tensors of at most 6 dimensions (Burn's ndarray backend supports no more).
///
/// # Shapes
///
/// - input: `[batch, channels, frames, height, width]`, `p` dividing `height` and `width`
/// - output: `[batch, channels · p², frames, height / p, width / p]`
///
/// # Panics
///
/// If `p` is 0 or does not divide `height` and `width`.
pub fn space_to_depth(x: Tensor<5>, p: usize) -> Tensor<5> {
    if p == 1 {
        return x;
    }
    let [b, c, t, h, w] = x.dims();
    assert!(p > 0 && h.is_multiple_of(p) && w.is_multiple_of(p), "patch {p} of {h}×{w} frames");
    let (h, w) = (h / p, w / p);
    // [b·c, t, h, dy, w, dx] → [b·c, dy, dx, t, h, w]
    x.reshape([b * c, t, h, p, w, p]).permute([0, 3, 5, 1, 2, 4]).reshape([b, c * p * p, t, h, w])
}

/// Depth-to-space: groups of `p²` channels become `p × p` patches — the inverse of
/// [`space_to_depth`] (the decoder's last step with `patch_size`, and the spatial half of
/// [`DepthToSpaceUpsample`]). Input channel `c·p² + dy·p + dx` at `(t, y, x)` lands in channel
/// `c` at `(t, p·y + dy, p·x + dx)`. `p = 1` returns `x`. At most 6 dimensions.
///
/// # Shapes
///
/// - input: `[batch, channels · p², frames, height, width]`
/// - output: `[batch, channels, frames, height · p, width · p]`
///
/// # Panics
///
/// If `p` is 0 or `p²` does not divide the channel count.
pub fn depth_to_space(x: Tensor<5>, p: usize) -> Tensor<5> {
    if p == 1 {
        return x;
    }
    let [b, cp, t, h, w] = x.dims();
    assert!(p > 0 && cp.is_multiple_of(p * p), "{cp} channels are not groups of {p}²");
    let c = cp / (p * p);
    // [b·c, dy, dx, t, h, w] → [b·c, t, h, dy, w, dx]
    x.reshape([b * c, p, p, t, h, w]).permute([0, 3, 4, 1, 5, 2]).reshape([b, c, t, h * p, w * p])
}

/// Depth-to-space up-sampling (MAGVIT-v2 Appendix; `magvit2-pytorch`'s `SpatialUpsample2x` /
/// `TimeUpsample2x`): a pointwise causal conv to `cout · s_t · 2 · 2` channels, then the channel
/// groups are moved into time (`s_t ∈ {1, 2}`) and 2×2 space by reshape/permute (time first,
/// then [`depth_to_space`], so no tensor has more than 6 dimensions). After a 2× temporal step
/// the first output frame is dropped, mirroring the encoder's causal stride: `T → 2T − 1`
/// (5 → 9 → 17), so latent frame 0 decodes to frame 0 alone. Channel `((c·s_t + s)·2 + dy)·2 +
/// dx` at `(t, y, x)` lands in channel `c` at `(s_t·t + s, 2y + dy, 2x + dx)` before the drop.
///
/// # Shapes
///
/// - input: `[batch, cin, frames, height, width]`
/// - output: `[batch, cout, s_t·frames − (s_t − 1), 2·height, 2·width]`
#[derive(Module, Debug)]
pub struct DepthToSpaceUpsample {
    /// The 1×1×1 conv producing the sub-pixel channels.
    pub conv: CausalConv3d,
    /// Output channels.
    pub cout: usize,
    /// Temporal factor `s_t` (1 or 2).
    pub time_factor: usize,
}

impl DepthToSpaceUpsample {
    /// An up-sampler from `cin` to `cout` channels; `temporal` doubles time too.
    pub fn new(cin: usize, cout: usize, temporal: bool, device: &Device) -> Self {
        let time_factor = if temporal { 2 } else { 1 };
        let conv = CausalConv3d::new([cin, cout * time_factor * 4], [1, 1, 1], [1, 1, 1], device);
        Self { conv, cout, time_factor }
    }

    /// # Shapes
    ///
    /// See [`DepthToSpaceUpsample`].
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        let [b, _, t, h, w] = x.dims();
        let (c, st) = (self.cout, self.time_factor);
        let y = self.conv.forward(x);
        if st == 1 {
            return depth_to_space(y, 2);
        }
        // Time: [b·c, s, 4, t, h·w] → [b·c, 4, t, s, h·w] = [b, c·4, t·st, h, w] (sub-frame s
        // after its frame t), then space.
        let y = y.reshape([b * c, st, 4, t, h * w]).permute([0, 2, 3, 1, 4]);
        let y = depth_to_space(y.reshape([b, c * 4, t * st, h, w]), 2);
        y.narrow(2, st - 1, t * st - (st - 1))
    }
}

/// One encoder level: ResNet blocks, then (levels but the last) a causal conv 3×3×3 with
/// stride `[s_t, 2, 2]`.
#[derive(Module, Debug)]
pub struct EncoderLevel {
    /// ResNet blocks (the first changes the channel count).
    pub res: Vec<ResBlock3d>,
    /// The strided down-sampling conv.
    pub downsample: Option<CausalConv3d>,
}

/// One decoder level: ResNet blocks, then (levels but the last) a depth-to-space up-sampler to
/// the next level's channels.
#[derive(Module, Debug)]
pub struct DecoderLevel {
    /// ResNet blocks.
    pub res: Vec<ResBlock3d>,
    /// The up-sampler.
    pub upsample: Option<DepthToSpaceUpsample>,
}

/// Video → continuous latent: space-to-depth patch embedding (`patch_size`), causal conv-in,
/// levels of causal ResNet blocks with strided down-sampling, `GN → SiLU → 1×1×1 conv` to the
/// quantizer's channels.
///
/// # Shapes
///
/// - video: `[batch, in_channels, T, H, W]` → `[batch, quantizer dim, (T − 1)/f_t + 1, H/f_s, W/f_s]`
#[derive(Module, Debug)]
pub struct VideoEncoder {
    /// Side of the space-to-depth patch applied to the video first ([`space_to_depth`]).
    pub patch_size: usize,
    /// Stem conv 3×3×3 from `in_channels · patch_size²` to `base_channels`.
    pub conv_in: CausalConv3d,
    /// Levels from full to lowest resolution.
    pub levels: Vec<EncoderLevel>,
    /// Output norm.
    pub norm_out: FrameGroupNorm,
    /// Pointwise conv to the quantizer's channels.
    pub conv_out: CausalConv3d,
}

impl VideoEncoder {
    /// The encoder of a validated `config`.
    ///
    /// # Panics
    ///
    /// On an invalid config (`VideoTokenizerConfig::init` validates first).
    pub fn new(config: &VideoTokenizerConfig, device: &Device) -> Self {
        let (ch, g) = (config.base_channels, config.norm_groups);
        let n = config.channel_mult.len();
        let mut cin = ch;
        let levels = config
            .channel_mult
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let cout = ch * m;
                let res = (0..config.num_res_blocks)
                    .map(|j| ResBlock3d::new(if j == 0 { cin } else { cout }, cout, g, device))
                    .collect();
                cin = cout;
                let downsample = (i < n - 1).then(|| {
                    let st = if config.temporal_downsample[i] { 2 } else { 1 };
                    CausalConv3d::new([cout, cout], [3, 3, 3], [st, 2, 2], device)
                });
                EncoderLevel { res, downsample }
            })
            .collect();
        let pixels = config.in_channels * config.patch_size * config.patch_size;
        Self {
            patch_size: config.patch_size,
            conv_in: CausalConv3d::new([pixels, ch], [3, 3, 3], [1, 1, 1], device),
            levels,
            norm_out: FrameGroupNorm::new(g, cin, device),
            conv_out: CausalConv3d::new(
                [cin, config.quantizer.dim()],
                [1, 1, 1],
                [1, 1, 1],
                device,
            ),
        }
    }

    /// # Shapes
    ///
    /// See [`VideoEncoder`].
    pub fn forward(&self, video: Tensor<5>) -> Tensor<5> {
        let mut x = self.conv_in.forward(space_to_depth(video, self.patch_size));
        for level in &self.levels {
            for res in &level.res {
                x = res.forward(x);
            }
            if let Some(d) = &level.downsample {
                x = d.forward(x);
            }
        }
        self.conv_out.forward(silu(self.norm_out.forward(x)))
    }
}

/// Quantized latent → video: causal conv-in, levels of causal ResNet blocks with depth-to-space
/// up-sampling, `GN → SiLU → causal conv 3×3×3` to `in_channels · patch_size²` channels, and
/// [`depth_to_space`] of those into pixels (unclamped, ≈ `[−1, 1]`).
///
/// # Shapes
///
/// - codes: `[batch, quantizer dim, t, h, w]` → `[batch, in_channels, (t − 1)·f_t + 1, h·f_s, w·f_s]`
#[derive(Module, Debug)]
pub struct VideoDecoder {
    /// Stem conv 3×3×3 from the quantizer's channels.
    pub conv_in: CausalConv3d,
    /// Levels from lowest to full resolution.
    pub levels: Vec<DecoderLevel>,
    /// Output norm.
    pub norm_out: FrameGroupNorm,
    /// Output conv to `in_channels · patch_size²` channels.
    pub conv_out: CausalConv3d,
    /// Side of the depth-to-space patch applied last (the encoder's `patch_size`).
    pub patch_size: usize,
}

impl VideoDecoder {
    /// The decoder of a validated `config`.
    ///
    /// # Panics
    ///
    /// On an invalid config (`VideoTokenizerConfig::init` validates first).
    pub fn new(config: &VideoTokenizerConfig, device: &Device) -> Self {
        let (ch, g) = (config.base_channels, config.norm_groups);
        let n = config.channel_mult.len();
        let top = ch * config.channel_mult[n - 1];
        let levels = (0..n)
            .rev()
            .map(|i| {
                let c = ch * config.channel_mult[i];
                let res = (0..config.num_res_blocks).map(|_| ResBlock3d::new(c, c, g, device));
                // Decoder level `i` undoes encoder stage `i − 1`.
                let upsample = (i > 0).then(|| {
                    let next = ch * config.channel_mult[i - 1];
                    DepthToSpaceUpsample::new(c, next, config.temporal_downsample[i - 1], device)
                });
                DecoderLevel { res: res.collect(), upsample }
            })
            .collect();
        let pixels = config.in_channels * config.patch_size * config.patch_size;
        Self {
            conv_in: CausalConv3d::new([config.quantizer.dim(), top], [3, 3, 3], [1, 1, 1], device),
            levels,
            norm_out: FrameGroupNorm::new(g, ch, device),
            conv_out: CausalConv3d::new([ch, pixels], [3, 3, 3], [1, 1, 1], device),
            patch_size: config.patch_size,
        }
    }

    /// # Shapes
    ///
    /// See [`VideoDecoder`].
    pub fn forward(&self, codes: Tensor<5>) -> Tensor<5> {
        let mut x = self.conv_in.forward(codes);
        for level in &self.levels {
            for res in &level.res {
                x = res.forward(x);
            }
            if let Some(u) = &level.upsample {
                x = u.forward(x);
            }
        }
        depth_to_space(self.conv_out.forward(silu(self.norm_out.forward(x))), self.patch_size)
    }
}
