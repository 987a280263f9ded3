//! [`VideoQuantizer`]: FSQ or LFQ behind one interface.

use burn::prelude::*;

use super::{CodeError, Fsq, Lfq, VideoQuantizerConfig, VideoTokenizerConfigError};

/// What [`VideoQuantizer::quantize`] returns.
#[derive(Debug, Clone)]
pub struct VideoQuantizerOutput {
    /// Straight-through codes for the decoder, `[batch, dim, t, h, w]`, f32.
    pub codes: Tensor<5>,
    /// Code ids, `[batch, t, h, w]`, Int.
    pub indices: Tensor<4, Int>,
    /// Auxiliary loss `[1]` (0 for FSQ; commitment + entropy penalty for LFQ).
    pub aux_loss: Tensor<1>,
}

/// The video tokenizer's quantizer (parameter-free; implicit codebook).
#[derive(Debug, Clone, PartialEq)]
pub enum VideoQuantizer {
    /// Finite Scalar Quantization.
    Fsq(Fsq),
    /// Lookup-Free Quantization.
    Lfq(Lfq),
}

impl VideoQuantizer {
    /// The quantizer of `config`.
    ///
    /// # Errors
    ///
    /// [`VideoTokenizerConfigError`] naming the invalid `quantizer.*` field.
    pub fn new(config: &VideoQuantizerConfig) -> Result<Self, VideoTokenizerConfigError> {
        Ok(match config {
            VideoQuantizerConfig::Fsq(c) => Self::Fsq(Fsq::new(c)?),
            VideoQuantizerConfig::Lfq(c) => Self::Lfq(Lfq::new(c)?),
        })
    }

    /// Latent channels.
    pub fn dim(&self) -> usize {
        match self {
            Self::Fsq(q) => q.dim(),
            Self::Lfq(q) => q.dim(),
        }
    }

    /// Codes in the codebook.
    pub fn codebook_size(&self) -> usize {
        match self {
            Self::Fsq(q) => q.codebook_size(),
            Self::Lfq(q) => q.codebook_size(),
        }
    }

    /// Quantizes a latent (straight-through); `with_aux` computes the auxiliary loss (else 0).
    ///
    /// # Shapes
    ///
    /// - z: `[batch, dim, t, h, w]`, f32
    ///
    /// # Panics
    ///
    /// If `z` does not have `dim` channels.
    pub fn quantize(&self, z: Tensor<5>, with_aux: bool) -> VideoQuantizerOutput {
        let (codes, aux_loss) = match self {
            Self::Fsq(q) => {
                let device = z.device();
                (q.quantize(z), Tensor::zeros([1], &device))
            }
            Self::Lfq(q) => q.quantize(z, with_aux),
        };
        let indices = self.codes_to_indices(codes.clone());
        VideoQuantizerOutput { codes, indices, aux_loss }
    }

    /// Code ids of codes.
    ///
    /// # Shapes
    ///
    /// - codes: `[batch, dim, t, h, w]`; output: `[batch, t, h, w]`, Int
    pub fn codes_to_indices(&self, codes: Tensor<5>) -> Tensor<4, Int> {
        match self {
            Self::Fsq(q) => q.codes_to_indices(codes),
            Self::Lfq(q) => q.codes_to_indices(codes),
        }
    }

    /// Codes of code ids.
    ///
    /// # Shapes
    ///
    /// - indices: `[batch, t, h, w]`, Int; output: `[batch, dim, t, h, w]`, f32
    pub fn indices_to_codes(&self, indices: Tensor<4, Int>) -> Tensor<5> {
        match self {
            Self::Fsq(q) => q.indices_to_codes(indices),
            Self::Lfq(q) => q.indices_to_codes(indices),
        }
    }

    /// Host-side ids → codes (`n` ids → `n × dim` values, row-major).
    ///
    /// # Errors
    ///
    /// [`CodeError::IdRange`].
    pub fn indices_to_codes_host(&self, indices: &[i64]) -> Result<Vec<f32>, CodeError> {
        match self {
            Self::Fsq(q) => q.indices_to_codes_host(indices),
            Self::Lfq(q) => q.indices_to_codes_host(indices),
        }
    }

    /// Host-side codes → ids (`n × dim` values, row-major → `n` ids).
    ///
    /// # Errors
    ///
    /// [`CodeError::Length`] or [`CodeError::OffGrid`].
    pub fn codes_to_indices_host(&self, codes: &[f32]) -> Result<Vec<i64>, CodeError> {
        match self {
            Self::Fsq(q) => q.codes_to_indices_host(codes),
            Self::Lfq(q) => q.codes_to_indices_host(codes),
        }
    }
}
