//! [`SampleConfig`].

/// How to turn logits into tokens (docs/spec.md §3.3–3.4).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SampleConfig {
    /// Classifier-free guidance scale `s` in `u + s·(c − u)`; `s ≤ 1` turns guidance off (no batch
    /// doubling). Paper: 1.60 (L), 1.50 (XL), 1.435 (XXL), 1.345 (3B) for PAR-4×.
    pub cfg_scale: f32,
    /// Guidance only on the first `k` decode steps (prefill = step 0), the conditional logits
    /// afterwards (and the null half is dropped from the batch, halving the remaining compute);
    /// `None` = every step. (The reference's `cfg_interval` u counts steps in the sequential
    /// phase but tokens in the parallel one, restarting at 0, docs/spec.md §3.3 and §10.8; this
    /// counts steps throughout. For u ≥ n − 2 the reference's u is `k = n + ⌊u/n⌋ + 1`; for
    /// smaller u it guides a non-contiguous set of steps, which has no equivalent.)
    pub cfg_interval: Option<usize>,
    /// Softmax temperature, clamped below at `1e-5`.
    pub temperature: f32,
    /// Keep the `k` largest logits (ties at the k-th value kept); 0 = off.
    pub top_k: usize,
    /// Keep the smallest prefix of the sorted distribution whose mass reaches `p` (the token that
    /// crosses `p` is kept); 1 = off.
    pub top_p: f32,
    /// Take the argmax instead of drawing.
    pub greedy: bool,
    /// Seed of the draws: same seed, same backend, same tokens.
    pub seed: u64,
}

impl Default for SampleConfig {
    /// `sample_c2i_ddp.py`'s defaults: guidance 1.5, temperature 1, no top-k/top-p.
    fn default() -> Self {
        Self {
            cfg_scale: 1.5,
            cfg_interval: None,
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            greedy: false,
            seed: 0,
        }
    }
}

impl SampleConfig {
    /// The paper's video sampling settings (Table 6, docs/spec.md §8): temperature 1.0,
    /// classifier-free guidance 1.15, top-k 8000.
    pub fn video_table6() -> Self {
        Self { cfg_scale: 1.15, temperature: 1.0, top_k: 8000, ..Self::default() }
    }
}

/// An unusable sampling setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SampleConfigError {
    /// `top_p` outside `(0, 1]`.
    #[error("sampling setting `top_p` must be in (0, 1], got {0}")]
    TopP(f32),
    /// A non-finite or negative number.
    #[error("sampling setting `{field}` must be finite and ≥ 0, got {value}")]
    NotFinite {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f32,
    },
    /// A guidance scale above [`MAX_CFG_SCALE`]: the guided logits `u + s·(c − u)` overflow f32
    /// for scales near its range, and no scale this large means anything.
    #[error("sampling setting `cfg_scale` must be at most {MAX_CFG_SCALE}, got {0}")]
    CfgTooLarge(f32),
}

/// The largest classifier-free guidance scale accepted (the papers use 1–10).
pub const MAX_CFG_SCALE: f32 = 1e4;

impl SampleConfigError {
    /// The [`SampleConfig`] field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            SampleConfigError::TopP(_) => "top_p",
            SampleConfigError::NotFinite { field, .. } => field,
            SampleConfigError::CfgTooLarge(_) => "cfg_scale",
        }
    }
}

impl SampleConfig {
    /// Checks the numeric ranges.
    ///
    /// # Errors
    ///
    /// [`SampleConfigError`] naming the field.
    pub fn validate(&self) -> Result<(), SampleConfigError> {
        for (field, value) in [("cfg_scale", self.cfg_scale), ("temperature", self.temperature)] {
            if !value.is_finite() || value < 0.0 {
                return Err(SampleConfigError::NotFinite { field, value });
            }
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(SampleConfigError::TopP(self.top_p));
        }
        if self.cfg_scale > MAX_CFG_SCALE {
            return Err(SampleConfigError::CfgTooLarge(self.cfg_scale));
        }
        Ok(())
    }

    /// Whether guidance doubles the batch.
    pub fn guided(&self) -> bool {
        self.cfg_scale > 1.0
    }

    /// Whether decode step `index` uses guidance.
    pub fn guided_at(&self, index: usize) -> bool {
        self.guided() && self.cfg_interval.is_none_or(|k| index < k)
    }
}
