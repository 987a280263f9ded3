//! [`RopeTable`]: LlamaGen's 2D rotary position embedding on adjacent channel pairs, and its 3D
//! extension (frame, row, column) for video.

use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use par_order::ParSchedule;

/// Which channel pairs of a head rotate with which coordinate of a token's cell.
///
/// A head of `head_dim` channels is `half = head_dim/2` pairs of adjacent channels. An axis with
/// `p` pairs rotates its pairs `m = 0 … p − 1` by `pos·θ_m`, `θ_m = base^(−m/p)`; for the image
/// layout (`p = head_dim/4`) this is LlamaGen's `θ_m = base^(−4m/head_dim)` (docs/spec.md §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeAxes {
    /// LlamaGen's 2D RoPE: pairs `0 … half/2 − 1` by the row, the rest by the column.
    Rows2d,
    /// 3D RoPE for video: the first `half − 2·s` pairs by the latent frame, then `s` pairs by
    /// the row and `s` by the column, `s = ⌊(half − ⌊half/4⌋)/2⌋` (a quarter of the pairs to
    /// time, at least; 8 / 12 / 12 at head_dim 64). The frame axis gets the fewest pairs because
    /// a clip has 5 latent frames against 16 rows and columns.
    Video3d,
    /// No rotation of image tokens (learned positions, [`crate::PositionEmbedding::Learned`]):
    /// cos = 1, sin = 0.
    Identity,
}

impl RopeAxes {
    /// `(frame, row, col)` pair counts of a head of `head_dim` channels.
    pub fn pairs(self, head_dim: usize) -> [usize; 3] {
        let half = head_dim / 2;
        match self {
            RopeAxes::Rows2d => [0, half / 2, half - half / 2],
            RopeAxes::Video3d => {
                let spatial = (half - half / 4) / 2;
                [half - 2 * spatial, spatial, spatial]
            }
            RopeAxes::Identity => [0, 0, 0],
        }
    }
}

/// The RoPE table of a [`ParSchedule`] (docs/spec.md §2.3, video §8), kept on the host and
/// uploaded per forward for the slots that forward needs.
///
/// A head of `head_dim` channels is rotated as `head_dim/2` pairs of **adjacent** channels
/// `(x[2k], x[2k+1])`, split between the cell's coordinates by [`RopeAxes`]. The cell of a slot
/// is the grid cell of the token it holds ([`ParSchedule::rope_cell`]); class and transition
/// slots get **cos = sin = 0**, which zeroes their queries and keys — a quirk of the reference
/// that the official checkpoints depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeTable {
    half: usize,
    /// `[slots, head_dim/2]` row-major.
    cos: Vec<f32>,
    /// `[slots, head_dim/2]` row-major.
    sin: Vec<f32>,
}

impl RopeTable {
    /// The table for every slot of `schedule`'s full layout (`max_seq_length` rows).
    ///
    /// # Panics
    ///
    /// If `head_dim` is not a positive multiple of 4 (checked by the model config's `validate`).
    pub fn new(schedule: &ParSchedule, head_dim: usize, base: f64, axes: RopeAxes) -> Self {
        assert!(
            head_dim > 0 && head_dim.is_multiple_of(4),
            "head_dim {head_dim} must be a multiple of 4"
        );
        let half = head_dim / 2;
        let pairs = axes.pairs(head_dim);
        // (first pair, θ of each pair) per axis.
        let mut axis_theta = Vec::with_capacity(3);
        let mut first = 0;
        for p in pairs {
            let theta: Vec<f64> = (0..p).map(|m| base.powf(-(m as f64) / p as f64)).collect();
            axis_theta.push((first, theta));
            first += p;
        }
        let slots = schedule.max_seq_length();
        let (mut cos, mut sin) = (vec![0.0f32; slots * half], vec![0.0f32; slots * half]);
        for slot in 0..slots {
            let Some(cell) = schedule.rope_cell(slot) else { continue };
            let row = slot * half;
            if axes == RopeAxes::Identity {
                cos[row..row + half].fill(1.0);
                continue;
            }
            for ((first, theta), pos) in axis_theta.iter().zip([cell.frame, cell.row, cell.col]) {
                for (m, &t) in theta.iter().enumerate() {
                    let angle = pos as f64 * t;
                    cos[row + first + m] = angle.cos() as f32;
                    sin[row + first + m] = angle.sin() as f32;
                }
            }
        }
        Self { half, cos, sin }
    }

    /// Rows of the table (slots).
    pub fn len(&self) -> usize {
        self.cos.len() / self.half
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.cos.is_empty()
    }

    /// `(cos, sin)` of one slot, `head_dim/2` values each.
    pub fn row(&self, slot: usize) -> (&[f32], &[f32]) {
        let r = slot * self.half..(slot + 1) * self.half;
        (&self.cos[r.clone()], &self.sin[r])
    }

    /// `(cos, sin)` for slots `start .. start + len` on `device`, in f32.
    ///
    /// # Shapes
    ///
    /// - output: `[len, head_dim/2]` each
    pub fn tables(&self, start: usize, len: usize, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let r = start * self.half..(start + len) * self.half;
        let make = |v: &[f32]| {
            Tensor::<2>::from_data(
                TensorData::new(v[r.clone()].to_vec(), [len, self.half]),
                (device, DType::F32),
            )
        };
        (make(&self.cos), make(&self.sin))
    }

    /// Rotates queries or keys, computed in f32 and cast back to the input's dtype.
    ///
    /// # Shapes
    ///
    /// - x: `[batch_size, n_heads, seq_length, head_dim]`
    /// - cos, sin: `[seq_length, head_dim/2]` (from [`RopeTable::tables`])
    /// - output: `[batch_size, n_heads, seq_length, head_dim]`
    pub fn apply(x: Tensor<4>, cos: Tensor<2>, sin: Tensor<2>) -> Tensor<4> {
        let [batch_size, n_heads, seq_length, head_dim] = x.dims();
        let dtype = x.dtype();
        let half = head_dim / 2;
        let pairs = x.cast(DType::F32).reshape([batch_size, n_heads, seq_length, half, 2]);
        let x0 = pairs.clone().narrow(4, 0, 1).squeeze_dim::<4>(4); // [b, h, s, half]
        let x1 = pairs.narrow(4, 1, 1).squeeze_dim::<4>(4);
        let cos = cos.reshape([1, 1, seq_length, half]);
        let sin = sin.reshape([1, 1, seq_length, half]);
        let out0 = x0.clone() * cos.clone() - x1.clone() * sin.clone();
        let out1 = x1 * cos + x0 * sin;
        Tensor::stack::<5>(vec![out0, out1], 4) // [b, h, s, half, 2]
            .reshape([batch_size, n_heads, seq_length, head_dim])
            .cast(dtype)
    }
}
