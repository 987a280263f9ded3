//! The sampling flags `par generate` and `par sample` share (one definition, one help text).

use par_sample::SampleConfig;

/// Classifier-free guidance and the token filters of `par_sample::SampleConfig`.
#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// Classifier-free guidance scale (≤ 1: off).
    #[arg(long, default_value_t = 1.5)]
    pub cfg_scale: f32,
    /// Guidance only on the first K decode steps (the prefill is step 0), counting every step.
    /// Upstream's `--cfg-interval u` counts the steps of the sequential phase but the tokens of
    /// the parallel phase, restarting at 0: for u ≥ n − 2 it equals K = n + ⌊u/n⌋ + 1 here; for
    /// u < n − 2 upstream guides a non-contiguous set of steps, which has no equivalent.
    #[arg(long)]
    pub cfg_interval: Option<usize>,
    /// Softmax temperature.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Top-k filter (0 = off).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Top-p filter (1 = off).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// Argmax instead of sampling.
    #[arg(long)]
    pub greedy: bool,
}

impl SamplingArgs {
    /// The sampler's settings with the draws seeded by `seed` (not validated).
    pub fn config(&self, seed: u64) -> SampleConfig {
        SampleConfig {
            cfg_scale: self.cfg_scale,
            cfg_interval: self.cfg_interval,
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            greedy: self.greedy,
            seed,
        }
    }
}
