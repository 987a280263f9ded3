//! Encoder and decoder building blocks (docs/spec.md §6.1; upstream `vq_model.py`).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{GroupNorm, GroupNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};

use crate::VqTokenizerConfig;

fn swish(x: Tensor<4>) -> Tensor<4> {
    x.clone() * sigmoid(x)
}

fn conv(cin: usize, cout: usize, kernel: usize, device: &Device) -> Conv2d {
    let pad = kernel / 2;
    Conv2dConfig::new([cin, cout], [kernel, kernel])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .init(device)
}

fn norm(groups: usize, channels: usize, device: &Device) -> GroupNorm {
    GroupNormConfig::new(groups, channels).with_epsilon(1e-6).init(device)
}

/// `GN → swish → conv3×3 → GN → swish → conv3×3`, plus a 1×1 `nin_shortcut` when the channel
/// count changes.
#[derive(Module, Debug)]
pub struct ResnetBlock {
    /// First norm.
    pub norm1: GroupNorm,
    /// First 3×3 conv.
    pub conv1: Conv2d,
    /// Second norm.
    pub norm2: GroupNorm,
    /// Second 3×3 conv.
    pub conv2: Conv2d,
    /// 1×1 projection of the input when `cin ≠ cout`.
    pub nin_shortcut: Option<Conv2d>,
}

impl ResnetBlock {
    /// A block from `cin` to `cout` channels.
    pub fn new(cin: usize, cout: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm1: norm(groups, cin, device),
            conv1: conv(cin, cout, 3, device),
            norm2: norm(groups, cout, device),
            conv2: conv(cout, cout, 3, device),
            nin_shortcut: (cin != cout).then(|| conv(cin, cout, 1, device)),
        }
    }

    /// # Shapes
    ///
    /// - x: `[batch_size, cin, height, width]`; output: `[batch_size, cout, height, width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = self.conv1.forward(swish(self.norm1.forward(x.clone())));
        let h = self.conv2.forward(swish(self.norm2.forward(h)));
        let shortcut = match &self.nin_shortcut {
            Some(c) => c.forward(x),
            None => x,
        };
        shortcut + h
    }
}

/// Single-head self-attention over the `height·width` positions with 1×1 q/k/v/out convs.
#[derive(Module, Debug)]
pub struct AttnBlock {
    /// Input norm.
    pub norm: GroupNorm,
    /// Query 1×1 conv.
    pub q: Conv2d,
    /// Key 1×1 conv.
    pub k: Conv2d,
    /// Value 1×1 conv.
    pub v: Conv2d,
    /// Output 1×1 conv.
    pub proj_out: Conv2d,
}

impl AttnBlock {
    /// A block over `channels` channels.
    pub fn new(channels: usize, groups: usize, device: &Device) -> Self {
        Self {
            norm: norm(groups, channels, device),
            q: conv(channels, channels, 1, device),
            k: conv(channels, channels, 1, device),
            v: conv(channels, channels, 1, device),
            proj_out: conv(channels, channels, 1, device),
        }
    }

    /// # Shapes
    ///
    /// - x: `[batch_size, channels, height, width]`; output: the same
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let n = self.norm.forward(x.clone());
        let q = self.q.forward(n.clone()).reshape([b, c, h * w]).swap_dims(1, 2); // [b, hw, c]
        let k = self.k.forward(n.clone()).reshape([b, c, h * w]); // [b, c, hw]
        let v = self.v.forward(n).reshape([b, c, h * w]); // [b, c, hw]
        let weights = softmax(q.matmul(k) / (c as f64).sqrt(), 2); // [b, hw(query), hw(key)]
        let out = v.matmul(weights.swap_dims(1, 2)).reshape([b, c, h, w]);
        x + self.proj_out.forward(out)
    }
}

/// Pad right/bottom by one zero, then a 3×3 conv with stride 2 (halves height and width).
#[derive(Module, Debug)]
pub struct Downsample {
    /// The strided conv.
    pub conv: Conv2d,
}

impl Downsample {
    /// # Shapes
    ///
    /// - x: `[batch_size, c, height, width]`; output: `[batch_size, c, height/2, width/2]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x.pad((0, 1, 0, 1), burn::tensor::ops::PadMode::Constant(0.0)))
    }
}

/// Nearest-neighbour ×2 up-sampling, then a 3×3 conv.
#[derive(Module, Debug)]
pub struct Upsample {
    /// The conv after up-sampling.
    pub conv: Conv2d,
}

impl Upsample {
    /// # Shapes
    ///
    /// - x: `[batch_size, c, height, width]`; output: `[batch_size, c, 2·height, 2·width]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, h, w] = x.dims();
        let up =
            x.reshape([b, c, h, 1, w, 1]).expand([b, c, h, 2, w, 2]).reshape([b, c, 2 * h, 2 * w]);
        self.conv.forward(up)
    }
}

/// One resolution level: ResNet blocks, optional attention after each, optional resampling.
#[derive(Module, Debug)]
pub struct Level {
    /// ResNet blocks.
    pub res: Vec<ResnetBlock>,
    /// Attention after each ResNet block (lowest resolution only).
    pub attn: Vec<AttnBlock>,
    /// Down-sampling at the end (encoder levels but the last).
    pub downsample: Option<Downsample>,
    /// Up-sampling at the end (decoder levels but the last).
    pub upsample: Option<Upsample>,
}

impl Level {
    fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for (i, res) in self.res.iter().enumerate() {
            x = res.forward(x);
            if let Some(attn) = self.attn.get(i) {
                x = attn.forward(x);
            }
        }
        if let Some(d) = &self.downsample {
            x = d.forward(x);
        }
        if let Some(u) = &self.upsample {
            x = u.forward(x);
        }
        x
    }
}

/// The middle of encoder and decoder: ResNet → attention → ResNet.
#[derive(Module, Debug)]
pub struct Mid {
    /// First ResNet block (upstream `mid.0`).
    pub res_in: ResnetBlock,
    /// Attention (upstream `mid.1`).
    pub attn: AttnBlock,
    /// Second ResNet block (upstream `mid.2`).
    pub res_out: ResnetBlock,
}

impl Mid {
    fn new(channels: usize, groups: usize, device: &Device) -> Self {
        Self {
            res_in: ResnetBlock::new(channels, channels, groups, device),
            attn: AttnBlock::new(channels, groups, device),
            res_out: ResnetBlock::new(channels, channels, groups, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.res_out.forward(self.attn.forward(self.res_in.forward(x)))
    }
}

/// Image → latent `[B, z_channels, H/f, W/f]`.
#[derive(Module, Debug)]
pub struct Encoder {
    /// Stem conv.
    pub conv_in: Conv2d,
    /// Levels from full to lowest resolution.
    pub conv_blocks: Vec<Level>,
    /// Middle blocks.
    pub mid: Mid,
    /// Output norm.
    pub norm_out: GroupNorm,
    /// Output conv to `z_channels`.
    pub conv_out: Conv2d,
}

impl Encoder {
    /// The encoder of `config`.
    pub fn new(config: &VqTokenizerConfig, device: &Device) -> Self {
        let (ch, g) = (config.base_channels, config.norm_groups);
        let levels = config.channel_mult.len();
        let mut cin = ch;
        let conv_blocks = config
            .channel_mult
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let cout = ch * m;
                let res = (0..config.num_res_blocks)
                    .map(|j| ResnetBlock::new(if j == 0 { cin } else { cout }, cout, g, device))
                    .collect();
                let attn = if i == levels - 1 {
                    (0..config.num_res_blocks).map(|_| AttnBlock::new(cout, g, device)).collect()
                } else {
                    Vec::new()
                };
                cin = cout;
                Level {
                    res,
                    attn,
                    downsample: (i < levels - 1).then(|| Downsample {
                        conv: Conv2dConfig::new([cout, cout], [3, 3])
                            .with_stride([2, 2])
                            .init(device),
                    }),
                    upsample: None,
                }
            })
            .collect();
        Self {
            conv_in: conv(config.image_channels, ch, 3, device),
            conv_blocks,
            mid: Mid::new(cin, g, device),
            norm_out: norm(g, cin, device),
            conv_out: conv(cin, config.z_channels, 3, device),
        }
    }

    /// # Shapes
    ///
    /// - images: `[batch_size, image_channels, height, width]`
    /// - output: `[batch_size, z_channels, height/f, width/f]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = self.conv_in.forward(images);
        for level in &self.conv_blocks {
            x = level.forward(x);
        }
        x = self.mid.forward(x);
        self.conv_out.forward(swish(self.norm_out.forward(x)))
    }
}

/// Latent → image.
#[derive(Module, Debug)]
pub struct Decoder {
    /// Stem conv from `z_channels`.
    pub conv_in: Conv2d,
    /// Middle blocks.
    pub mid: Mid,
    /// Levels from lowest to full resolution.
    pub conv_blocks: Vec<Level>,
    /// Output norm.
    pub norm_out: GroupNorm,
    /// Output conv to image channels.
    pub conv_out: Conv2d,
}

impl Decoder {
    /// The decoder of `config`.
    pub fn new(config: &VqTokenizerConfig, device: &Device) -> Self {
        let (ch, g) = (config.base_channels, config.norm_groups);
        let levels = config.channel_mult.len();
        let top = ch * config.channel_mult[levels - 1];
        let mut cin = top;
        let conv_blocks = config
            .channel_mult
            .iter()
            .rev()
            .enumerate()
            .map(|(i, m)| {
                let cout = ch * m;
                let res = (0..=config.num_res_blocks)
                    .map(|j| ResnetBlock::new(if j == 0 { cin } else { cout }, cout, g, device))
                    .collect();
                let attn = if i == 0 {
                    (0..=config.num_res_blocks).map(|_| AttnBlock::new(cout, g, device)).collect()
                } else {
                    Vec::new()
                };
                cin = cout;
                Level {
                    res,
                    attn,
                    downsample: None,
                    upsample: (i < levels - 1)
                        .then(|| Upsample { conv: conv(cout, cout, 3, device) }),
                }
            })
            .collect();
        Self {
            conv_in: conv(config.z_channels, top, 3, device),
            mid: Mid::new(top, g, device),
            conv_blocks,
            norm_out: norm(g, cin, device),
            conv_out: conv(cin, config.image_channels, 3, device),
        }
    }

    /// # Shapes
    ///
    /// - z: `[batch_size, z_channels, h, w]`
    /// - output: `[batch_size, image_channels, h·f, w·f]` (unclamped, ≈ [−1, 1])
    pub fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        let mut x = self.mid.forward(self.conv_in.forward(z));
        for level in &self.conv_blocks {
            x = level.forward(x);
        }
        self.conv_out.forward(swish(self.norm_out.forward(x)))
    }
}
