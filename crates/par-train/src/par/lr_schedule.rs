//! The learning-rate schedule of the paper's Table 5: linear warm-up, then cosine decay to 0,
//! as a value ([`WarmupCosine`]) and as burn-train's [`LrScheduler`] ([`WarmupCosineScheduler`],
//! the one the `Learner` steps before every optimizer update).
//!
//! This is the one place to change the optimizer schedule; the per-model peak rates and batch
//! sizes of Table 5 are [`super::ParTrainConfig::table5`].

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use serde::{Deserialize, Serialize};

/// `lr(s)` for update `s = 0, 1, …`: `base · (s + 1) / W` during the `W` warm-up steps, then
/// `base · ½ (1 + cos(π (s − W) / (T − W)))` until `T`, and 0 from `T` on. docs/spec.md §5.3
/// (paper: 15 warm-up epochs of 300, cosine to 0; the public code's constant rate is a known
/// deviation we do not follow).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WarmupCosine {
    /// Peak learning rate.
    pub base_lr: f64,
    /// Warm-up steps `W`.
    pub warmup_steps: usize,
    /// Total steps `T`.
    pub total_steps: usize,
}

impl WarmupCosine {
    /// The rate of update `step`.
    pub fn lr(&self, step: usize) -> f64 {
        let (w, t) = (self.warmup_steps, self.total_steps.max(1));
        if step >= t {
            0.0
        } else if step < w {
            self.base_lr * (step + 1) as f64 / w as f64
        } else {
            let progress = (step - w) as f64 / (t - w).max(1) as f64;
            self.base_lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

/// [`WarmupCosine`] as burn-train's [`LrScheduler`]: the `k`-th call of `step` (from 0) returns
/// `lr(k)`. The record holds the number of calls made, so a resumed `Learner` continues the
/// schedule where the checkpoint left it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WarmupCosineScheduler {
    /// The schedule.
    pub schedule: WarmupCosine,
    /// Updates made so far (the next `step` returns `schedule.lr(steps)`).
    pub steps: usize,
}

const STEPS_KEY: &str = "steps";

impl LrScheduler for WarmupCosineScheduler {
    fn step(&mut self) -> LearningRate {
        let lr = self.schedule.lr(self.steps);
        self.steps += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar(STEPS_KEY, self.steps as u64)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(steps) = record.scalar::<u64>(STEPS_KEY) {
            self.steps = steps as usize;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table5_schedule_values() {
        // PAR-L: 1e-4, 300 epochs of 5004 steps, 15 warm-up epochs.
        let s = WarmupCosine { base_lr: 1e-4, warmup_steps: 15 * 5004, total_steps: 300 * 5004 };
        assert!((s.lr(0) - 1e-4 / 75_060.0).abs() < 1e-15, "step 0");
        assert_eq!(s.lr(15 * 5004 - 1), 1e-4, "end of warm-up");
        assert_eq!(s.lr(15 * 5004), 1e-4, "first cosine step");
        let half = 15 * 5004 + (285 * 5004) / 2;
        assert!((s.lr(half) - 0.5e-4).abs() < 1e-12, "half-way through the decay: {}", s.lr(half));
        assert!(s.lr(300 * 5004 - 1) < 1e-12 && s.lr(300 * 5004 - 1) > 0.0, "last step");
        assert_eq!(s.lr(300 * 5004), 0.0, "the end");
        let mut prev = f64::INFINITY;
        for step in (15 * 5004..300 * 5004).step_by(997) {
            assert!(s.lr(step) <= prev);
            prev = s.lr(step);
        }
    }

    #[test]
    fn scheduler_steps_through_the_schedule_and_resumes_from_its_record() {
        let schedule = WarmupCosine { base_lr: 1e-3, warmup_steps: 3, total_steps: 10 };
        let mut a = WarmupCosineScheduler { schedule, steps: 0 };
        let first: Vec<f64> = (0..10).map(|_| a.step()).collect();
        assert_eq!(first, (0..10).map(|k| schedule.lr(k)).collect::<Vec<_>>());
        let mut b = WarmupCosineScheduler { schedule, steps: 0 };
        b.step();
        let mut c = WarmupCosineScheduler { schedule, steps: 0 };
        c.load_record(b.to_record());
        assert_eq!((c.steps, c.step()), (1, schedule.lr(1)));
    }
}
