//! [`ParTransformer`]: the PAR / LlamaGen class-conditional decoder, with a teacher-forced
//! [`forward`](ParTransformer::forward) and a KV-cached [`forward_step`](ParTransformer::forward_step).

use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{
    Dropout, DropoutConfig, Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use par_order::tensor::{masked_tensor, step_mask};
use par_order::{ParSchedule, Slot, Step};

use crate::block::{BlockShape, KeyValues, RmsNorm, TransformerBlock};
use crate::cache::ModelCache;
use crate::config::{ConfigError, ParTransformerConfig, PositionEmbedding};
use crate::rope::{RopeAxes, RopeTable};

/// Errors of the forward paths on inputs that do not fit the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// Token grids of the wrong length.
    #[error("expected {expected} image tokens per sample, got {actual}")]
    TokenCount {
        /// What the step or grid needs.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// Class ids and tokens disagree on the batch size, or a step changes it.
    #[error("batch size mismatch: {0} vs {1}")]
    BatchSize(usize, usize),
    /// A class or code id outside the model's embedding tables.
    #[error("{what} id {id} is outside the model's {size} entries")]
    IdOutOfRange {
        /// `class` or `code`.
        what: &'static str,
        /// The id.
        id: i64,
        /// Rows of the table.
        size: usize,
    },
    /// A step that does not start where the cache ends.
    #[error("decode step starts at slot {step_start} but the cache holds {cache_len} slots")]
    CacheMismatch {
        /// First slot of the step.
        step_start: usize,
        /// Slots already cached.
        cache_len: usize,
    },
}

/// The class embedding table with the null class as its last row (upstream `cls_embedding`).
#[derive(Module, Debug)]
pub struct ClassEmbedding {
    /// `[num_classes + 1, d_model]`.
    pub embedding_table: Embedding,
}

/// The `n − 1` learnable transition tokens (upstream `spe_tok_embeddings`).
#[derive(Module, Debug)]
pub struct TransitionEmbedding {
    /// `[n − 1, d_model]`.
    pub special_embeddings: Embedding,
}

/// Learned factorised 3D positions (`PositionEmbedding::Learned`): a token at cell
/// `(t, y, x)` gets `frame[t] + row[y] + col[x]` added to its code embedding. Not in any upstream
/// checkpoint (the paper's video code is unreleased); our files store them as
/// `pos_embeddings.{frame,row,col}.weight`.
#[derive(Module, Debug)]
pub struct LearnedPositions {
    /// `[T, d_model]`.
    pub frame: Embedding,
    /// `[L, d_model]`.
    pub row: Embedding,
    /// `[L, d_model]`.
    pub col: Embedding,
}

/// The PAR decoder (docs/spec.md §2, §4). Field names are the upstream state-dict keys.
#[derive(Module, Debug)]
pub struct ParTransformer {
    /// Class embedding, `C + 1` rows.
    pub cls_embedding: ClassEmbedding,
    /// Code embedding, `V` rows.
    pub tok_embeddings: Embedding,
    /// Transition tokens; `None` for `n = 1` (LlamaGen).
    pub spe_tok_embeddings: Option<TransitionEmbedding>,
    /// Learned positions; `None` with RoPE (the default, and every upstream checkpoint).
    pub pos_embeddings: Option<LearnedPositions>,
    /// Decoder blocks.
    pub layers: Vec<TransformerBlock>,
    /// Final norm.
    pub norm: RmsNorm,
    /// Output head `[d_model → V]`, no bias, not tied, zero-initialised.
    pub output: Linear,
    /// Dropout on the embedded input sequence (training only).
    pub token_dropout: Dropout,
    #[module(skip)]
    config: ParTransformerConfig,
    #[module(skip)]
    schedule: ParSchedule,
    #[module(skip)]
    rope: RopeTable,
    /// `(frame, row, col)` of PAR token `k` (the cells the learned positions look up).
    #[module(skip)]
    token_cells: Vec<[usize; 3]>,
}

/// Inputs of the teacher-forced forward.
#[derive(Debug, Clone)]
pub struct TransformerInput {
    /// Code grids in **PAR order** (see `par_order::tensor::permute_codes`), `[batch_size, N]`.
    pub tokens: Tensor<2, Int>,
    /// Class ids, `[batch_size]`; `num_classes` is the null class.
    pub classes: Tensor<1, Int>,
}

/// Inputs of one decode step.
#[derive(Debug, Clone)]
pub struct StepInput {
    /// The step, from [`ParTransformer::schedule`]`().steps()`.
    pub step: Step,
    /// Class ids, `[batch_size]` (only read by the prefill).
    pub classes: Tensor<1, Int>,
    /// The PAR tokens fed by this step, in slot order, `[batch_size, k]`: none for the prefill
    /// (`k = 0`), `t_{k−1}` for a sequential step, `t_{n−1}` for the transition step, the previous
    /// group for a parallel step.
    pub tokens: Tensor<2, Int>,
}

impl ParTransformerConfig {
    /// A randomly initialised model (spec §4.3): linear and embedding weights N(0, 0.02), norms 1,
    /// output head zero.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] if the config is invalid.
    pub fn init(&self, device: &Device) -> Result<ParTransformer, ConfigError> {
        self.validate()?;
        let init = Initializer::Normal { mean: 0.0, std: self.initializer_range };
        let embedding = |rows, cols| {
            EmbeddingConfig::new(rows, cols).with_initializer(init.clone()).init(device)
        };
        let schedule = self.schedule()?;
        let n_layers = self.n_layers;
        let layers = (0..n_layers)
            .map(|i| {
                let drop_path = if n_layers > 1 {
                    self.drop_path_rate * i as f64 / (n_layers - 1) as f64
                } else {
                    0.0
                };
                TransformerBlock::new(
                    BlockShape {
                        d_model: self.d_model,
                        n_heads: self.n_heads,
                        ffn_hidden: self.ffn_hidden(),
                        norm_eps: self.norm_eps,
                        init_std: self.initializer_range,
                        attn_dropout: self.attn_dropout,
                        resid_dropout: self.resid_dropout,
                        ffn_dropout: self.ffn_dropout,
                        drop_path,
                    },
                    device,
                )
            })
            .collect();
        Ok(ParTransformer {
            cls_embedding: ClassEmbedding {
                embedding_table: embedding(self.num_classes + 1, self.d_model),
            },
            tok_embeddings: embedding(self.vocab_size, self.d_model),
            spe_tok_embeddings: (self.parallel > 1).then(|| TransitionEmbedding {
                special_embeddings: embedding(self.parallel - 1, self.d_model),
            }),
            layers,
            norm: RmsNorm::new(self.d_model, self.norm_eps, device),
            output: LinearConfig::new(self.d_model, self.vocab_size)
                .with_bias(false)
                .with_initializer(Initializer::Zeros)
                .init(device),
            pos_embeddings: (self.position_embedding == PositionEmbedding::Learned).then(|| {
                LearnedPositions {
                    frame: embedding(self.frames, self.d_model),
                    row: embedding(self.grid_size, self.d_model),
                    col: embedding(self.grid_size, self.d_model),
                }
            }),
            token_dropout: DropoutConfig::new(self.token_dropout).init(),
            rope: RopeTable::new(&schedule, self.head_dim(), self.rope_base, self.rope_axes()),
            token_cells: (0..schedule.decode_seq_length())
                .map(|k| {
                    let c = schedule.token_cell(k);
                    [c.frame, c.row, c.col]
                })
                .collect(),
            schedule,
            config: self.clone(),
        })
    }
}

impl ParTransformerConfig {
    /// The RoPE channel split of this config: 2D for images, 3D for video, none with learned
    /// positions.
    pub fn rope_axes(&self) -> RopeAxes {
        match (self.position_embedding, self.is_video()) {
            (PositionEmbedding::Learned, _) => RopeAxes::Identity,
            (PositionEmbedding::Rope, false) => RopeAxes::Rows2d,
            (PositionEmbedding::Rope, true) => RopeAxes::Video3d,
        }
    }
}

impl ParTransformer {
    /// The configuration the model was built with.
    pub fn config(&self) -> &ParTransformerConfig {
        &self.config
    }

    /// The ordering, layout and decode steps of the model's grid.
    pub fn schedule(&self) -> &ParSchedule {
        &self.schedule
    }

    /// The RoPE table (2D for images, 3D for video, identity on image tokens with learned
    /// positions).
    pub fn rope(&self) -> &RopeTable {
        &self.rope
    }

    /// Embeds the given slots. `tokens[:, i]` holds PAR token `t_{first_token + i}`.
    fn embed(
        &self,
        slots: &[Slot],
        classes: &Tensor<1, Int>,
        tokens: &Tensor<2, Int>,
        first_token: usize,
    ) -> Tensor<3> {
        let batch_size = classes.dims()[0];
        let mut parts = Vec::new();
        let mut i = 0;
        while i < slots.len() {
            // Runs of consecutive slots of one kind become one embedding lookup.
            let run = slots[i..]
                .iter()
                .take_while(|s| std::mem::discriminant(*s) == std::mem::discriminant(&slots[i]))
                .count();
            parts.push(match slots[i] {
                Slot::Class => {
                    self.cls_embedding.embedding_table.forward(classes.clone().unsqueeze_dim(1))
                }
                Slot::Token(k) => {
                    let ids = tokens.clone().narrow(1, k - first_token, run);
                    let x = self.tok_embeddings.forward(ids);
                    match &self.pos_embeddings {
                        None => x,
                        Some(pos) => x + self.learned_positions(pos, k..k + run, &tokens.device()),
                    }
                }
                Slot::Transition(m) => {
                    let table = self
                        .spe_tok_embeddings
                        .as_ref()
                        .expect("transition slots only exist for n > 1");
                    let rows = table.special_embeddings.weight.val().narrow(0, m, run); // [run, d_model]
                    rows.unsqueeze::<3>().expand([batch_size, run, self.config.d_model])
                }
            });
            i += run;
        }
        Tensor::cat(parts, 1)
    }

    /// `frame[t] + row[y] + col[x]` of PAR tokens `ks`, `[1, ks.len(), d_model]`.
    fn learned_positions(
        &self,
        pos: &LearnedPositions,
        ks: std::ops::Range<usize>,
        device: &Device,
    ) -> Tensor<3> {
        let run = ks.len();
        let ids = |axis: usize| {
            let v: Vec<i64> = self.token_cells[ks.clone()].iter().map(|c| c[axis] as i64).collect();
            Tensor::<2, Int>::from_data(TensorData::new(v, [1, run]), device)
        };
        pos.frame.forward(ids(0)) + pos.row.forward(ids(1)) + pos.col.forward(ids(2))
    }

    fn head(&self, x: Tensor<3>) -> Tensor<3> {
        self.output.forward(self.norm.forward(x)).cast(DType::F32)
    }

    /// Teacher-forced logits for every image token (spec §2.1): the input is the class slot, the
    /// PAR tokens `t_0 … t_{N−2}` and the transition tokens, under the group attention mask; the
    /// logit at slot `p` predicts `t_p`, the trailing `n − 1` slots are dropped.
    ///
    /// # Shapes
    ///
    /// - input.tokens: `[batch_size, N]` (PAR order)
    /// - input.classes: `[batch_size]`
    /// - output: `[batch_size, N, vocab_size]` (f32)
    ///
    /// # Errors
    ///
    /// [`ForwardError`] if the token count is not `N` or the batch sizes differ.
    pub fn forward(&self, input: TransformerInput) -> Result<Tensor<3>, ForwardError> {
        let [batch_size, num_tokens] = input.tokens.dims();
        let n_image = self.schedule.decode_seq_length();
        if num_tokens != n_image {
            return Err(ForwardError::TokenCount { expected: n_image, actual: num_tokens });
        }
        if input.classes.dims()[0] != batch_size {
            return Err(ForwardError::BatchSize(input.classes.dims()[0], batch_size));
        }
        let device = input.tokens.device();
        let seq_length = self.schedule.train_seq_length();
        let slots = self.schedule.slots(seq_length).expect("train length is within the layout");
        let mut x =
            self.token_dropout.forward(self.embed(&slots, &input.classes, &input.tokens, 0));
        let mask = masked_tensor(
            &self.schedule.attend_mask(seq_length).expect("within the layout"),
            &device,
        );
        let (cos, sin) = self.rope.tables(0, seq_length, &device);
        for layer in &self.layers {
            x = layer.forward(x, cos.clone(), sin.clone(), KeyValues::Masked(mask.clone()));
        }
        Ok(self.head(x.narrow(1, 0, n_image)))
    }

    /// Mean cross-entropy of the teacher-forced logits against the PAR tokens (spec §2.1).
    ///
    /// # Shapes
    ///
    /// - input.tokens: `[batch_size, N]` (PAR order); input.classes: `[batch_size]`
    /// - output: `[1]`
    ///
    /// # Errors
    ///
    /// As [`ParTransformer::forward`].
    pub fn loss(&self, input: TransformerInput) -> Result<Tensor<1>, ForwardError> {
        let targets = input.tokens.clone();
        let logits = self.forward(input)?;
        let [batch_size, n, vocab] = logits.dims();
        let loss = CrossEntropyLossConfig::new().init(&logits.device());
        Ok(loss.forward(logits.reshape([batch_size * n, vocab]), targets.reshape([batch_size * n])))
    }

    /// An empty KV cache for one decode of this model's grid.
    pub fn new_cache(&self) -> ModelCache {
        ModelCache::new(self.layers.len(), self.schedule.decode_seq_length())
    }

    /// One KV-cached decode step (spec §3.2): embeds the step's slots, attends to the cache plus
    /// the step itself, appends the step to the cache, and returns the logits of the step's slots,
    /// i.e. the distributions of the PAR tokens `step.targets()`.
    ///
    /// # Shapes
    ///
    /// - input.classes: `[batch_size]`; input.tokens: `[batch_size, token slots of the step]`
    /// - output: `[batch_size, step length, vocab_size]` (f32)
    ///
    /// # Errors
    ///
    /// [`ForwardError`] if the step does not start at the cache's end, the token count does not
    /// match the step's token slots, or the batch size changes.
    pub fn forward_step(
        &self,
        input: StepInput,
        cache: &mut ModelCache,
    ) -> Result<Tensor<3>, ForwardError> {
        let StepInput { step, classes, tokens } = input;
        if step.slots.start != cache.len() || step.slots.end > cache.capacity() {
            return Err(ForwardError::CacheMismatch {
                step_start: step.slots.start,
                cache_len: cache.len(),
            });
        }
        let batch_size = classes.dims()[0];
        let [token_batch, num_tokens] = tokens.dims();
        if token_batch != batch_size {
            return Err(ForwardError::BatchSize(batch_size, token_batch));
        }
        if let Some(cached) = cache.batch_size().filter(|&b| b != batch_size) {
            return Err(ForwardError::BatchSize(cached, batch_size));
        }
        let slots: Vec<Slot> = step.slots.clone().filter_map(|s| self.schedule.slot(s)).collect();
        let token_slots: Vec<usize> = slots
            .iter()
            .filter_map(|s| if let Slot::Token(k) = s { Some(*k) } else { None })
            .collect();
        if token_slots.len() != num_tokens {
            return Err(ForwardError::TokenCount {
                expected: token_slots.len(),
                actual: num_tokens,
            });
        }
        cache.set_batch_size(batch_size);
        let device = classes.device();
        let first_token = token_slots.first().copied().unwrap_or(0);
        let mut x = self.embed(&slots, &classes, &tokens, first_token);
        let (cos, sin) = self.rope.tables(step.slots.start, step.slots.len(), &device);
        // Causal group attention masks the step's slots among themselves; PAR needs no mask.
        let mask = self
            .schedule
            .step_is_causal()
            .then(|| step_mask(&self.schedule, step.slots.clone(), &device));
        for (layer, layer_cache) in self.layers.iter().zip(cache.layers.iter_mut()) {
            let kv = KeyValues::Cached(layer_cache, mask.clone());
            x = layer.forward(x, cos.clone(), sin.clone(), kv);
        }
        Ok(self.head(x))
    }
}
