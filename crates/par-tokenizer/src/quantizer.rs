//! [`VectorQuantizer`]: nearest entry of an l2-normalised codebook, straight-through gradients.

use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;

/// The quantizer's losses (docs/spec.md §6.2).
#[derive(Debug, Clone)]
pub struct VqLosses {
    /// `mean((z_q − sg z)²)`: moves the codebook towards the encoder outputs.
    pub codebook: Tensor<1>,
    /// `β · mean((sg z_q − z)²)`: keeps the encoder close to its codes.
    pub commitment: Tensor<1>,
    /// `ratio · (mean per-vector entropy − entropy of the mean)` of `softmax(−d / 0.01)` over
    /// the codebook: low when each vector is confidently assigned and the codebook is used
    /// evenly. Zero when the entropy loss is off.
    pub entropy: Tensor<1>,
}

impl VqLosses {
    /// Codebook + commitment + entropy.
    pub fn total(&self) -> Tensor<1> {
        self.codebook.clone() + self.commitment.clone() + self.entropy.clone()
    }
}

/// Temperature of the entropy loss's soft assignment (LlamaGen default).
pub const ENTROPY_TEMPERATURE: f64 = 0.01;

/// The codebook entropy loss of squared distances `[vectors, codebook_size]` (unweighted).
pub fn entropy_loss(distances: Tensor<2>) -> Tensor<1> {
    let logits = distances.neg() / ENTROPY_TEMPERATURE;
    let log_probs = burn::tensor::activation::log_softmax(logits, 1);
    let probs = log_probs.clone().exp();
    let sample_entropy = (probs.clone() * log_probs).sum_dim(1).mean().neg();
    let avg = probs.mean_dim(0);
    let avg_entropy = (avg.clone() * (avg + 1e-5).log()).sum().neg();
    sample_entropy - avg_entropy
}

/// Codebook usage statistics accumulated over many code grids (host side).
///
/// `usage` is the fraction of entries used at least once; `perplexity` is `exp(H)` of the
/// empirical code distribution (equal to the codebook size for perfectly even use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodebookUsage {
    counts: Vec<u64>,
}

impl CodebookUsage {
    /// Empty statistics for a codebook of `size` entries.
    pub fn new(size: usize) -> Self {
        Self { counts: vec![0; size] }
    }

    /// Counts code ids.
    ///
    /// # Panics
    ///
    /// If an id is not below the codebook size (ids come from the quantizer).
    pub fn add(&mut self, codes: impl IntoIterator<Item = usize>) {
        for c in codes {
            self.counts[c] += 1;
        }
    }

    /// Entries used at least once.
    pub fn used(&self) -> usize {
        self.counts.iter().filter(|&&c| c > 0).count()
    }

    /// `used / codebook_size`.
    pub fn usage(&self) -> f64 {
        self.used() as f64 / self.counts.len() as f64
    }

    /// `exp(−Σ p log p)` over the counted ids (1 when nothing was counted).
    pub fn perplexity(&self) -> f64 {
        let total: u64 = self.counts.iter().sum();
        if total == 0 {
            return 1.0;
        }
        let h: f64 = self
            .counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / total as f64;
                -p * p.ln()
            })
            .sum();
        h.exp()
    }
}

/// What quantization returns.
#[derive(Debug, Clone)]
pub struct VqOutput {
    /// Straight-through quantized latent `z + sg(z_q − z)`, `[batch_size, codebook_dim, h, w]`
    /// (unit-norm vectors).
    pub quantized: Tensor<4>,
    /// Code ids, `[batch_size, h, w]`.
    pub indices: Tensor<3, Int>,
    /// Codebook and commitment losses.
    pub losses: VqLosses,
}

/// An l2-normalised codebook (upstream `quantize.embedding`).
#[derive(Module, Debug)]
pub struct VectorQuantizer {
    /// `[codebook_size, codebook_dim]`, initialised U(−1/K, 1/K).
    pub embedding: Embedding,
    /// Commitment weight β.
    pub commitment_weight: f64,
    /// Entropy loss weight.
    pub entropy_weight: f64,
}

fn l2_normalize<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = x.clone().square().sum_dim(D - 1).sqrt().clamp_min(1e-12);
    x / norm
}

impl VectorQuantizer {
    /// A codebook of `size` entries of `dim` channels.
    pub fn new(
        size: usize,
        dim: usize,
        commitment_weight: f64,
        entropy_weight: f64,
        device: &Device,
    ) -> Self {
        let bound = 1.0 / size as f64;
        let embedding = EmbeddingConfig::new(size, dim)
            .with_initializer(Initializer::Uniform { min: -bound, max: bound })
            .init(device);
        Self { embedding, commitment_weight, entropy_weight }
    }

    /// The codebook with unit-norm rows, `[codebook_size, codebook_dim]`.
    pub fn normalized_codebook(&self) -> Tensor<2> {
        l2_normalize(self.embedding.weight.val())
    }

    /// Nearest codebook entries of l2-normalised latent vectors (squared Euclidean distance,
    /// `|z|² + |e|² − 2·z·e`; ties to the lowest id).
    ///
    /// # Shapes
    ///
    /// - z: `[batch_size, codebook_dim, h, w]` (not yet normalised)
    ///
    /// `with_entropy` computes the entropy loss (weighted by the tokenizer config's ratio by the
    /// caller); otherwise [`VqLosses::entropy`] is zero.
    pub fn forward(&self, z: Tensor<4>, with_entropy: bool) -> VqOutput {
        let [b, d, h, w] = z.dims();
        let z = l2_normalize(z.permute([0, 2, 3, 1])); // [b, h, w, d]
        let flat = z.clone().reshape([b * h * w, d]);
        let codebook = self.normalized_codebook(); // [K, d]
        let distances = flat.clone().square().sum_dim(1)
            + codebook.clone().square().sum_dim(1).transpose()
            - flat.matmul(codebook.clone().transpose()) * 2.0; // [bhw, K]
        let entropy = if with_entropy {
            entropy_loss(distances.clone()) * self.entropy_weight
        } else {
            Tensor::zeros([1], &distances.device())
        };
        let indices = distances.argmin(1).reshape([b * h * w]); // [bhw]
        let z_q = codebook.select(0, indices.clone()).reshape([b, h, w, d]);
        let codebook_loss = (z_q.clone() - z.clone().detach()).square().mean();
        let commitment =
            (z_q.clone().detach() - z.clone()).square().mean() * self.commitment_weight;
        let quantized = z.clone() + (z_q - z).detach();
        VqOutput {
            quantized: quantized.permute([0, 3, 1, 2]),
            indices: indices.reshape([b, h, w]),
            losses: VqLosses { codebook: codebook_loss, commitment, entropy },
        }
    }

    /// Looks up unit-norm codebook vectors.
    ///
    /// # Shapes
    ///
    /// - indices: `[batch_size, h, w]`; output: `[batch_size, codebook_dim, h, w]`
    pub fn lookup(&self, indices: Tensor<3, Int>) -> Tensor<4> {
        let [b, h, w] = indices.dims();
        let codebook = self.normalized_codebook();
        let d = codebook.dims()[1];
        codebook.select(0, indices.reshape([b * h * w])).reshape([b, h, w, d]).permute([0, 3, 1, 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_and_perplexity_of_known_counts() {
        let mut u = CodebookUsage::new(8);
        u.add([0, 0, 1, 1, 2, 2, 3, 3]);
        assert_eq!(u.used(), 4);
        assert!((u.usage() - 0.5).abs() < 1e-12);
        assert!((u.perplexity() - 4.0).abs() < 1e-9);
        assert_eq!(CodebookUsage::new(3).perplexity(), 1.0);
    }

    #[test]
    fn entropy_loss_of_one_hot_even_assignments_is_minus_log_k() {
        // Vectors sitting on distinct codes, far from the others: per-vector entropy ≈ 0, mean
        // distribution uniform over K = 4 → loss ≈ −ln 4.
        let device = Device::flex();
        let d = Tensor::<2>::from_floats(
            [
                [0.0, 4.0, 4.0, 4.0],
                [4.0, 0.0, 4.0, 4.0],
                [4.0, 4.0, 0.0, 4.0],
                [4.0, 4.0, 4.0, 0.0],
            ],
            &device,
        );
        let loss = entropy_loss(d).into_scalar::<f32>();
        assert!((loss + 4f32.ln()).abs() < 1e-3, "{loss}");
        // All vectors on one code: both entropies ≈ 0.
        let d = Tensor::<2>::from_floats([[0.0, 4.0], [0.0, 4.0]], &device);
        assert!(entropy_loss(d).into_scalar::<f32>().abs() < 1e-3);
    }
}
