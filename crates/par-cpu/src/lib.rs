//! KV-cached PAR decoding on the CPU (`--backend host`): the decode step of
//! [`par_model::ParTransformer`] on host memory, for sampling (docs/spec.md §3.2, §4.1).
//!
//! A decode step runs a few rows through the model (2 at 1× with classifier-free guidance, 32 in
//! a 16× parallel step). At so few rows a step is bound by reading the weights (1×) or by the
//! matmul kernels (16×), not by the arithmetic of one op; Burn's CPU backends spend most of a
//! step on per-op overhead and on packing the weights for every matmul. [`CpuDecoder`] keeps the
//! weights in the layout the gemm crate streams best (`[d_input, d_output]` row-major, in
//! 64-column panels), splits each matmul's panels over the cores, and fuses nothing but the
//! obvious (the `w1 | w3` projections into one matmul). A whole step runs on one of rayon's pool
//! threads (`rayon::scope`), so each parallel op joins the other threads in place instead of
//! being sent to the pool and waited on. Everything else is a few loops written from the same
//! spec sections as the Burn model and checked against it and against the golden fixtures:
//! RMSNorm; per (sequence, head), RoPE (2D with the reference's zero rows, or 3D for video) on
//! its queries and keys, the cache write of its keys and values, and softmax attention over the
//! filled prefix only (one task each when the step's attention is large enough to pay for the
//! threads, one after another otherwise); SwiGLU split over the threads. Softmax and SiLU use a
//! vectorisable f32 `exp` (Cephes polynomial, within 3e-7 relative of `f64::exp` on
//! `[−87.33, 88]`, clamped outside).
//!
//! Ordering, slot layout and RoPE positions come from the model's own `par_order` schedule and
//! [`par_model::RopeTable`] (2D, or 3D for video), never recomputed here; learned positions
//! (`PositionEmbedding::Learned`) are copied and added like the Burn model adds them.
#![warn(missing_docs)]

mod matmul;

use burn::module::Param;
use burn::prelude::*;
use par_model::{ForwardError, ParTransformer, ParTransformerConfig, RopeTable};
use par_order::{ParSchedule, Slot, Step};
use par_sample::{SampleError, StepModel};
use rayon::prelude::*;

pub use matmul::{PANEL, PackedMatrix};

/// One decoder block's weights (`[d_input, d_output]`, packed in column panels).
#[derive(Debug, Clone)]
struct Block {
    /// `[d, 3d]`: q | k | v.
    wqkv: PackedMatrix,
    /// `[d, d]`.
    wo: PackedMatrix,
    /// `[d, 2h]`: the columns of `w1` then those of `w3`, one matmul for both projections.
    w13: PackedMatrix,
    /// `[h, d]`.
    w2: PackedMatrix,
    attention_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
}

/// [`ParTransformer`]'s decode step on host memory (module docs). Built from a loaded model;
/// holds its own f32 copy of the weights.
#[derive(Debug, Clone)]
pub struct CpuDecoder {
    config: ParTransformerConfig,
    schedule: ParSchedule,
    rope: RopeTable,
    /// Learned positions of PAR token `k`, `[N, d]` (`frame[t] + row[y] + col[x]`, summed once
    /// here); empty with RoPE.
    positions: Vec<f32>,
    /// `[num_classes + 1, d]`.
    cls: Vec<f32>,
    /// `[vocab_size, d]`.
    tok: Vec<f32>,
    /// `[n − 1, d]`.
    spe: Vec<f32>,
    blocks: Vec<Block>,
    norm: Vec<f32>,
    /// `[d, vocab_size]`.
    output: PackedMatrix,
}

/// The KV cache of one decode on the host: per layer, keys and values of every sequence,
/// `[rows, n_heads, capacity, head_dim]` row-major.
///
/// The buffers are allocated filled with NaN: attention reads only the filled prefix
/// (`0 … len`), and a read past it would turn the logits non-finite, which the sampler refuses.
#[derive(Debug, Clone)]
pub struct CpuCache {
    rows: Option<usize>,
    len: usize,
    capacity: usize,
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    /// Activations of a step, reused by every step (a fresh allocation per step costs page
    /// faults and zeroing at these sizes).
    scratch: Scratch,
}

#[derive(Debug, Clone, Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    qkv: Vec<f32>,
    heads: Vec<f32>,
    attn: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    act: Vec<f32>,
}

/// `buf` resized to `len` values (contents unspecified: every user overwrites them).
fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buf.resize(len, 0.0);
    &mut buf[..len]
}

impl CpuCache {
    /// Slots filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn host<const D: usize>(param: &Param<Tensor<D>>) -> Vec<f32> {
    param
        .val()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("a float parameter reads back as f32")
}

/// `[d, h]` and `[d, h]` → `[d, 2h]`, row by row.
fn concat_columns(a: &[f32], b: &[f32], rows: usize) -> Vec<f32> {
    let (ca, cb) = (a.len() / rows, b.len() / rows);
    let mut out = Vec::with_capacity(a.len() + b.len());
    for r in 0..rows {
        out.extend_from_slice(&a[r * ca..(r + 1) * ca]);
        out.extend_from_slice(&b[r * cb..(r + 1) * cb]);
    }
    out
}

/// `out = x / sqrt(mean(x²) + eps) · w`, per row of `d` values (computed as Burn's `RmsNorm`).
fn rms_norm(x: &[f32], w: &[f32], eps: f64, out: &mut [f32]) {
    let d = w.len();
    for (row, o) in x.chunks(d).zip(out.chunks_mut(d)) {
        let mean = row.iter().map(|v| v * v).sum::<f32>() / d as f32;
        let inv = 1.0 / (mean + eps as f32).sqrt();
        for ((o, v), w) in o.iter_mut().zip(row).zip(w) {
            *o = v * inv * w;
        }
    }
}

/// `e^x` in f32 without a libm call, so that loops over slices vectorise (softmax and SiLU take
/// about a million exponentials per 16× decode step of GPT-B; libm's `expf` is one call each).
///
/// Cody–Waite reduction `x = n·ln 2 + r` (`|r| ≤ ln 2 / 2`, `ln 2` split in two so `n·ln 2` is
/// exact) and the Cephes library's degree-7 minimax polynomial for `e^r` (`expf.c`, relative
/// error ≈ 1e-7 over the reduced range); `2^n` is written into the exponent bits. Inputs are
/// clamped to `[−87.33, 88]` (results from ~1.2e-38 to ~1.7e38, never a subnormal or ∞); NaN stays
/// NaN.
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    // 1.5 · 2²³: adding and subtracting it rounds to the nearest integer in f32.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.33, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4; // 0.693359375 = 355/512 exactly
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5; // Cephes: 5.0000001201e-1, which is 0.5 in f32
    let e_r = p * r * r + r + 1.0;
    e_r * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `row[..limit]` ← softmax(`row[..limit]` · `scale`), `row[limit..]` ← 0 (the keys a query
/// may not see under causal group attention).
fn softmax_prefix(row: &mut [f32], limit: usize, scale: f32) {
    let (seen, hidden) = row.split_at_mut(limit);
    let max = seen.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) * scale;
    for v in seen.iter_mut() {
        *v = exp_f32(*v * scale - max);
    }
    let sum: f32 = seen.iter().sum();
    for v in seen.iter_mut() {
        *v /= sum;
    }
    hidden.fill(0.0);
}

/// Attention work (`queries × keys × sequences × heads`) from which a step's heads are split
/// over the threads.
const PARALLEL_ATTENTION_MIN: usize = 1 << 11;

/// Rotates adjacent pairs `(x[2i], x[2i+1])` of one head by the slot's angles (RopeTable's rule).
fn rotate(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    for ((pair, c), s) in x.chunks_mut(2).zip(cos).zip(sin) {
        let (x0, x1) = (pair[0], pair[1]);
        pair[0] = x0 * c - x1 * s;
        pair[1] = x1 * c + x0 * s;
    }
}

impl CpuDecoder {
    /// Copies `model`'s weights to the host in the engine's layout.
    ///
    /// # Panics
    ///
    /// If a weight cannot be read back as f32 (never for a model built by this project).
    pub fn new(model: &ParTransformer) -> Self {
        let config = model.config().clone();
        let (d, hidden) = (config.d_model, config.ffn_hidden());
        let pack = |w: Vec<f32>, k: usize, n: usize| PackedMatrix::from_row_major(&w, k, n);
        let blocks = model
            .layers
            .iter()
            .map(|l| Block {
                wqkv: pack(host(&l.attention.wqkv.weight), d, 3 * d),
                wo: pack(host(&l.attention.wo.weight), d, d),
                w13: pack(
                    concat_columns(
                        &host(&l.feed_forward.w1.weight),
                        &host(&l.feed_forward.w3.weight),
                        d,
                    ),
                    d,
                    2 * hidden,
                ),
                w2: pack(host(&l.feed_forward.w2.weight), hidden, d),
                attention_norm: host(&l.attention_norm.weight),
                ffn_norm: host(&l.ffn_norm.weight),
            })
            .collect();
        let positions = model.pos_embeddings.as_ref().map_or_else(Vec::new, |pos| {
            let (frame, row, col) =
                (host(&pos.frame.weight), host(&pos.row.weight), host(&pos.col.weight));
            let schedule = model.schedule();
            let mut out = Vec::with_capacity(schedule.decode_seq_length() * d);
            for k in 0..schedule.decode_seq_length() {
                let cell = schedule.token_cell(k);
                out.extend((0..d).map(|i| {
                    frame[cell.frame * d + i] + row[cell.row * d + i] + col[cell.col * d + i]
                }));
            }
            out
        });
        Self {
            schedule: model.schedule().clone(),
            rope: model.rope().clone(),
            positions,
            cls: host(&model.cls_embedding.embedding_table.weight),
            tok: host(&model.tok_embeddings.weight),
            spe: model
                .spe_tok_embeddings
                .as_ref()
                .map_or_else(Vec::new, |t| host(&t.special_embeddings.weight)),
            blocks,
            norm: host(&model.norm.weight),
            output: pack(host(&model.output.weight), d, config.vocab_size),
            config,
        }
    }

    /// Bytes of weights a 1× decode step reads (every matrix once).
    pub fn weight_bytes(&self) -> usize {
        let per_block: usize = self
            .blocks
            .iter()
            .map(|b| b.wqkv.bytes() + b.wo.bytes() + b.w13.bytes() + b.w2.bytes())
            .sum();
        per_block + self.output.bytes()
    }

    fn check(
        &self,
        step: &Step,
        classes: &[i64],
        tokens: &[i64],
        cache: &CpuCache,
    ) -> Result<(Vec<Slot>, usize), ForwardError> {
        if step.slots.start != cache.len || step.slots.end > cache.capacity {
            return Err(ForwardError::CacheMismatch {
                step_start: step.slots.start,
                cache_len: cache.len,
            });
        }
        let rows = classes.len();
        if let Some(cached) = cache.rows.filter(|&r| r != rows) {
            return Err(ForwardError::BatchSize(cached, rows));
        }
        let slots: Vec<Slot> = step.slots.clone().filter_map(|s| self.schedule.slot(s)).collect();
        let token_slots = slots.iter().filter(|s| matches!(s, Slot::Token(_))).count();
        if tokens.len() != rows * token_slots {
            return Err(ForwardError::TokenCount {
                expected: rows * token_slots,
                actual: tokens.len(),
            });
        }
        let table = |ids: &[i64], size: usize, what: &'static str| match ids
            .iter()
            .find(|&&id| id < 0 || id as usize >= size)
        {
            Some(&id) => Err(ForwardError::IdOutOfRange { what, id, size }),
            None => Ok(()),
        };
        table(classes, self.config.num_classes + 1, "class")?;
        table(tokens, self.config.vocab_size, "code")?;
        Ok((slots, token_slots))
    }

    /// One decode step (see [`StepModel::step`]).
    fn run(
        &self,
        step: &Step,
        classes: &[i64],
        tokens: &[i64],
        cache: &mut CpuCache,
        logits: &mut Vec<f32>,
    ) -> Result<(), ForwardError> {
        let (slots, token_slots) = self.check(step, classes, tokens, cache)?;
        if slots.is_empty() {
            // An empty step (a caller-built `Step` with `slots: s..s`) feeds and predicts nothing.
            logits.clear();
            return Ok(());
        }
        let c = &self.config;
        let (d, heads, hd, hidden) = (c.d_model, c.n_heads, c.head_dim(), c.ffn_hidden());
        let (rows, len) = (classes.len(), slots.len());
        let m = rows * len;
        let (start, end) = (step.slots.start, step.slots.end);
        let cap = cache.capacity;
        if cache.rows.is_none() {
            cache.rows = Some(rows);
            for buf in cache.keys.iter_mut().chain(cache.values.iter_mut()) {
                *buf = vec![f32::NAN; rows * heads * cap * hd];
            }
        }
        let CpuCache { keys, values, scratch, .. } = cache;
        let x = sized(&mut scratch.x, m * d);
        let h = sized(&mut scratch.h, m * d);
        let qkv = sized(&mut scratch.qkv, m * 3 * d);
        let heads_out = sized(&mut scratch.heads, rows * heads * len * hd);
        let attn = sized(&mut scratch.attn, m * d);
        let proj = sized(&mut scratch.proj, m * d);
        let gate = sized(&mut scratch.gate, m * 2 * hidden);
        let act = sized(&mut scratch.act, m * hidden);

        // Embed the step's slots: [rows, len, d].
        let first_token = slots.iter().find_map(|s| match s {
            Slot::Token(k) => Some(*k),
            _ => None,
        });
        for r in 0..rows {
            for (j, slot) in slots.iter().enumerate() {
                let src = match *slot {
                    Slot::Class => &self.cls[classes[r] as usize * d..][..d],
                    Slot::Token(k) => {
                        let id = tokens[r * token_slots + k - first_token.unwrap_or(k)] as usize;
                        &self.tok[id * d..][..d]
                    }
                    Slot::Transition(t) => &self.spe[t * d..][..d],
                };
                let dst = &mut x[(r * len + j) * d..][..d];
                dst.copy_from_slice(src);
                if let (Slot::Token(k), false) = (*slot, self.positions.is_empty()) {
                    for (o, p) in dst.iter_mut().zip(&self.positions[k * d..][..d]) {
                        *o += p;
                    }
                }
            }
        }
        let angles: Vec<(&[f32], &[f32])> = (start..end).map(|s| self.rope.row(s)).collect();
        // Keys each of the step's slots sees: everything up to the step's end, or under causal
        // group attention only up to itself (par_order's mask).
        let causal = self.schedule.step_is_causal();
        let limits: Vec<usize> = (start..end)
            .map(|q| if causal { self.schedule.visible_end(q).min(end) } else { end })
            .collect();
        let scale = 1.0 / (hd as f32).sqrt();
        for (block, (keys, values)) in
            self.blocks.iter().zip(keys.iter_mut().zip(values.iter_mut()))
        {
            rms_norm(x, &block.attention_norm, c.norm_eps, h);
            block.wqkv.matmul(h, qkv, m);
            // Per (sequence, head), one task: RoPE on the step's queries (into the task's scratch)
            // and keys, the keys and values into that head's cache, then softmax(q·Kᵀ/√d_h)·V
            // over the filled prefix 0 … end only.
            let qkv = &*qkv;
            let limits = &limits;
            let angles = &angles;
            let attend = |(q, scores): &mut (Vec<f32>, Vec<f32>),
                          rh: usize,
                          (k_head, v_head): (&mut [f32], &mut [f32]),
                          out: &mut [f32]| {
                let (r, head) = (rh / heads, rh % heads);
                let q = sized(q, len * hd);
                for (j, (cos, sin)) in angles.iter().enumerate() {
                    let row = &qkv[(r * len + j) * 3 * d..][..3 * d];
                    let slot = (start + j) * hd;
                    q[j * hd..][..hd].copy_from_slice(&row[head * hd..][..hd]);
                    rotate(&mut q[j * hd..][..hd], cos, sin);
                    k_head[slot..slot + hd].copy_from_slice(&row[d + head * hd..][..hd]);
                    rotate(&mut k_head[slot..slot + hd], cos, sin);
                    v_head[slot..slot + hd].copy_from_slice(&row[2 * d + head * hd..][..hd]);
                }
                let (k_seen, v_seen) = (&k_head[..end * hd], &v_head[..end * hd]);
                let scores = sized(scores, len * end);
                matmul::matmul_transposed(q, k_seen, scores, len, hd, end);
                for (row, &limit) in scores.chunks_mut(end).zip(limits.iter()) {
                    softmax_prefix(row, limit, scale);
                }
                matmul::matmul_serial(scores, v_seen, out, len, end, hd);
            };
            // Inside the pool (see `step`), splitting over the heads costs a few microseconds:
            // only the smallest steps (a 1× step early in the sequence) stay on one thread.
            let (per_head, per_out) = (cap * hd, len * hd);
            if len * end * rows * heads >= PARALLEL_ATTENTION_MIN {
                keys.par_chunks_mut(per_head)
                    .zip(values.par_chunks_mut(per_head))
                    .zip(heads_out.par_chunks_mut(per_out))
                    .enumerate()
                    .for_each_init(Default::default, |s, (rh, (kv, o))| attend(s, rh, kv, o));
            } else {
                let mut s = Default::default();
                keys.chunks_mut(per_head)
                    .zip(values.chunks_mut(per_head))
                    .zip(heads_out.chunks_mut(per_out))
                    .enumerate()
                    .for_each(|(rh, (kv, o))| attend(&mut s, rh, kv, o));
            }
            for r in 0..rows {
                for head in 0..heads {
                    for j in 0..len {
                        attn[(r * len + j) * d + head * hd..][..hd].copy_from_slice(
                            &heads_out[((r * heads + head) * len + j) * hd..][..hd],
                        );
                    }
                }
            }
            block.wo.matmul(attn, proj, m);
            x.iter_mut().zip(&*proj).for_each(|(a, b)| *a += b);
            // SwiGLU: w2(silu(w1·h) ⊙ w3·h).
            rms_norm(x, &block.ffn_norm, c.norm_eps, h);
            block.w13.matmul(h, gate, m);
            gate.par_chunks(2 * hidden).zip(act.par_chunks_mut(hidden)).for_each(|(g, a)| {
                let (g1, g3) = g.split_at(hidden);
                for ((a, &u), &v) in a.iter_mut().zip(g1).zip(g3) {
                    *a = u / (1.0 + exp_f32(-u)) * v;
                }
            });
            block.w2.matmul(act, proj, m);
            x.iter_mut().zip(&*proj).for_each(|(a, b)| *a += b);
        }
        cache.len = end;
        rms_norm(x, &self.norm, c.norm_eps, h);
        self.output.matmul(h, sized(logits, m * c.vocab_size), m);
        Ok(())
    }
}

impl StepModel for CpuDecoder {
    type Cache = CpuCache;

    fn config(&self) -> &ParTransformerConfig {
        &self.config
    }

    fn schedule(&self) -> &ParSchedule {
        &self.schedule
    }

    fn new_cache(&self) -> CpuCache {
        let layers = self.blocks.len();
        CpuCache {
            rows: None,
            len: 0,
            capacity: self.schedule.decode_seq_length(),
            keys: vec![Vec::new(); layers],
            values: vec![Vec::new(); layers],
            scratch: Scratch::default(),
        }
    }

    fn step(
        &self,
        step: &Step,
        classes: &[i64],
        tokens: &[i64],
        cache: &mut CpuCache,
        logits: &mut Vec<f32>,
    ) -> Result<(), SampleError> {
        // The whole step runs on a thread of rayon's pool, so each parallel matmul, attention
        // and SwiGLU splits its work with the other threads in place instead of handing it to
        // the pool and sleeping until it is done (three thread switches per op otherwise).
        Ok(rayon::scope(|_| self.run(step, classes, tokens, cache, logits))?)
    }

    fn truncate_batch(&self, cache: &mut CpuCache, rows: usize) {
        let Some(current) = cache.rows else { return };
        assert!(rows <= current, "cannot keep {rows} of {current} cached sequences");
        let per = self.config.n_heads * cache.capacity * self.config.head_dim();
        for buf in cache.keys.iter_mut().chain(cache.values.iter_mut()) {
            buf.truncate(rows * per);
        }
        cache.rows = Some(rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_matches_f64_exp_to_a_few_ulps() {
        // Every 1/1024 from −87 to 88 (the softmax and SiLU inputs go far below −87 only where
        // the result is negligible next to the row's maximum, e^0 = 1).
        let mut worst = 0.0f64;
        for i in -87 * 1024..=88 * 1024 {
            let x = i as f32 / 1024.0;
            let exact = (x as f64).exp();
            let rel = ((exp_f32(x) as f64 - exact) / exact).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "max relative error {worst:e}");
        assert_eq!(exp_f32(0.0), 1.0);
        // Clamped below: tiny and positive, never 0, a subnormal or NaN; NaN stays NaN.
        for x in [-87.33f32, -100.0, -1e30, f32::NEG_INFINITY] {
            let y = exp_f32(x);
            assert!(y.is_normal() && y < 1.2e-38, "exp({x}) = {y}");
        }
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(1e30).is_finite());
    }

    #[test]
    fn softmax_prefix_normalises_the_seen_keys_and_zeroes_the_rest() {
        let mut row = [1.0f32, 2.0, 3.0, 50.0, f32::NAN];
        softmax_prefix(&mut row, 3, 0.5);
        let e = [0.5f64.exp(), 1.0f64.exp(), 1.5f64.exp()];
        let total: f64 = e.iter().sum();
        for (got, want) in row[..3].iter().zip(e.iter().map(|v| v / total)) {
            assert!((*got as f64 - want).abs() < 1e-7, "{row:?}");
        }
        assert_eq!(&row[3..], &[0.0, 0.0]);
        // A NaN among the seen keys (a read of the unfilled cache) poisons the whole row.
        let mut poisoned = [1.0f32, f32::NAN, 0.0];
        softmax_prefix(&mut poisoned, 3, 1.0);
        assert!(poisoned.iter().all(|v| v.is_nan()));
    }
}
