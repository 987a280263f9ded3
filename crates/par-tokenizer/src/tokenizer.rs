//! [`VqTokenizer`]: images ↔ code grids.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;
use burn::tensor::TensorData;

use crate::{Decoder, Encoder, TokenizerConfigError, VectorQuantizer, VqOutput, VqTokenizerConfig};

/// LlamaGen's VQ model: encoder → `quant_conv` → quantizer; codes → `post_quant_conv` → decoder.
#[derive(Module, Debug)]
pub struct VqTokenizer {
    /// Image → latent.
    pub encoder: Encoder,
    /// Latent → image.
    pub decoder: Decoder,
    /// The codebook.
    pub quantize: VectorQuantizer,
    /// 1×1 conv `z_channels → codebook_dim`.
    pub quant_conv: Conv2d,
    /// 1×1 conv `codebook_dim → z_channels`.
    pub post_quant_conv: Conv2d,
    #[module(skip)]
    config: VqTokenizerConfig,
}

impl VqTokenizerConfig {
    /// A randomly initialised tokenizer.
    ///
    /// # Errors
    ///
    /// [`TokenizerConfigError`] if the config is invalid.
    pub fn init(&self, device: &Device) -> Result<VqTokenizer, TokenizerConfigError> {
        self.validate()?;
        Ok(VqTokenizer {
            encoder: Encoder::new(self, device),
            decoder: Decoder::new(self, device),
            quantize: VectorQuantizer::new(
                self.codebook_size,
                self.codebook_dim,
                self.commitment_weight,
                self.entropy_loss_ratio,
                device,
            ),
            quant_conv: Conv2dConfig::new([self.z_channels, self.codebook_dim], [1, 1])
                .init(device),
            post_quant_conv: Conv2dConfig::new([self.codebook_dim, self.z_channels], [1, 1])
                .init(device),
            config: self.clone(),
        })
    }
}

impl VqTokenizer {
    /// The configuration the tokenizer was built with.
    pub fn config(&self) -> &VqTokenizerConfig {
        &self.config
    }

    /// Encodes and quantizes images.
    ///
    /// # Shapes
    ///
    /// - images: `[batch_size, image_channels, height, width]` in `[−1, 1]`, height and width
    ///   multiples of the down-sampling factor
    pub fn quantize_images(&self, images: Tensor<4>) -> VqOutput {
        self.quantize.forward(
            self.quant_conv.forward(self.encoder.forward(images)),
            self.config.entropy_loss_ratio > 0.0,
        )
    }

    /// Code grids of images.
    ///
    /// # Shapes
    ///
    /// - images: `[batch_size, image_channels, height, width]`; output: `[batch_size, h, w]`
    pub fn encode(&self, images: Tensor<4>) -> Tensor<3, Int> {
        self.quantize_images(images).indices
    }

    /// Images from quantized latents.
    ///
    /// # Shapes
    ///
    /// - quantized: `[batch_size, codebook_dim, h, w]`; output: `[batch_size, image_channels, h·f, w·f]`
    pub fn decode_latent(&self, quantized: Tensor<4>) -> Tensor<4> {
        self.decoder.forward(self.post_quant_conv.forward(quantized))
    }

    /// Images from code grids (unclamped, ≈ `[−1, 1]`).
    ///
    /// # Shapes
    ///
    /// - codes: `[batch_size, h, w]`; output: `[batch_size, image_channels, h·f, w·f]`
    pub fn decode(&self, codes: Tensor<3, Int>) -> Tensor<4> {
        self.decode_latent(self.quantize.lookup(codes))
    }
}

/// Why code grids could not be turned into images.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeImagesError {
    /// The code array does not hold `n` grids of `h × w`, or a size is 0.
    #[error("{len} codes do not make {n} grid(s) of {h}×{w}")]
    Shape {
        /// Codes given.
        len: usize,
        /// Grids asked for.
        n: usize,
        /// Grid height.
        h: usize,
        /// Grid width.
        w: usize,
    },
    /// A code id outside the codebook.
    #[error("code id {code} outside the codebook 0..{codebook_size}")]
    CodeRange {
        /// The id.
        code: i64,
        /// Codebook entries.
        codebook_size: usize,
    },
    /// The decoder produced NaN or ±∞ (its weights overflow).
    #[error(
        "non-finite pixels in decoded grid {grid} ({value}); the tokenizer's decoder overflows"
    )]
    NonFinite {
        /// The grid (0-based).
        grid: usize,
        /// The value.
        value: f32,
    },
    /// The pixels could not be read back from the device.
    #[error("reading decoded images: {0}")]
    Readback(String),
}

impl VqTokenizer {
    /// Code grids to 8-bit images, the reference's path back to pixels (spec §3.5): decode
    /// (`decode`, the l2-normalised codebook rows through `post_quant_conv` and the decoder),
    /// optionally resize to `resize_to × resize_to` with PyTorch's bicubic interpolation (the 384 →
    /// 256 px step before FID, `par_data::interpolate_bicubic`), then
    /// `uint8 = trunc(clamp(127.5·x + 128, 0, 255))` (`par_data::PixelImage::from_chw_signed`).
    /// Every command that shows or scores generated images goes through here.
    ///
    /// # Shapes
    ///
    /// - codes: `[n, h, w]` row-major raster-order code ids
    /// - output: `n` images of `h·f × w·f` (or `resize_to`) pixels, `image_channels` channels
    ///
    /// # Errors
    ///
    /// [`DecodeImagesError`] for a wrong shape, an id outside the codebook, non-finite pixels.
    pub fn decode_images(
        &self,
        codes: &[i64],
        n: usize,
        h: usize,
        w: usize,
        batch_size: usize,
        resize_to: Option<usize>,
    ) -> Result<Vec<par_data::PixelImage>, DecodeImagesError> {
        let mut sets = self.decode_images_at(codes, n, h, w, batch_size, &[resize_to])?;
        Ok(sets.remove(0))
    }

    /// [`VqTokenizer::decode_images`] at several sizes from one decoder pass: one image set per
    /// entry of `sizes` (`None`: the decoder's own size), e.g. the PNGs at 384 px and the ADM
    /// evaluator's copy at 256 px.
    ///
    /// # Shapes
    ///
    /// - codes: `[n, h, w]` row-major raster-order code ids
    /// - output: `sizes.len()` sets of `n` images
    ///
    /// # Errors
    ///
    /// As [`VqTokenizer::decode_images`]; no sizes, or a size of 0, is a shape error.
    pub fn decode_images_at(
        &self,
        codes: &[i64],
        n: usize,
        h: usize,
        w: usize,
        batch_size: usize,
        sizes: &[Option<usize>],
    ) -> Result<Vec<Vec<par_data::PixelImage>>, DecodeImagesError> {
        if n == 0
            || h == 0
            || w == 0
            || codes.len() != n * h * w
            || sizes.is_empty()
            || sizes.contains(&Some(0))
        {
            return Err(DecodeImagesError::Shape { len: codes.len(), n, h, w });
        }
        let k = self.config.codebook_size;
        if let Some(&code) = codes.iter().find(|&&c| c < 0 || c as usize >= k) {
            return Err(DecodeImagesError::CodeRange { code, codebook_size: k });
        }
        let device = self.post_quant_conv.weight.device();
        let f = self.config.downsample_factor();
        let (c, ih, iw) = (self.config.image_channels, h * f, w * f);
        let mut sets: Vec<Vec<par_data::PixelImage>> = vec![Vec::with_capacity(n); sizes.len()];
        for start in (0..n).step_by(batch_size.max(1)) {
            let b = batch_size.max(1).min(n - start);
            let part = codes[start * h * w..(start + b) * h * w].to_vec();
            let grid = Tensor::<3, Int>::from_data(TensorData::new(part, [b, h, w]), &device);
            let pixels = self
                .decode(grid)
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .map_err(|e| DecodeImagesError::Readback(format!("{e:?}")))?;
            if let Some(i) = pixels.iter().position(|x| !x.is_finite()) {
                return Err(DecodeImagesError::NonFinite {
                    grid: start + i / (c * ih * iw),
                    value: pixels[i],
                });
            }
            for one in pixels.chunks(c * ih * iw) {
                for (images, size) in sets.iter_mut().zip(sizes) {
                    images.push(match *size {
                        Some(side) if (side, side) != (ih, iw) => {
                            let resized = par_data::interpolate_bicubic(one, c, ih, iw, side, side);
                            par_data::PixelImage::from_chw_signed(&resized, c, side, side)
                        }
                        _ => par_data::PixelImage::from_chw_signed(one, c, ih, iw),
                    });
                }
            }
        }
        Ok(sets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenizerPreset;
    use burn::tensor::Distribution;

    #[test]
    fn vq16_has_llamagen_parameter_count() {
        let model = TokenizerPreset::Vq16.config().init(&Device::flex()).unwrap();
        assert_eq!(model.num_params(), 71_883_403);
        assert_eq!(TokenizerPreset::Vq16.config().downsample_factor(), 16);
    }

    #[test]
    fn small_presets_round_trip_shapes() {
        let device = Device::flex();
        for (preset, grid) in [
            (TokenizerPreset::VqSmall8, 8),
            (TokenizerPreset::VqSmall16, 16),
            (TokenizerPreset::VqTiny16, 16),
        ] {
            let model = preset.config().init(&device).unwrap();
            let images =
                Tensor::<4>::random([2, 1, 32, 32], Distribution::Uniform(-1.0, 1.0), &device);
            let out = model.quantize_images(images);
            assert_eq!(out.indices.dims(), [2, grid, grid]);
            assert_eq!(out.quantized.dims(), [2, 8, grid, grid]);
            let decoded = model.decode(out.indices);
            assert_eq!(decoded.dims(), [2, 1, 32, 32]);
        }
    }

    #[test]
    fn quantizer_picks_the_nearest_normalised_code() {
        let device = Device::flex();
        let q = VectorQuantizer::new(16, 8, 0.25, 0.0, &device);
        let z = Tensor::<4>::random([2, 8, 3, 3], Distribution::Normal(0.0, 1.0), &device);
        let out = q.forward(z.clone(), false);
        let codebook = q.normalized_codebook().into_data().try_into_vec_as::<f32>().unwrap();
        let zv = z.permute([0, 2, 3, 1]).into_data().try_into_vec_as::<f32>().unwrap();
        let got = out.indices.into_data().try_into_vec_as::<i64>().unwrap();
        for (i, v) in zv.chunks(8).enumerate() {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let dist =
                |k: usize| (0..8).map(|c| (v[c] / n - codebook[k * 8 + c]).powi(2)).sum::<f32>();
            let best = (0..16).fold(0, |b, k| if dist(k) < dist(b) { k } else { b });
            assert!(
                (dist(got[i] as usize) - dist(best)).abs() < 1e-5,
                "vector {i}: {} vs {best}",
                got[i]
            );
        }
    }
}
