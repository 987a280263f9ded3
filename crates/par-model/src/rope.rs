//! [`Rope2d`]: LlamaGen's 2D rotary position embedding on adjacent channel pairs.

use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use par_order::ParSchedule;

/// The 2D RoPE table of a [`ParSchedule`] (docs/spec.md §2.3), kept on the host and uploaded per
/// forward for the slots that forward needs.
///
/// A head of `head_dim` channels is rotated as `head_dim/2` pairs of **adjacent** channels
/// `(x[2k], x[2k+1])`: pairs `0 … head_dim/4 − 1` by `row·θ_m`, pairs `head_dim/4 … head_dim/2 − 1`
/// by `col·θ_m`, with `θ_m = base^(−4m/head_dim)`. The row of a slot is the grid cell of the token
/// it holds ([`ParSchedule::rope_cell`]); class and transition slots get **cos = sin = 0**, which
/// zeroes their queries and keys — a quirk of the reference that the official checkpoints depend on.
#[derive(Debug, Clone, PartialEq)]
pub struct Rope2d {
    half: usize,
    /// `[slots, head_dim/2]` row-major.
    cos: Vec<f32>,
    /// `[slots, head_dim/2]` row-major.
    sin: Vec<f32>,
}

impl Rope2d {
    /// The table for every slot of `schedule`'s full layout (`max_seq_length` rows).
    ///
    /// # Panics
    ///
    /// If `head_dim` is not a positive multiple of 4 (checked by the model config's `validate`).
    pub fn new(schedule: &ParSchedule, head_dim: usize, base: f64) -> Self {
        assert!(
            head_dim > 0 && head_dim.is_multiple_of(4),
            "head_dim {head_dim} must be a multiple of 4"
        );
        let (half, quarter) = (head_dim / 2, head_dim / 4);
        let theta: Vec<f64> =
            (0..quarter).map(|m| base.powf(-(2.0 * m as f64) / half as f64)).collect();
        let slots = schedule.max_seq_length();
        let (mut cos, mut sin) = (vec![0.0f32; slots * half], vec![0.0f32; slots * half]);
        for slot in 0..slots {
            let Some(cell) = schedule.rope_cell(slot) else { continue };
            for (m, &t) in theta.iter().enumerate() {
                for (pair, pos) in [(m, cell.row), (quarter + m, cell.col)] {
                    let angle = pos as f64 * t;
                    cos[slot * half + pair] = angle.cos() as f32;
                    sin[slot * half + pair] = angle.sin() as f32;
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
    /// - cos, sin: `[seq_length, head_dim/2]` (from [`Rope2d::tables`])
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
