//! The PatchGAN discriminator of the tokenizer's adversarial loss (pix2pix `NLayerDiscriminator`,
//! docs/spec.md §6.2) and the hinge losses.

use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{leaky_relu, relu};

/// A conv 4×4 (+ optional BatchNorm) + LeakyReLU(0.2) stage.
#[derive(Module, Debug)]
pub struct Stage {
    /// The convolution.
    pub conv: Conv2d,
    /// Normalisation (all stages but the first).
    pub norm: Option<BatchNorm>,
}

/// `n_layers` stride-2 stages, one stride-1 stage, then a 1-channel stride-1 conv: a map of
/// real/fake logits, one per receptive-field patch (256 px, 3 layers → 30×30).
#[derive(Module, Debug)]
pub struct PatchDiscriminator {
    /// The LeakyReLU stages.
    pub stages: Vec<Stage>,
    /// Final 4×4 conv to one logit channel.
    pub head: Conv2d,
}

fn conv(cin: usize, cout: usize, stride: usize, bias: bool, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [4, 4])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_bias(bias)
        .with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 })
        .init(device)
}

fn norm(channels: usize, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(channels).init(device);
    bn.gamma =
        Param::from_tensor(Tensor::random([channels], Distribution::Normal(1.0, 0.02), device));
    bn
}

impl PatchDiscriminator {
    /// pix2pix's discriminator: `channels` filters in the first stage (64 upstream), doubled per
    /// stage up to 8×, `n_layers` stride-2 stages (3 upstream); conv weights N(0, 0.02),
    /// BatchNorm weights N(1, 0.02), biases 0.
    ///
    /// # Panics
    ///
    /// If `n_layers` is 0.
    pub fn new(image_channels: usize, channels: usize, n_layers: usize, device: &Device) -> Self {
        assert!(n_layers > 0, "at least one down-sampling stage");
        let mut stages =
            vec![Stage { conv: conv(image_channels, channels, 2, true, device), norm: None }];
        let mut mult = 1;
        for n in 1..=n_layers {
            let prev = mult;
            mult = (1 << n).min(8);
            let stride = if n == n_layers { 1 } else { 2 };
            stages.push(Stage {
                conv: conv(channels * prev, channels * mult, stride, false, device),
                norm: Some(norm(channels * mult, device)),
            });
        }
        Self { stages, head: conv(channels * mult, 1, 1, true, device) }
    }

    /// Patch logits.
    ///
    /// # Shapes
    ///
    /// - images: `[batch_size, channels, height, width]`; output `[batch_size, 1, h', w']`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = images;
        for stage in &self.stages {
            x = stage.conv.forward(x);
            if let Some(n) = &stage.norm {
                x = n.forward(x);
            }
            x = leaky_relu(x, 0.2);
        }
        self.head.forward(x)
    }
}

/// Hinge loss of the discriminator: `0.5 · (mean relu(1 − D(x)) + mean relu(1 + D(x̂)))`.
pub fn hinge_d_loss(logits_real: Tensor<4>, logits_fake: Tensor<4>) -> Tensor<1> {
    (relu(logits_real.neg() + 1.0).mean() + relu(logits_fake + 1.0).mean()) * 0.5
}

/// Generator side of the hinge loss: `−mean D(x̂)`.
pub fn hinge_g_loss(logits_fake: Tensor<4>) -> Tensor<1> {
    logits_fake.mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_map_sizes_match_pix2pix() {
        let device = Device::flex();
        let d = PatchDiscriminator::new(3, 8, 3, &device);
        assert_eq!(d.forward(Tensor::zeros([1, 3, 256, 256], &device)).dims(), [1, 1, 30, 30]);
        let d = PatchDiscriminator::new(1, 8, 2, &device);
        assert_eq!(d.forward(Tensor::zeros([2, 1, 32, 32], &device)).dims(), [2, 1, 6, 6]);
    }

    #[test]
    fn hinge_losses_of_known_logits() {
        let device = Device::flex();
        let real = Tensor::<4>::from_floats([[[[2.0, 0.5]]]], &device);
        let fake = Tensor::<4>::from_floats([[[[-2.0, 0.0]]]], &device);
        // real: relu(1−2)=0, relu(1−0.5)=0.5 → 0.25; fake: relu(−1)=0, relu(1)=1 → 0.5.
        assert!((hinge_d_loss(real, fake.clone()).into_scalar::<f32>() - 0.375).abs() < 1e-6);
        assert!((hinge_g_loss(fake).into_scalar::<f32>() - 1.0).abs() < 1e-6);
    }
}
