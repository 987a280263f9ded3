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

/// Sequence layout, decode schedule, attention mask and RoPE positions of one [`RegionGrid`].
///
/// Built once per grid; everything else in the project asks it (the transformer for its mask and
/// RoPE table, the sampler for its steps, the data pipeline for the permutation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParSchedule {
    order: TokenOrder,
}

impl ParSchedule {
    /// The schedule of `grid`.
    pub fn new(grid: RegionGrid) -> Self {
        Self { order: TokenOrder::new(grid) }
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

    /// What occupies `slot`, or `None` past [`ParSchedule::max_seq_length`].
    pub fn slot(&self, slot: usize) -> Option<Slot> {
        let n = self.parallel();
        match slot {
            0 => Some(Slot::Class),
            s if s <= n => Some(Slot::Token(s - 1)),
            s if s < 2 * n => Some(Slot::Transition(s - n - 1)),
            s if s < self.max_seq_length() => Some(Slot::Token(s - n)),
            _ => None,
        }
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

    /// The slot that feeds PAR token `t_k` as an input: `k + 1` for `k < n`, else `k + n`.
    ///
    /// # Panics
    ///
    /// If `k ≥ N`.
    pub fn slot_of_token(&self, k: usize) -> usize {
        assert!(k < self.num_image_tokens(), "PAR position {k} outside the grid");
        let n = self.parallel();
        if k < n { k + 1 } else { k + n }
    }

    /// The decode steps in order: prefill, `n−1` sequential steps, the transition step, then the
    /// parallel steps. Their count is [`RegionGrid::num_steps`]; their `slots` tile `0 … N`.
    pub fn steps(&self) -> Vec<Step> {
        let n = self.parallel();
        let total = self.num_image_tokens();
        let mut steps = Vec::with_capacity(self.grid().num_steps());
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

    /// The raster indices each decode step generates, in step order, when the tokens are
    /// arranged by `arrangement` ([`Arrangement::Regions`] is this schedule's own PAR order).
    pub fn generation_groups(&self, arrangement: Arrangement) -> Vec<Vec<usize>> {
        let order = self.order.par_to_raster();
        self.steps()
            .into_iter()
            .map(|step| match arrangement {
                Arrangement::Regions => step.targets().map(|p| order[p]).collect(),
                Arrangement::Raster => step.targets().collect(),
            })
            .collect()
    }

    /// Index (from 0) of the decode step that generates PAR position `k`.
    ///
    /// # Panics
    ///
    /// If `k ≥ N`.
    pub fn step_of_token(&self, k: usize) -> usize {
        assert!(k < self.num_image_tokens(), "PAR position {k} outside the grid");
        let n = self.parallel();
        if k < n { k } else { n + (k - n) / n }
    }

    /// Exclusive end of the slots visible to query `slot` (spec §2.2 closed form):
    /// `slot + 1` for `slot < n`, else `n + n·(⌊(slot − n)/n⌋ + 1)` — causal up to the `n`-th slot,
    /// then bidirectional inside each block of `n` slots.
    pub fn visible_end(&self, slot: usize) -> usize {
        let n = self.parallel();
        if slot < n { slot + 1 } else { n + n * ((slot - n) / n + 1) }
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
            Slot::Token(k) => Some(self.grid().cell(self.order.par_to_raster()[k])),
            Slot::Class | Slot::Transition(_) => None,
        }
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
