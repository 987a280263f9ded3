//! [`ParSchedule`]: the sequence layout (slots), which target each logit predicts, the decode
//! steps and the RoPE position of every slot.

use std::ops::Range;

use crate::{AttendMask, CellPosition, OrderError, RegionGrid, TokenOrder};

/// What occupies one slot (sequence position) of the transformer input (spec §2.1).
///
/// The layout for `N` image tokens and parallel degree `n` is
///
/// ```text
/// slot:    0       1 … n          n+1 … 2n−1                 2n … N+n−1
///        [ class | t_0 … t_{n−1} | transition_0 … transition_{n−2} | t_n … t_{N−1} ]
/// ```
///
/// where `t_k` is the token at PAR position `k` (see [`TokenOrder`]). Training feeds slots
/// `0 … N+n−2` (the last token is never an input); decoding feeds slots `0 … N−1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The class token (class embedding; the null class for unconditional guidance).
    Class,
    /// The image token at this PAR position.
    Token(usize),
    /// The learnable transition token with this index, `0 … n−2` (upstream `spe_tok_embeddings`
    /// row).
    Transition(usize),
}

/// The phase a decode step belongs to (spec §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Feeds the class token, emits `t_0`.
    Prefill,
    /// Feeds `t_{k−1}`, emits `t_k`, for `k = 1 … n−1`: the first token of each region, one by one.
    Sequential,
    /// Feeds `t_{n−1}` and all `n−1` transition tokens, emits the first parallel group
    /// `t_n … t_{2n−1}`. For `n = 1` (LlamaGen) it feeds `t_0` alone and emits `t_1`.
    Transition,
    /// Feeds the previous group `t_{s−n} … t_{s−1}`, emits the group `t_s … t_{s+n−1}`.
    Parallel,
}

/// One transformer forward of the KV-cached decode.
///
/// In every step the fed slots and the slots whose logits are read are the same contiguous range,
/// and the logit at slot `p` predicts the token at PAR position `p`; so `slots` doubles as the
/// range of PAR positions the step generates. Every fed slot may attend to every slot before
/// `slots.end` (the whole cache plus the step itself): a decode step needs no mask.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Step {
    /// The phase.
    pub kind: StepKind,
    /// Slots fed in this step (= slots whose logits are sampled = PAR positions generated).
    pub slots: Range<usize>,
}

impl Step {
    /// The PAR positions this step generates (the same range as [`Step::slots`]).
    pub fn targets(&self) -> Range<usize> {
        self.slots.clone()
    }
}

/// Which tokens a decode step generates together, for analyses and ablations (the paper's
/// Table 4(d) and Fig. 12). Both keep PAR's schedule (the first `n` tokens one by one, then groups
/// of `n`); they differ in which grid cells form a group.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Arrangement {
    /// PAR: the first token of every region, then the same in-region position of all regions
    /// (tokens far apart).
    #[default]
    Regions,
    /// Raster order: the first `n` raster tokens one by one, then runs of `n` adjacent raster
    /// tokens ("raster, multi" in the paper's Table 4(d)).
    Raster,
}

/// Attention among the slots of one parallel group (the paper's Table 4(c)).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum GroupAttention {
    /// PAR: every slot of a group sees the whole group (group-bidirectional).
    #[default]
    Bidirectional,
    /// The ablation: a slot sees only the slots of its group before it (plain causal attention).
    Causal,
}

/// PAR's design choices as options of the schedule: PAR itself (the default), or one of the
/// paper's Table 4 ablations. The ordering, layout, mask and decode steps of every variant come
/// from [`ParSchedule`], so no other crate special-cases them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ScheduleVariant {
    /// Which grid cells a parallel group holds (Table 4(d)).
    pub arrangement: Arrangement,
    /// Attention inside a parallel group (Table 4(c)).
    pub group_attention: GroupAttention,
    /// Whether the first `n` tokens are generated one by one (PAR) or the first group too is
    /// generated at once, from the class token and the `n − 1` transition tokens (Table 4(a),
    /// "w/o initial sequential tokens": `N/n` steps instead of `n + (N − n)/n`).
    pub sequential_start: bool,
}

impl Default for ScheduleVariant {
    fn default() -> Self {
        Self {
            arrangement: Arrangement::Regions,
            group_attention: GroupAttention::Bidirectional,
            sequential_start: true,
        }
    }
}

impl ScheduleVariant {
    /// PAR as published.
    pub fn par() -> Self {
        Self::default()
    }

    /// Whether this is PAR as published (every checkpoint of the paper).
    pub fn is_par(&self) -> bool {
        *self == Self::default()
    }
}

/// Sequence layout, decode schedule, attention mask and RoPE positions of one [`RegionGrid`].
///
/// Built once per grid; everything else in the project asks it (the transformer for its mask and
/// RoPE table, the sampler for its steps, the data pipeline for the permutation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParSchedule {
    order: TokenOrder,
    variant: ScheduleVariant,
}

impl ParSchedule {
    /// The schedule of `grid` (PAR as published).
    pub fn new(grid: RegionGrid) -> Self {
        Self::with_variant(grid, ScheduleVariant::default())
    }

    /// The schedule of `grid` under one of the paper's ablations.
    pub fn with_variant(grid: RegionGrid, variant: ScheduleVariant) -> Self {
        Self { order: TokenOrder::arranged(grid, variant.arrangement), variant }
    }

    /// The design variant.
    pub fn variant(&self) -> ScheduleVariant {
        self.variant
    }

    /// Transformer forwards per image: `n + (N − n)/n` ([`RegionGrid::num_steps`]), or `N/n`
    /// without the sequential start.
    pub fn num_steps(&self) -> usize {
        if self.variant.sequential_start {
            self.grid().num_steps()
        } else {
            self.num_image_tokens().div_ceil(self.parallel())
        }
    }

    /// The grid.
    pub fn grid(&self) -> &RegionGrid {
        self.order.grid()
    }

    /// The raster ↔ PAR permutation.
    pub fn order(&self) -> &TokenOrder {
        &self.order
    }

    fn parallel(&self) -> usize {
        self.grid().parallel()
    }

    fn num_image_tokens(&self) -> usize {
        self.grid().num_image_tokens()
    }

    /// Slots of the full layout, `N + n` (class + N tokens + n−1 transition tokens). This is the
    /// length of the RoPE table upstream.
    pub fn max_seq_length(&self) -> usize {
        self.num_image_tokens() + self.parallel()
    }

    /// Slots of a teacher-forced training sequence, `N + n − 1` (the last token is not an input).
    pub fn train_seq_length(&self) -> usize {
        self.num_image_tokens() + self.parallel() - 1
    }

    /// Slots a decode fills in its KV cache, `N` (the last group is generated, never fed).
    pub fn decode_seq_length(&self) -> usize {
        self.num_image_tokens()
    }

    /// What occupies `slot`, or `None` past [`ParSchedule::max_seq_length`]. Without the
    /// sequential start the transition tokens follow the class token directly:
    /// `[class | transition_0 … transition_{n−2} | t_0 … t_{N−1}]`.
    pub fn slot(&self, slot: usize) -> Option<Slot> {
        let n = self.parallel();
        if slot >= self.max_seq_length() {
            return None;
        }
        Some(match slot {
            0 => Slot::Class,
            s if !self.variant.sequential_start && s < n => Slot::Transition(s - 1),
            s if !self.variant.sequential_start => Slot::Token(s - n),
            s if s <= n => Slot::Token(s - 1),
            s if s < 2 * n => Slot::Transition(s - n - 1),
            s => Slot::Token(s - n),
        })
    }

    /// The first `len` slots.
    ///
    /// # Errors
    ///
    /// [`OrderError::SequenceTooLong`] if `len > max_seq_length()`.
    pub fn slots(&self, len: usize) -> Result<Vec<Slot>, OrderError> {
        self.check_seq_len(len)?;
        Ok((0..len).filter_map(|s| self.slot(s)).collect())
    }

    /// The PAR position whose token the logit at `slot` predicts: `slot` itself for
    /// `slot < N`, `None` for the trailing `n−1` training slots whose logits are discarded
    /// (spec §2.1: after the transition every input predicts the token `n` positions later).
    pub fn logit_target(&self, slot: usize) -> Option<usize> {
        (slot < self.num_image_tokens()).then_some(slot)
    }

    /// The slot that feeds PAR token `t_k` as an input: `k + 1` for `k < n`, else `k + n`
    /// (always `k + n` without the sequential start).
    ///
    /// # Panics
    ///
    /// If `k ≥ N`.
    pub fn slot_of_token(&self, k: usize) -> usize {
        assert!(k < self.num_image_tokens(), "PAR position {k} outside the grid");
        let n = self.parallel();
        if k < n && self.variant.sequential_start { k + 1 } else { k + n }
    }

    /// The decode steps in order: prefill, `n−1` sequential steps, the transition step, then the
    /// parallel steps (without the sequential start: a prefill of `n` slots, then the parallel
    /// steps). Their count is [`ParSchedule::num_steps`]; their `slots` tile `0 … N`.
    pub fn steps(&self) -> Vec<Step> {
        let n = self.parallel();
        let total = self.num_image_tokens();
        let mut steps = Vec::with_capacity(self.num_steps());
        if !self.variant.sequential_start {
            // The class token and the n − 1 transition tokens emit the first group at once.
            steps.push(Step { kind: StepKind::Prefill, slots: 0..n.min(total) });
            for start in (n..total).step_by(n) {
                steps.push(Step { kind: StepKind::Parallel, slots: start..(start + n).min(total) });
            }
            return steps;
        }
        steps.push(Step { kind: StepKind::Prefill, slots: 0..1 });
        for k in 1..n {
            steps.push(Step { kind: StepKind::Sequential, slots: k..k + 1 });
        }
        if total > n {
            steps.push(Step { kind: StepKind::Transition, slots: n..2 * n });
        }
        for start in (2 * n..total).step_by(n) {
            steps.push(Step { kind: StepKind::Parallel, slots: start..start + n });
        }
        steps
    }

    /// The raster indices each decode step generates, in step order.
    pub fn generation_groups(&self) -> Vec<Vec<usize>> {
        let order = self.order.par_to_raster();
        self.steps().into_iter().map(|step| step.targets().map(|p| order[p]).collect()).collect()
    }

    /// Index (from 0) of the decode step that generates PAR position `k`.
    ///
    /// # Panics
    ///
    /// If `k ≥ N`.
    pub fn step_of_token(&self, k: usize) -> usize {
        assert!(k < self.num_image_tokens(), "PAR position {k} outside the grid");
        let n = self.parallel();
        if !self.variant.sequential_start {
            k / n
        } else if k < n {
            k
        } else {
            n + (k - n) / n
        }
    }

    /// Exclusive end of the slots visible to query `slot` (spec §2.2 closed form):
    /// `slot + 1` for `slot < n`, else `n + n·(⌊(slot − n)/n⌋ + 1)` — causal up to the `n`-th slot,
    /// then bidirectional inside each block of `n` slots. Without the sequential start the first
    /// block is slots `0 … n` as well (`n·(⌊slot/n⌋ + 1)`); with causal group attention every
    /// slot sees exactly the slots up to itself (`slot + 1`).
    pub fn visible_end(&self, slot: usize) -> usize {
        let n = self.parallel();
        match (self.variant.group_attention, self.variant.sequential_start) {
            (GroupAttention::Causal, _) => slot + 1,
            (GroupAttention::Bidirectional, false) => n * (slot / n + 1),
            (GroupAttention::Bidirectional, true) if slot < n => slot + 1,
            (GroupAttention::Bidirectional, true) => n + n * ((slot - n) / n + 1),
        }
    }

    /// Whether the slots of a decode step must be masked among themselves (causal group
    /// attention); otherwise every fed slot sees the whole cache and the whole step.
    pub fn step_is_causal(&self) -> bool {
        self.variant.group_attention == GroupAttention::Causal
    }

    /// Whether query slot `query` may attend to key slot `key` (true = visible, as the reference's
    /// `group_mask`).
    pub fn attends(&self, query: usize, key: usize) -> bool {
        key < self.visible_end(query)
    }

    /// The `len × len` group attention mask over the first `len` slots (true = may attend).
    ///
    /// # Errors
    ///
    /// [`OrderError::SequenceTooLong`] if `len > max_seq_length()`.
    pub fn attend_mask(&self, len: usize) -> Result<AttendMask, OrderError> {
        self.check_seq_len(len)?;
        Ok(AttendMask::from_fn(len, |q, k| self.attends(q, k)))
    }

    /// The grid cell whose position RoPE gives `slot`, or `None` for class and transition slots,
    /// whose rotary rows are all zero upstream (cos = sin = 0, spec §2.3: this zeroes their
    /// queries and keys, and must be kept for checkpoint compatibility). `None` also past the
    /// layout.
    pub fn rope_cell(&self, slot: usize) -> Option<CellPosition> {
        match self.slot(slot)? {
            Slot::Token(k) => Some(self.token_cell(k)),
            Slot::Class | Slot::Transition(_) => None,
        }
    }

    /// The grid cell (frame, row, column) of PAR token `k`: what RoPE rotates it by and what
    /// learned positions look up.
    ///
    /// # Panics
    ///
    /// If `k ≥ N`.
    pub fn token_cell(&self, k: usize) -> CellPosition {
        self.grid().cell(self.order.par_to_raster()[k])
    }

    /// [`ParSchedule::rope_cell`] of the first `len` slots: the rows of the RoPE table.
    ///
    /// # Errors
    ///
    /// [`OrderError::SequenceTooLong`] if `len > max_seq_length()`.
    pub fn rope_cells(&self, len: usize) -> Result<Vec<Option<CellPosition>>, OrderError> {
        self.check_seq_len(len)?;
        Ok((0..len).map(|s| self.rope_cell(s)).collect())
    }

    fn check_seq_len(&self, requested: usize) -> Result<(), OrderError> {
        let max = self.max_seq_length();
        if requested <= max { Ok(()) } else { Err(OrderError::SequenceTooLong { requested, max }) }
    }
}
