//! [`VectorQuantizer`]: nearest entry of an l2-normalised codebook, straight-through gradients.

use burn::nn::{Embedding, EmbeddingConfig, Initializer};
use burn::prelude::*;

/// The quantizer's losses (PAR-SPEC.md §6.2).
#[derive(Debug, Clone)]
pub struct VqLosses {
    /// `mean((z_q − sg z)²)`: moves the codebook towards the encoder outputs.
    pub codebook: Tensor<1>,
    /// `β · mean((sg z_q − z)²)`: keeps the encoder close to its codes.
    pub commitment: Tensor<1>,
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
}

fn l2_normalize<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let norm = x.clone().square().sum_dim(D - 1).sqrt().clamp_min(1e-12);
    x / norm
}

impl VectorQuantizer {
    /// A codebook of `size` entries of `dim` channels.
    pub fn new(size: usize, dim: usize, commitment_weight: f64, device: &Device) -> Self {
        let bound = 1.0 / size as f64;
        let embedding = EmbeddingConfig::new(size, dim)
            .with_initializer(Initializer::Uniform { min: -bound, max: bound })
            .init(device);
        Self { embedding, commitment_weight }
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
    pub fn forward(&self, z: Tensor<4>) -> VqOutput {
        let [b, d, h, w] = z.dims();
        let z = l2_normalize(z.permute([0, 2, 3, 1])); // [b, h, w, d]
        let flat = z.clone().reshape([b * h * w, d]);
        let codebook = self.normalized_codebook(); // [K, d]
        let distances = flat.clone().square().sum_dim(1)
            + codebook.clone().square().sum_dim(1).transpose()
            - flat.matmul(codebook.clone().transpose()) * 2.0; // [bhw, K]
        let indices = distances.argmin(1).reshape([b * h * w]); // [bhw]
        let z_q = codebook.select(0, indices.clone()).reshape([b, h, w, d]);
        let codebook_loss = (z_q.clone() - z.clone().detach()).square().mean();
        let commitment =
            (z_q.clone().detach() - z.clone()).square().mean() * self.commitment_weight;
        let quantized = z.clone() + (z_q - z).detach();
        VqOutput {
            quantized: quantized.permute([0, 3, 1, 2]),
            indices: indices.reshape([b, h, w]),
            losses: VqLosses { codebook: codebook_loss, commitment },
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
