//! [`VideoTokenizer`]: clips ↔ code grids.

use burn::prelude::*;

use super::{
    ReconstructionLoss, VideoDecoder, VideoEncoder, VideoQuantizer, VideoQuantizerOutput,
    VideoTokenizerConfig, VideoTokenizerConfigError,
};

/// Why a clip or a code grid was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VideoTokenizerError {
    /// The video tensor's channel dimension (1) is not the config's `in_channels`.
    #[error("video tensor {dims:?}: {} channels in dimension 1, the tokenizer takes {expected}", dims[1])]
    Channels {
        /// The tensor's shape `[batch, channels, frames, height, width]`.
        dims: [usize; 5],
        /// `in_channels`.
        expected: usize,
    },
    /// An empty batch.
    #[error("tensor {dims:?} has an empty batch (dimension 0)")]
    EmptyBatch {
        /// The tensor's shape.
        dims: Vec<usize>,
    },
    /// Frames or frame size the tokenizer cannot compress into whole latents (names `frames`,
    /// `height` or `width`).
    #[error("video tensor {dims:?}: {source}")]
    ClipShape {
        /// The tensor's shape.
        dims: [usize; 5],
        /// Which dimension and why.
        source: VideoTokenizerConfigError,
    },
    /// A code grid with a zero dimension.
    #[error("code grid {dims:?} has a zero dimension")]
    EmptyCodes {
        /// The grid's shape `[batch, t, h, w]`.
        dims: [usize; 4],
    },
    /// A code id outside the codebook.
    #[error("code id {code} outside the codebook 0..{codebook_size}")]
    CodeRange {
        /// The offending id (the grid's minimum or maximum).
        code: i64,
        /// Codes in the codebook.
        codebook_size: usize,
    },
    /// The codes could not be read back from the device for the range check.
    #[error("reading code ids back: {0}")]
    Readback(String),
}

/// What [`VideoTokenizer::forward`] returns (training: gradients flow straight through the
/// quantizer into the encoder).
#[derive(Debug, Clone)]
pub struct VideoTokenizerOutput {
    /// Decoded clip `[batch, in_channels, T, H, W]`, f32, unclamped (≈ `[−1, 1]`).
    pub reconstruction: Tensor<5>,
    /// The quantizer's auxiliary loss `[1]` (0 for FSQ; LFQ: commitment + entropy penalty).
    pub aux_loss: Tensor<1>,
    /// Code ids `[batch, t, h, w]`, Int.
    pub codes: Tensor<4, Int>,
}

/// The MAGVIT-v2-style causal video tokenizer: encoder → quantizer (FSQ or LFQ) → decoder.
/// See the [module documentation](crate::video) for the design.
#[derive(Module, Debug)]
pub struct VideoTokenizer {
    /// Clip → continuous latent.
    pub encoder: VideoEncoder,
    /// Codes → clip.
    pub decoder: VideoDecoder,
    #[module(skip)]
    quantizer: VideoQuantizer,
    #[module(skip)]
    config: VideoTokenizerConfig,
}

impl VideoTokenizerConfig {
    /// A randomly initialised tokenizer. Burn initialises lazily: nothing is drawn or allocated
    /// until a weight is used, so `init(..)?.num_params()` is free.
    ///
    /// # Errors
    ///
    /// [`VideoTokenizerConfigError`] naming the field if the config is invalid.
    pub fn init(&self, device: &Device) -> Result<VideoTokenizer, VideoTokenizerConfigError> {
        self.validate()?;
        Ok(VideoTokenizer {
            encoder: VideoEncoder::new(self, device),
            decoder: VideoDecoder::new(self, device),
            quantizer: VideoQuantizer::new(&self.quantizer)?,
            config: self.clone(),
        })
    }
}

impl VideoTokenizer {
    /// The configuration the tokenizer was built with.
    pub fn config(&self) -> &VideoTokenizerConfig {
        &self.config
    }

    /// The quantizer.
    pub fn quantizer(&self) -> &VideoQuantizer {
        &self.quantizer
    }

    /// The code grid `[t, h, w]` of a video tensor of shape `dims`.
    ///
    /// # Errors
    ///
    /// [`VideoTokenizerError`] for an empty batch, the wrong channel count, or frames / sizes the
    /// tokenizer cannot compress.
    pub fn check_video(&self, dims: [usize; 5]) -> Result<[usize; 3], VideoTokenizerError> {
        let [b, c, t, h, w] = dims;
        if b == 0 {
            return Err(VideoTokenizerError::EmptyBatch { dims: dims.to_vec() });
        }
        if c != self.config.in_channels {
            return Err(VideoTokenizerError::Channels { dims, expected: self.config.in_channels });
        }
        self.config
            .latent_shape(t, h, w)
            .map_err(|source| VideoTokenizerError::ClipShape { dims, source })
    }

    /// The continuous (pre-quantization) latent of clips.
    ///
    /// # Shapes
    ///
    /// - video: `[batch, in_channels, T, H, W]`, f32 in `[−1, 1]`
    /// - output: `[batch, quantizer dim, (T − 1)/4 + 1, H/8, W/8]` (preset factors)
    ///
    /// # Errors
    ///
    /// As [`VideoTokenizer::check_video`].
    pub fn encode_latent(&self, video: Tensor<5>) -> Result<Tensor<5>, VideoTokenizerError> {
        self.check_video(video.dims())?;
        Ok(self.encoder.forward(video))
    }

    /// Encodes and quantizes clips; `with_aux` computes the quantizer's auxiliary loss.
    ///
    /// # Shapes
    ///
    /// - video: `[batch, in_channels, T, H, W]`, f32 in `[−1, 1]`
    ///
    /// # Errors
    ///
    /// As [`VideoTokenizer::check_video`].
    pub fn quantize_video(
        &self,
        video: Tensor<5>,
        with_aux: bool,
    ) -> Result<VideoQuantizerOutput, VideoTokenizerError> {
        Ok(self.quantizer.quantize(self.encode_latent(video)?, with_aux))
    }

    /// Code grids of clips.
    ///
    /// # Shapes
    ///
    /// - video: `[batch, in_channels, T, H, W]`, f32 in `[−1, 1]`
    /// - output: `[batch, (T − 1)/f_t + 1, H/f_s, W/f_s]`, Int ids in `0..codebook_size`
    ///   (`[B, 5, 16, 16]` for 17×128² clips)
    ///
    /// # Errors
    ///
    /// As [`VideoTokenizer::check_video`]: wrong channels, empty batch, `T − 1` not a multiple
    /// of `f_t`, `H` or `W` not a multiple of `f_s`.
    pub fn encode(&self, video: Tensor<5>) -> Result<Tensor<4, Int>, VideoTokenizerError> {
        Ok(self.quantize_video(video, false)?.indices)
    }

    /// Clips from quantizer codes (the straight-through path of training).
    ///
    /// # Shapes
    ///
    /// - codes: `[batch, quantizer dim, t, h, w]`, f32
    /// - output: `[batch, in_channels, (t − 1)·f_t + 1, h·f_s, w·f_s]`, unclamped
    ///
    /// # Panics
    ///
    /// If `codes` does not have the quantizer's channel count or has a zero dimension.
    pub fn decode_codes(&self, codes: Tensor<5>) -> Tensor<5> {
        self.decoder.forward(codes)
    }

    /// Clips from code grids (reads the ids back once to check their range).
    ///
    /// # Shapes
    ///
    /// - codes: `[batch, t, h, w]`, Int
    /// - output: `[batch, in_channels, (t − 1)·f_t + 1, h·f_s, w·f_s]`, f32, unclamped
    ///   (≈ `[−1, 1]`)
    ///
    /// # Errors
    ///
    /// [`VideoTokenizerError::EmptyCodes`] for a zero dimension,
    /// [`VideoTokenizerError::CodeRange`] for an id outside the codebook.
    pub fn decode(&self, codes: Tensor<4, Int>) -> Result<Tensor<5>, VideoTokenizerError> {
        let dims = codes.dims();
        if dims.contains(&0) {
            return Err(VideoTokenizerError::EmptyCodes { dims });
        }
        let extremes = Tensor::cat(vec![codes.clone().min(), codes.clone().max()], 0)
            .into_data()
            .try_into_vec_as::<i64>()
            .map_err(|e| VideoTokenizerError::Readback(format!("{e:?}")))?;
        let k = self.quantizer.codebook_size();
        if let Some(&code) = extremes.iter().find(|&&c| c < 0 || c as usize >= k) {
            return Err(VideoTokenizerError::CodeRange { code, codebook_size: k });
        }
        Ok(self.decode_codes(self.quantizer.indices_to_codes(codes)))
    }

    /// Encode → quantize (straight-through) → decode, for training.
    ///
    /// # Shapes
    ///
    /// - video: `[batch, in_channels, T, H, W]`, f32 in `[−1, 1]`
    /// - output: see [`VideoTokenizerOutput`] (reconstruction of the input's shape)
    ///
    /// # Errors
    ///
    /// As [`VideoTokenizer::check_video`].
    pub fn forward(&self, video: Tensor<5>) -> Result<VideoTokenizerOutput, VideoTokenizerError> {
        let q = self.quantize_video(video, true)?;
        Ok(VideoTokenizerOutput {
            reconstruction: self.decode_codes(q.codes),
            aux_loss: q.aux_loss,
            codes: q.indices,
        })
    }

    /// The pixel reconstruction loss the config names, averaged over every value: `mean |x − x̂|`
    /// ([`ReconstructionLoss::L1`]) or `mean (x − x̂)²` ([`ReconstructionLoss::Mse`], the
    /// default). Perceptual and adversarial terms (MAGVIT-v2 trains with both) are not part of
    /// the tokenizer.
    ///
    /// # Shapes
    ///
    /// - video, reconstruction: `[batch, in_channels, T, H, W]`; output: `[1]`
    ///
    /// # Panics
    ///
    /// If the shapes differ.
    pub fn reconstruction_loss(&self, video: Tensor<5>, reconstruction: Tensor<5>) -> Tensor<1> {
        assert_eq!(video.dims(), reconstruction.dims(), "reconstruction shape");
        let diff = reconstruction - video;
        match self.config.reconstruction_loss {
            ReconstructionLoss::L1 => diff.abs().mean(),
            ReconstructionLoss::Mse => diff.square().mean(),
        }
    }
}
