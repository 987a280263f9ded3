//! [`Fsq`]: Finite Scalar Quantization (Mentzer, Minnen, Agustsson, Tschannen 2023, "Finite
//! Scalar Quantization: VQ-VAE Made Simple", arXiv 2309.15505, §3 and its Appendix A code).

use burn::prelude::*;
use burn::tensor::TensorData;

use super::{FsqConfig, VideoTokenizerConfigError};

/// Why codes or code ids could not be converted on the host.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodeError {
    /// A code id outside `0..codebook_size`.
    #[error("code id {id} at position {position} is outside the codebook 0..{codebook_size}")]
    IdRange {
        /// The id.
        id: i64,
        /// Its position in the input.
        position: usize,
        /// Codes in the codebook.
        codebook_size: usize,
    },
    /// The code values do not split into vectors of the quantizer's dimension.
    #[error("{len} code values do not split into vectors of {dim}")]
    Length {
        /// Values given.
        len: usize,
        /// The quantizer's dimension.
        dim: usize,
    },
    /// A code value that is not finite or rounds to a digit outside its channel's range.
    #[error(
        "code value {value} at position {position} (channel {channel}) is off the quantizer's grid"
    )]
    OffGrid {
        /// The value.
        value: f32,
        /// Its position in the input (flat, `[n, dim]` row-major).
        position: usize,
        /// Its channel.
        channel: usize,
    },
}

/// ε of the FSQ bound: `half_l = (L − 1)(1 + ε)/2`, keeping `tanh`'s open range just wide
/// enough that rounding reaches both extreme values (reference implementation's `eps = 1e-3`).
pub const FSQ_EPS: f64 = 1e-3;

/// FSQ over `levels.len()` channels (no parameters).
///
/// Per channel with `L` levels: `half_l = (L − 1)(1 + ε)/2`, `offset = 0.5` if `L` is even else
/// 0, `shift = atanh(offset / half_l)`; `bounded = tanh(z + shift)·half_l − offset`;
/// `q = round(bounded)` with a straight-through gradient (`bounded + sg(round(bounded) −
/// bounded)`), so `q ∈ {−⌊L/2⌋, …, ⌈L/2⌉ − 1}`; the code the decoder sees is `q / ⌊L/2⌋`
/// (in `[−1, 1]`). The id is `Σ_i (q_i + ⌊L_i/2⌋) · basis_i` with `basis = [1, L_0, L_0·L_1, …]`
/// (channel 0 the fastest digit).
#[derive(Debug, Clone, PartialEq)]
pub struct Fsq {
    levels: Vec<usize>,
}

impl Fsq {
    /// The quantizer of `config`.
    ///
    /// # Errors
    ///
    /// [`VideoTokenizerConfigError`] for no levels, a level below 2 or too many codes.
    pub fn new(config: &FsqConfig) -> Result<Self, VideoTokenizerConfigError> {
        super::VideoQuantizerConfig::Fsq(config.clone()).validate()?;
        Ok(Self { levels: config.levels.clone() })
    }

    /// Levels per channel.
    pub fn levels(&self) -> &[usize] {
        &self.levels
    }

    /// Latent channels.
    pub fn dim(&self) -> usize {
        self.levels.len()
    }

    /// Codes, `Π levels`.
    pub fn codebook_size(&self) -> usize {
        self.levels.iter().product()
    }

    /// Digit weights `[1, L_0, L_0·L_1, …]`.
    pub fn basis(&self) -> Vec<usize> {
        let mut b = 1;
        self.levels
            .iter()
            .map(|&l| {
                let here = b;
                b *= l;
                here
            })
            .collect()
    }

    fn half_width(&self, i: usize) -> usize {
        self.levels[i] / 2
    }

    /// `[1, dim, 1, 1, 1]` tensor of per-channel constants.
    fn per_channel(&self, values: Vec<f32>, device: &Device) -> Tensor<5> {
        let d = values.len();
        Tensor::from_data(TensorData::new(values, [1, d, 1, 1, 1]), device)
    }

    /// Bounds and rounds a latent (straight-through), returning the normalised codes
    /// `q / ⌊L/2⌋` the decoder takes.
    ///
    /// # Shapes
    ///
    /// - z: `[batch, dim, t, h, w]`, f32; output: the same
    ///
    /// # Panics
    ///
    /// If `z` does not have `dim` channels.
    pub fn quantize(&self, z: Tensor<5>) -> Tensor<5> {
        assert_eq!(z.dims()[1], self.dim(), "FSQ latent channels");
        let device = z.device();
        let (mut half_l, mut offset, mut shift, mut half_w) = (vec![], vec![], vec![], vec![]);
        for (i, &l) in self.levels.iter().enumerate() {
            let h = (l as f64 - 1.0) * (1.0 + FSQ_EPS) / 2.0;
            let o = if l % 2 == 0 { 0.5 } else { 0.0 };
            half_l.push(h as f32);
            offset.push(o as f32);
            shift.push((o / h).atanh() as f32);
            half_w.push(self.half_width(i) as f32);
        }
        let bounded = (z + self.per_channel(shift, &device)).tanh()
            * self.per_channel(half_l, &device)
            - self.per_channel(offset, &device);
        let quantized = bounded.clone() + (bounded.clone().round() - bounded).detach();
        quantized / self.per_channel(half_w, &device)
    }

    /// Code ids of normalised codes (as [`Fsq::quantize`] returns them).
    ///
    /// # Shapes
    ///
    /// - codes: `[batch, dim, t, h, w]`; output: `[batch, t, h, w]`, Int
    ///
    /// # Panics
    ///
    /// If `codes` does not have `dim` channels.
    pub fn codes_to_indices(&self, codes: Tensor<5>) -> Tensor<4, Int> {
        let [b, d, t, h, w] = codes.dims();
        assert_eq!(d, self.dim(), "FSQ code channels");
        let device = codes.device();
        let half_w: Vec<f32> = (0..d).map(|i| self.half_width(i) as f32).collect();
        let half_w = self.per_channel(half_w, &device);
        let digits = (codes * half_w.clone() + half_w).round().int();
        let basis: Vec<i64> = self.basis().into_iter().map(|x| x as i64).collect();
        let basis = Tensor::<5, Int>::from_data(TensorData::new(basis, [1, d, 1, 1, 1]), &device);
        (digits * basis).sum_dim(1).reshape([b, t, h, w])
    }

    /// Normalised codes of code ids (ids outside `0..codebook_size` wrap digit by digit).
    ///
    /// # Shapes
    ///
    /// - indices: `[batch, t, h, w]`, Int; output: `[batch, dim, t, h, w]`, f32
    pub fn indices_to_codes(&self, indices: Tensor<4, Int>) -> Tensor<5> {
        let device = indices.device();
        let idx: Tensor<5, Int> = indices.unsqueeze_dim(1);
        let digits = self
            .levels
            .iter()
            .zip(self.basis())
            .map(|(&l, b)| idx.clone().div_scalar(b as i64).remainder_scalar(l as i64))
            .collect();
        let digits = Tensor::cat(digits, 1).float();
        let half_w: Vec<f32> = (0..self.dim()).map(|i| self.half_width(i) as f32).collect();
        let half_w = self.per_channel(half_w, &device);
        (digits - half_w.clone()) / half_w
    }

    /// Host-side [`Fsq::indices_to_codes`]: `n` ids → `n × dim` normalised code values
    /// (row-major).
    ///
    /// # Errors
    ///
    /// [`CodeError::IdRange`] for an id outside `0..codebook_size`.
    pub fn indices_to_codes_host(&self, indices: &[i64]) -> Result<Vec<f32>, CodeError> {
        let k = self.codebook_size();
        let basis = self.basis();
        let mut out = Vec::with_capacity(indices.len() * self.dim());
        for (position, &id) in indices.iter().enumerate() {
            if id < 0 || id as usize >= k {
                return Err(CodeError::IdRange { id, position, codebook_size: k });
            }
            for (i, (&l, &b)) in self.levels.iter().zip(&basis).enumerate() {
                let digit = (id as usize / b) % l;
                let hw = self.half_width(i) as f32;
                out.push((digit as f32 - hw) / hw);
            }
        }
        Ok(out)
    }

    /// Host-side [`Fsq::codes_to_indices`]: `n × dim` normalised code values (row-major) → `n`
    /// ids; each value is rounded to its nearest grid point.
    ///
    /// # Errors
    ///
    /// [`CodeError::Length`] if the values do not split into `dim`-vectors;
    /// [`CodeError::OffGrid`] for a non-finite value or one outside the channel's range.
    pub fn codes_to_indices_host(&self, codes: &[f32]) -> Result<Vec<i64>, CodeError> {
        let d = self.dim();
        if !codes.len().is_multiple_of(d) {
            return Err(CodeError::Length { len: codes.len(), dim: d });
        }
        let basis = self.basis();
        codes
            .chunks(d)
            .enumerate()
            .map(|(n, v)| {
                let mut id = 0i64;
                for (i, &value) in v.iter().enumerate() {
                    let hw = self.half_width(i) as f32;
                    let digit = (value * hw + hw).round();
                    if !digit.is_finite() || digit < 0.0 || digit >= self.levels[i] as f32 {
                        return Err(CodeError::OffGrid { value, position: n * d + i, channel: i });
                    }
                    id += digit as i64 * basis[i] as i64;
                }
                Ok(id)
            })
            .collect()
    }
}
