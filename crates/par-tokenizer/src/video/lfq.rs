//! [`Lfq`]: Lookup-Free Quantization (MAGVIT-v2, Yu et al. 2023, "Language Model Beats
//! Diffusion — Tokenizer is Key to Visual Generation", arXiv 2310.05737, §3.1).

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::log_sigmoid;

use super::{CodeError, LfqConfig, VideoTokenizerConfigError};

/// Smallest probability the codebook-entropy term takes a logarithm of (avoids `log 0`; far below
/// the `2^−20` of an evenly used 2^20 codebook).
const LOG_FLOOR: f64 = 1e-30;

/// LFQ over `bits` channels (no parameters): the codebook is `{−1, +1}^bits`, implicit.
///
/// `q = sign(z)` (`+1` where `z > 0`, else `−1`) with a straight-through gradient
/// (`z + sg(q − z)`); the id is `Σ_i bit_i · 2^i` with `bit_i = [z_i > 0]` (channel 0 the
/// lowest bit). The auxiliary loss is `β · mse(z, sg(q)) + w · (E_n[H(p_n)] − H(E_n[p_n]))`
/// where `p_n = softmax_c(−‖z_n − c‖² / τ)` over the `2^bits` codes (MAGVIT-v2 §3.1, Eq. 4's
/// entropy penalty: confident per-vector assignments, evenly used codebook).
#[derive(Debug, Clone, PartialEq)]
pub struct Lfq {
    config: LfqConfig,
}

impl Lfq {
    /// The quantizer of `config`.
    ///
    /// # Errors
    ///
    /// [`VideoTokenizerConfigError`] for bits outside `1..=MAX_LFQ_BITS` or a bad loss number.
    pub fn new(config: &LfqConfig) -> Result<Self, VideoTokenizerConfigError> {
        super::VideoQuantizerConfig::Lfq(config.clone()).validate()?;
        Ok(Self { config: config.clone() })
    }

    /// The configuration.
    pub fn config(&self) -> &LfqConfig {
        &self.config
    }

    /// Latent channels = bits.
    pub fn dim(&self) -> usize {
        self.config.bits
    }

    /// Codes, `2^bits`.
    pub fn codebook_size(&self) -> usize {
        1 << self.config.bits
    }

    /// Straight-through sign quantization and (if `with_aux`) the auxiliary loss, else a zero.
    ///
    /// # Shapes
    ///
    /// - z: `[batch, bits, t, h, w]`, f32
    /// - output: codes in `{−1, +1}`, the same shape; aux loss `[1]`
    ///
    /// # Panics
    ///
    /// If `z` does not have `bits` channels.
    pub fn quantize(&self, z: Tensor<5>, with_aux: bool) -> (Tensor<5>, Tensor<1>) {
        let [b, d, t, h, w] = z.dims();
        assert_eq!(d, self.dim(), "LFQ latent channels");
        let q = z.clone().greater_elem(0.0).float() * 2.0 - 1.0;
        let aux = if with_aux {
            let commitment =
                (z.clone() - q.clone().detach()).square().mean() * self.config.commitment_weight;
            if self.config.entropy_weight > 0.0 {
                let flat = z.clone().permute([0, 2, 3, 4, 1]).reshape([b * t * h * w, d]);
                commitment
                    + entropy_penalty(flat, self.config.entropy_temperature)
                        * self.config.entropy_weight
            } else {
                commitment
            }
        } else {
            Tensor::zeros([1], &z.device())
        };
        let codes = z.clone() + (q - z).detach();
        (codes, aux)
    }

    /// Code ids of sign codes (any value `> 0` is a 1 bit).
    ///
    /// # Shapes
    ///
    /// - codes: `[batch, bits, t, h, w]`; output: `[batch, t, h, w]`, Int
    pub fn codes_to_indices(&self, codes: Tensor<5>) -> Tensor<4, Int> {
        let [b, d, t, h, w] = codes.dims();
        let weights: Vec<i64> = (0..d).map(|i| 1i64 << i).collect();
        let weights =
            Tensor::<5, Int>::from_data(TensorData::new(weights, [1, d, 1, 1, 1]), &codes.device());
        (codes.greater_elem(0.0).int() * weights).sum_dim(1).reshape([b, t, h, w])
    }

    /// Sign codes of code ids (the low `bits` bits of each id).
    ///
    /// # Shapes
    ///
    /// - indices: `[batch, t, h, w]`, Int; output: `[batch, bits, t, h, w]`, f32 in `{−1, +1}`
    pub fn indices_to_codes(&self, indices: Tensor<4, Int>) -> Tensor<5> {
        let idx: Tensor<5, Int> = indices.unsqueeze_dim(1);
        let bits = (0..self.dim())
            .map(|i| idx.clone().div_scalar(1i64 << i).remainder_scalar(2))
            .collect();
        Tensor::cat(bits, 1).float() * 2.0 - 1.0
    }

    /// Host-side [`Lfq::indices_to_codes`]: `n` ids → `n × bits` signs (row-major).
    ///
    /// # Errors
    ///
    /// [`CodeError::IdRange`] for an id outside `0..2^bits`.
    pub fn indices_to_codes_host(&self, indices: &[i64]) -> Result<Vec<f32>, CodeError> {
        let k = self.codebook_size();
        let mut out = Vec::with_capacity(indices.len() * self.dim());
        for (position, &id) in indices.iter().enumerate() {
            if id < 0 || id as usize >= k {
                return Err(CodeError::IdRange { id, position, codebook_size: k });
            }
            out.extend((0..self.dim()).map(|i| if (id >> i) & 1 == 1 { 1.0 } else { -1.0 }));
        }
        Ok(out)
    }

    /// Host-side [`Lfq::codes_to_indices`]: `n × bits` values (row-major) → `n` ids.
    ///
    /// # Errors
    ///
    /// [`CodeError::Length`] if the values do not split into `bits`-vectors;
    /// [`CodeError::OffGrid`] for a non-finite value.
    pub fn codes_to_indices_host(&self, codes: &[f32]) -> Result<Vec<i64>, CodeError> {
        let d = self.dim();
        if !codes.len().is_multiple_of(d) {
            return Err(CodeError::Length { len: codes.len(), dim: d });
        }
        codes
            .chunks(d)
            .enumerate()
            .map(|(n, v)| {
                v.iter().enumerate().try_fold(0i64, |id, (i, &value)| {
                    if !value.is_finite() {
                        return Err(CodeError::OffGrid { value, position: n * d + i, channel: i });
                    }
                    Ok(id | (i64::from(value > 0.0) << i))
                })
            })
            .collect()
    }
}

/// Log-probabilities of every code of a group of `r` bits under the factorised assignment:
/// `[n, 2^r]`, entry `j` = `Σ_i log p_i(bit_i(j))`, with `log p_i(±1) = log σ(±4 z_i / τ)`.
fn group_log_probs(z: Tensor<2>, temperature: f64) -> Tensor<2> {
    let [_, r] = z.dims();
    let device = z.device();
    let x = z * (4.0 / temperature);
    let log_plus = log_sigmoid(x.clone());
    let log_minus = log_sigmoid(x.neg());
    let codes = 1usize << r;
    let bits: Vec<f32> =
        (0..r).flat_map(|i| (0..codes).map(move |j| ((j >> i) & 1) as f32)).collect();
    let bits = Tensor::<2>::from_data(TensorData::new(bits, [r, codes]), &device);
    let base = log_minus.clone().sum_dim(1); // [n, 1]: every bit −1
    (log_plus - log_minus).matmul(bits) + base
}

/// The unweighted LFQ entropy penalty `E_n[H(p_n)] − H(E_n[p_n])` (nats) of latent vectors `z`
/// `[n, bits]`, with `p_n(c) = softmax_c(−‖z_n − c‖² / τ)` over the `2^bits` codes
/// `c ∈ {−1, +1}^bits` (MAGVIT-v2 §3.1).
///
/// Exact and cheap through the per-dimension factorisation: `‖z − c‖² = Σ_i (z_i − c_i)²`, so
/// `p_n` is a product of independent bits with `p_{n,i}(+1) = σ(4 z_{n,i} / τ)`. Hence
/// `H(p_n) = Σ_i H_b(p_{n,i})`, and the batch-average distribution over code `c = (c_lo, c_hi)`
/// (the low `⌊bits/2⌋` and high `⌈bits/2⌉` bits) is `E_n[p_n^lo(c_lo) · p_n^hi(c_hi)] =
/// (P_loᵀ P_hi / n)[c_lo, c_hi]`: one `[2^lo, n] × [n, 2^hi]` matmul instead of an `[n, 2^bits]`
/// softmax (for 18 bits: two `[n, 512]` factors).
///
/// # Shapes
///
/// - z: `[n, bits]`, f32; output: `[1]`
///
/// # Panics
///
/// If `bits` is 0 or above [`super::MAX_LFQ_BITS`] (`2^bits` would not fit in memory).
pub fn entropy_penalty(z: Tensor<2>, temperature: f64) -> Tensor<1> {
    let [n, bits] = z.dims();
    assert!((1..=super::MAX_LFQ_BITS).contains(&bits), "LFQ entropy over {bits} bits");
    let x = z.clone() * (4.0 / temperature);
    // Per-sample entropy: Σ_i H_b(σ(x_i)) = −Σ_i [p log p + (1 − p) log (1 − p)].
    let (log_plus, log_minus) = (log_sigmoid(x.clone()), log_sigmoid(x.neg()));
    let sample_entropy = (log_plus.clone().exp() * log_plus + log_minus.clone().exp() * log_minus)
        .sum_dim(1)
        .mean()
        .neg();
    // Batch-average distribution over all codes.
    let lo = bits / 2;
    let hi_probs = group_log_probs(z.clone().narrow(1, lo, bits - lo), temperature).exp();
    let avg = if lo == 0 {
        hi_probs.mean_dim(0) // [1, 2^hi]
    } else {
        let lo_probs = group_log_probs(z.narrow(1, 0, lo), temperature).exp();
        lo_probs.transpose().matmul(hi_probs) / n as f64 // [2^lo, 2^hi]
    };
    let codebook_entropy = (avg.clone() * avg.clamp_min(LOG_FLOOR).log()).sum().neg();
    sample_entropy - codebook_entropy
}
