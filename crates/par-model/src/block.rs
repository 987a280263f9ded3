//! The decoder block: RMSNorm → attention (fused `wqkv`, 2D RoPE) → RMSNorm → SwiGLU, with
//! residual/FFN/attention dropout and drop-path (docs/spec.md §4.1–4.2).

use burn::module::Param;
use burn::nn::{Dropout, DropoutConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;

use crate::cache::KvCache;
use crate::rope::RopeTable;

/// Root-mean-square layer norm, computed in f32 and cast back: `x·rsqrt(mean(x²) + eps)·weight`.
/// The field is named `weight` as the upstream key (Burn's `RmsNorm` calls it `gamma`).
#[derive(Module, Debug)]
pub struct RmsNorm {
    /// Per-channel scale, `[d_model]`, initialised to 1.
    pub weight: Param<Tensor<1>>,
    /// Added to the mean square.
    pub eps: f64,
}

impl RmsNorm {
    /// A norm of `d_model` channels with unit weights.
    pub fn new(d_model: usize, eps: f64, device: &Device) -> Self {
        Self { weight: Param::from_tensor(Tensor::ones([d_model], device)), eps }
    }

    /// # Shapes
    ///
    /// - x: `[batch_size, seq_length, d_model]`; output: the same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let dtype = x.dtype();
        let x32 = x.cast(DType::F32);
        let rms = (x32.clone().square().mean_dim(2) + self.eps).sqrt(); // [b, s, 1]
        let normed = (x32 / rms).cast(dtype);
        normed * self.weight.val().unsqueeze::<3>()
    }
}

/// Multi-head self-attention with a fused `wqkv` projection (rows q | k | v) and 2D RoPE on q, k.
#[derive(Module, Debug)]
pub struct Attention {
    /// `[d_model → 3·d_model]`, no bias.
    pub wqkv: Linear,
    /// `[d_model → d_model]`, no bias.
    pub wo: Linear,
    /// Dropout on attention probabilities (training only).
    pub attn_dropout: Dropout,
    /// Dropout after `wo` (training only).
    pub resid_dropout: Dropout,
    /// Attention heads.
    pub n_heads: usize,
}

/// Where a block's keys and values come from.
pub enum KeyValues<'a> {
    /// Teacher forcing: the sequence attends to itself under a mask (`true` = masked out,
    /// `[seq_length, seq_length]`).
    Masked(Tensor<2, Bool>),
    /// KV-cached decode: append this step's keys/values to the layer cache and attend to
    /// everything cached (a PAR decode step needs no mask; `par_order` proves it), or under the
    /// step's mask (`true` = masked out, `[step_length, cached + step_length]`) for causal group
    /// attention.
    Cached(&'a mut KvCache, Option<Tensor<2, Bool>>),
}

impl Attention {
    fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [batch_size, seq_length, d_model] = x.dims();
        x.reshape([batch_size, seq_length, self.n_heads, d_model / self.n_heads]).swap_dims(1, 2) // [b, h, s, d_h]
    }

    /// # Shapes
    ///
    /// - x: `[batch_size, seq_length, d_model]`
    /// - cos, sin: `[seq_length, head_dim/2]`
    /// - output: `[batch_size, seq_length, d_model]`
    pub fn forward(
        &self,
        x: Tensor<3>,
        cos: Tensor<2>,
        sin: Tensor<2>,
        kv: KeyValues<'_>,
    ) -> Tensor<3> {
        let [batch_size, seq_length, d_model] = x.dims();
        let qkv = self.wqkv.forward(x);
        let q = self.split_heads(qkv.clone().narrow(2, 0, d_model));
        let k = self.split_heads(qkv.clone().narrow(2, d_model, d_model));
        let v = self.split_heads(qkv.narrow(2, 2 * d_model, d_model));
        let q = RopeTable::apply(q, cos.clone(), sin.clone());
        let k = RopeTable::apply(k, cos, sin);
        let (k, v, mask) = match kv {
            KeyValues::Masked(mask) => {
                let mask = mask.unsqueeze::<4>().expand([
                    batch_size,
                    self.n_heads,
                    seq_length,
                    seq_length,
                ]);
                (k, v, Some(mask))
            }
            KeyValues::Cached(cache, mask) => {
                let (k, v) = cache.append(k, v);
                let keys = k.dims()[2];
                let mask = mask.map(|m| {
                    m.unsqueeze::<4>().expand([batch_size, self.n_heads, seq_length, keys])
                });
                (k, v, mask)
            }
        };
        let out = if self.attn_dropout.prob > 0.0 && q.device().is_autodiff() {
            self.attention_with_dropout(q, k, v, mask)
        } else {
            attention(q, k, v, mask, None, AttentionModuleOptions::default())
        };
        let out = out.swap_dims(1, 2).reshape([batch_size, seq_length, d_model]);
        self.resid_dropout.forward(self.wo.forward(out))
    }

    /// Explicit `softmax(q·kᵀ/√d_h)·v` with dropout on the probabilities (Burn's fused attention
    /// has no dropout).
    fn attention_with_dropout(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        mask: Option<Tensor<4, Bool>>,
    ) -> Tensor<4> {
        let head_dim = q.dims()[3];
        let mut scores = q.matmul(k.swap_dims(2, 3)) / (head_dim as f64).sqrt();
        if let Some(mask) = mask {
            scores = scores.mask_fill(mask, f64::NEG_INFINITY);
        }
        let probs = self.attn_dropout.forward(softmax(scores, 3));
        probs.matmul(v)
    }
}

/// SwiGLU feed-forward: `w2(silu(w1·x) ⊙ w3·x)`, then dropout.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `[d_model → hidden]`.
    pub w1: Linear,
    /// `[hidden → d_model]`.
    pub w2: Linear,
    /// `[d_model → hidden]`.
    pub w3: Linear,
    /// Dropout on the output (training only).
    pub ffn_dropout: Dropout,
}

impl FeedForward {
    /// # Shapes
    ///
    /// - x: `[batch_size, seq_length, d_model]`; output: the same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gated = silu(self.w1.forward(x.clone())) * self.w3.forward(x);
        self.ffn_dropout.forward(self.w2.forward(gated))
    }
}

/// Per-sample stochastic depth: zeroes a residual branch for a whole sample with probability
/// `prob` and scales the kept ones by `1/(1 − prob)` (training only; built on Burn's `Dropout`,
/// so it follows the same training flag).
#[derive(Module, Debug)]
pub struct DropPath {
    /// Dropout over a `[batch_size, 1, 1]` tensor of ones.
    pub dropout: Dropout,
}

impl DropPath {
    /// # Shapes
    ///
    /// - x: `[batch_size, seq_length, d_model]`; output: the same
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if self.dropout.prob == 0.0 || !x.device().is_autodiff() {
            return x;
        }
        let keep = self.dropout.forward(Tensor::ones([x.dims()[0], 1, 1], &x.device()));
        x * keep
    }
}

/// One pre-norm decoder block.
#[derive(Module, Debug)]
pub struct TransformerBlock {
    /// Attention sub-layer.
    pub attention: Attention,
    /// Feed-forward sub-layer.
    pub feed_forward: FeedForward,
    /// Norm before attention.
    pub attention_norm: RmsNorm,
    /// Norm before the feed-forward.
    pub ffn_norm: RmsNorm,
    /// Stochastic depth on both residual branches.
    pub drop_path: DropPath,
}

/// Sizes and rates of one block.
#[derive(Debug, Clone, Copy)]
pub struct BlockShape {
    /// Model width.
    pub d_model: usize,
    /// Heads.
    pub n_heads: usize,
    /// SwiGLU hidden size.
    pub ffn_hidden: usize,
    /// RMSNorm epsilon.
    pub norm_eps: f64,
    /// Init std of the linear weights.
    pub init_std: f64,
    /// Attention-probability dropout.
    pub attn_dropout: f64,
    /// Dropout after `wo`.
    pub resid_dropout: f64,
    /// Dropout after the feed-forward.
    pub ffn_dropout: f64,
    /// Drop-path rate of this block.
    pub drop_path: f64,
}

impl TransformerBlock {
    /// A freshly initialised block: linear weights N(0, `init_std`), norms 1.
    pub fn new(s: BlockShape, device: &Device) -> Self {
        let linear = |d_in, d_out| {
            LinearConfig::new(d_in, d_out)
                .with_bias(false)
                .with_initializer(Initializer::Normal { mean: 0.0, std: s.init_std })
                .init(device)
        };
        let dropout = |p| DropoutConfig::new(p).init();
        Self {
            attention: Attention {
                wqkv: linear(s.d_model, 3 * s.d_model),
                wo: linear(s.d_model, s.d_model),
                attn_dropout: dropout(s.attn_dropout),
                resid_dropout: dropout(s.resid_dropout),
                n_heads: s.n_heads,
            },
            feed_forward: FeedForward {
                w1: linear(s.d_model, s.ffn_hidden),
                w2: linear(s.ffn_hidden, s.d_model),
                w3: linear(s.d_model, s.ffn_hidden),
                ffn_dropout: dropout(s.ffn_dropout),
            },
            attention_norm: RmsNorm::new(s.d_model, s.norm_eps, device),
            ffn_norm: RmsNorm::new(s.d_model, s.norm_eps, device),
            drop_path: DropPath { dropout: dropout(s.drop_path) },
        }
    }

    /// `h = x + DP(attn(norm(x)))`, `out = h + DP(ffn(norm(h)))`.
    ///
    /// # Shapes
    ///
    /// - x: `[batch_size, seq_length, d_model]`; cos, sin: `[seq_length, head_dim/2]`
    /// - output: `[batch_size, seq_length, d_model]`
    pub fn forward(
        &self,
        x: Tensor<3>,
        cos: Tensor<2>,
        sin: Tensor<2>,
        kv: KeyValues<'_>,
    ) -> Tensor<3> {
        let h = x.clone()
            + self.drop_path.forward(self.attention.forward(
                self.attention_norm.forward(x),
                cos,
                sin,
                kv,
            ));
        h.clone() + self.drop_path.forward(self.feed_forward.forward(self.ffn_norm.forward(h)))
    }
}
