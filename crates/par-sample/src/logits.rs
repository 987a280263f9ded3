//! Host-side logit processing: guidance, temperature, top-k / top-p, seeded draws.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::SampleConfig;

/// Classifier-free guidance on raw logits: `u + s·(c − u)` (spec §3.3).
///
/// # Panics
///
/// If the rows differ in length.
pub fn guided_logits(cond: &[f32], uncond: &[f32], scale: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(cond.len());
    guide_into(cond, uncond, scale, &mut out);
    out
}

/// [`guided_logits`] written into `out` (cleared first), for loops that reuse one buffer.
///
/// # Panics
///
/// If the rows differ in length.
pub fn guide_into(cond: &[f32], uncond: &[f32], scale: f32, out: &mut Vec<f32>) {
    assert_eq!(cond.len(), uncond.len(), "guidance needs rows of equal length");
    out.clear();
    out.extend(cond.iter().zip(uncond).map(|(&c, &u)| u + scale * (c - u)));
}

/// Top-k then top-p filtering in place, with the reference's semantics (spec §3.4): logits
/// strictly below the `k`-th largest become `−∞` (ties at the threshold are kept; `k` is clamped to
/// `1 … V`; `top_k = 0` is off); then, over the descending order of what is left (stable: equal
/// logits keep index order), every token after the first one whose cumulative softmax mass exceeds
/// `top_p` becomes `−∞` (the crossing token and the top token are always kept; `top_p ≥ 1` is off).
pub fn filter_top_k_top_p(logits: &mut [f32], top_k: usize, top_p: f32) {
    let v = logits.len();
    if v == 0 {
        return;
    }
    if top_k > 0 {
        let k = top_k.clamp(1, v);
        // The k-th largest in O(V) (a full sort of 16,384 logits per token costs ~1 ms).
        let mut scratch = logits.to_vec();
        let threshold = *scratch.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a)).1;
        for x in logits.iter_mut() {
            if *x < threshold {
                *x = f32::NEG_INFINITY;
            }
        }
    }
    if top_p < 1.0 {
        // Entries already at −∞ carry no mass and stay removed: only the others are sorted.
        let mut order: Vec<usize> = (0..v).filter(|&i| logits[i] > f32::NEG_INFINITY).collect();
        if order.is_empty() {
            return;
        }
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let max = logits[order[0]] as f64;
        let weights: Vec<f64> = order.iter().map(|&i| (logits[i] as f64 - max).exp()).collect();
        let total: f64 = weights.iter().sum();
        let mut cumulative = 0.0;
        let mut crossed = false;
        for (&i, w) in order.iter().zip(&weights) {
            if crossed {
                logits[i] = f32::NEG_INFINITY;
                continue;
            }
            cumulative += w / total;
            crossed = cumulative > top_p as f64;
        }
    }
}

/// A logit row holding NaN or ±∞ (the first such entry).
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("logit {index} is {value}")]
pub struct NonFiniteLogit {
    /// Token id of the first non-finite logit.
    pub index: usize,
    /// Its value.
    pub value: f32,
}

/// Turns logit rows into tokens with a seeded generator (ChaCha8: the same seed and stream give
/// the same draws on every platform and backend).
#[derive(Debug, Clone)]
pub struct Sampler {
    rng: ChaCha8Rng,
    temperature: f32,
    top_k: usize,
    top_p: f32,
    greedy: bool,
}

impl Sampler {
    /// A sampler with `config`'s temperature, filters, greedy flag and seed, drawing from the
    /// generator's independent stream `stream` ([`crate::generate`] gives sample `b` of a batch
    /// stream `b`, so its draws do not depend on the other samples).
    pub fn new(config: &SampleConfig, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(stream);
        Self {
            rng,
            temperature: config.temperature,
            top_k: config.top_k,
            top_p: config.top_p,
            greedy: config.greedy,
        }
    }

    /// Draws one token from a row of (guided) logits: divide by `max(temperature, 1e-5)`, filter,
    /// softmax, categorical draw (or argmax when greedy). The row is consumed as scratch space.
    /// Exactly one uniform number is drawn per call unless greedy, so the sequence of draws is the
    /// same for every backend.
    ///
    /// # Errors
    ///
    /// [`NonFiniteLogit`] if the row holds NaN or ±∞ (checked before anything is drawn): no
    /// token can be told from such a row, and argmax or the cumulative draw would silently
    /// return token 0.
    pub fn sample(&mut self, row: &mut [f32]) -> Result<usize, NonFiniteLogit> {
        check_finite(row)?;
        let uniform = self.next_uniform();
        self.pick(row, uniform, &mut Vec::new())
    }

    /// The uniform number in `[0, 1)` that the next draw uses, taken from this sampler's stream;
    /// `None` when greedy (greedy decoding draws nothing). [`Sampler::sample`] is
    /// `pick(row, next_uniform())`: a loop that takes each token's number in token order and then
    /// picks the tokens in any order, or in parallel, draws exactly the same tokens.
    pub fn next_uniform(&mut self) -> Option<f64> {
        (!self.greedy).then(|| self.rng.random::<f64>())
    }

    /// The token `uniform` selects from a row of (guided) logits: divide by
    /// `max(temperature, 1e-5)`, filter, softmax (in f64), and take the first token whose
    /// cumulative probability exceeds `uniform`; argmax when greedy (`uniform` is then ignored)
    /// or when `uniform` is `None`. `uniform` is expected in `[0, 1)` (what
    /// [`Sampler::next_uniform`] returns); it is not checked: 1 or more, or NaN, picks the last
    /// token with nonzero probability.
    /// The row is consumed as scratch space; `weights` is scratch for the softmax (any length).
    ///
    /// # Errors
    ///
    /// [`NonFiniteLogit`] if the row holds NaN or ±∞ (see [`Sampler::sample`]).
    pub fn pick(
        &self,
        row: &mut [f32],
        uniform: Option<f64>,
        weights: &mut Vec<f64>,
    ) -> Result<usize, NonFiniteLogit> {
        check_finite(row)?;
        let Some(uniform) = uniform.filter(|_| !self.greedy) else {
            return Ok(argmax(row));
        };
        let inv_t = 1.0 / self.temperature.max(1e-5);
        for x in row.iter_mut() {
            *x *= inv_t;
        }
        if self.top_k > 0 || self.top_p < 1.0 {
            filter_top_k_top_p(row, self.top_k, self.top_p);
        }
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        weights.clear();
        weights.extend(row.iter().map(|&x| (x as f64 - max).exp()));
        let total: f64 = weights.iter().sum();
        let u = uniform * total;
        let mut cumulative = 0.0;
        let mut last_nonzero = 0;
        for (i, w) in weights.iter().enumerate() {
            if *w > 0.0 {
                last_nonzero = i;
                cumulative += w;
                if u < cumulative {
                    return Ok(i);
                }
            }
        }
        Ok(last_nonzero)
    }
}

fn check_finite(row: &[f32]) -> Result<(), NonFiniteLogit> {
    match row.iter().position(|x| !x.is_finite()) {
        Some(index) => Err(NonFiniteLogit { index, value: row[index] }),
        None => Ok(()),
    }
}

fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_keeps_ties_at_the_threshold() {
        let mut row = [1.0, 3.0, 2.0, 2.0, 0.5];
        filter_top_k_top_p(&mut row, 2, 1.0);
        // 2nd largest is 2.0; both 2.0 entries stay.
        assert_eq!(row, [f32::NEG_INFINITY, 3.0, 2.0, 2.0, f32::NEG_INFINITY]);
        let mut all = [1.0, 2.0];
        filter_top_k_top_p(&mut all, 10, 1.0); // k clamped to V
        assert_eq!(all, [1.0, 2.0]);
    }

    #[test]
    fn top_p_keeps_the_crossing_token() {
        // probabilities 0.5, 0.3, 0.2 (logits = ln p).
        let ln = |p: f32| p.ln();
        let mut row = [ln(0.2), ln(0.5), ln(0.3)];
        filter_top_k_top_p(&mut row, 0, 0.6);
        // cumulative 0.5 (≤ 0.6, keep), 0.8 (crosses: kept), then removed.
        assert_eq!(row[0], f32::NEG_INFINITY);
        assert!(row[1].is_finite() && row[2].is_finite());
        let mut tiny = [ln(0.2), ln(0.5), ln(0.3)];
        filter_top_k_top_p(&mut tiny, 0, 0.1);
        // The top token always survives.
        assert_eq!(tiny.iter().filter(|x| x.is_finite()).count(), 1);
        assert!(tiny[1].is_finite());
    }

    #[test]
    fn top_p_applies_after_top_k() {
        let ln = |p: f32| p.ln();
        // top-k 2 keeps 0.4 and 0.3 → renormalised 4/7, 3/7; top-p 0.5 keeps 4/7 (crossing) only.
        let mut row = [ln(0.4), ln(0.3), ln(0.2), ln(0.1)];
        filter_top_k_top_p(&mut row, 2, 0.5);
        assert!(row[0].is_finite());
        assert!(row[1..].iter().all(|x| *x == f32::NEG_INFINITY));
    }

    #[test]
    fn guidance_formula_and_scale_one_is_conditional() {
        assert_eq!(guided_logits(&[2.0, 0.0], &[1.0, 1.0], 1.5), vec![2.5, -0.5]);
        assert_eq!(guided_logits(&[2.0, -3.0], &[7.0, 1.0], 1.0), vec![2.0, -3.0]);
    }

    #[test]
    fn temperature_is_clamped_and_tiny_temperature_is_argmax() {
        let config = SampleConfig { temperature: 0.0, ..SampleConfig::default() };
        let mut s = Sampler::new(&config, 0);
        for _ in 0..50 {
            assert_eq!(
                s.sample(&mut [0.0, 0.001, -1.0]).unwrap(),
                1,
                "T=0 → ×1e5, all mass on the max"
            );
        }
        // The clamp is 1e-5, not 0: logits 1e-6 apart at T = 0 stay a near coin flip.
        let mut seen = [false; 2];
        for _ in 0..200 {
            seen[s.sample(&mut [0.0, 1e-6]).unwrap()] = true;
        }
        assert_eq!(seen, [true, true]);
    }

    #[test]
    fn same_seed_same_draws() {
        let config = SampleConfig { seed: 7, ..SampleConfig::default() };
        let draw = || {
            let mut s = Sampler::new(&config, 0);
            (0..100)
                .map(|i| s.sample(&mut [0.0, (i % 3) as f32 * 0.1, 0.2, -0.3]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(), draw());
        let other = SampleConfig { seed: 8, ..config.clone() };
        let mut s = Sampler::new(&other, 0);
        let third: Vec<_> = (0..100)
            .map(|i| s.sample(&mut [0.0, (i % 3) as f32 * 0.1, 0.2, -0.3]).unwrap())
            .collect();
        assert_ne!(draw(), third);
    }

    #[test]
    fn draws_follow_the_distribution() {
        let config = SampleConfig { seed: 1, ..SampleConfig::default() };
        let mut s = Sampler::new(&config, 0);
        let mut counts = [0usize; 3];
        let (p0, p1) = (0.2f32, 0.5f32);
        for _ in 0..20000 {
            counts[s.sample(&mut [p0.ln(), p1.ln(), 0.3f32.ln()]).unwrap()] += 1;
        }
        let f = |c: usize| c as f64 / 20000.0;
        assert!((f(counts[0]) - 0.2).abs() < 0.015, "{counts:?}");
        assert!((f(counts[1]) - 0.5).abs() < 0.015, "{counts:?}");
        // Filtered tokens are never drawn.
        let strict = SampleConfig { top_k: 1, seed: 2, ..SampleConfig::default() };
        let mut s = Sampler::new(&strict, 0);
        assert!((0..500).all(|_| s.sample(&mut [p0.ln(), p1.ln(), 0.3f32.ln()]).unwrap() == 1));
    }

    #[test]
    fn non_finite_rows_are_refused_in_every_mode() {
        for config in [
            SampleConfig::default(),
            SampleConfig { greedy: true, ..SampleConfig::default() },
            SampleConfig { top_k: 2, ..SampleConfig::default() },
            SampleConfig { top_p: 0.5, ..SampleConfig::default() },
        ] {
            let mut s = Sampler::new(&config, 0);
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let err = s.sample(&mut [0.5, bad, 1.0]).unwrap_err();
                assert_eq!((err.index, err.value.to_bits()), (1, bad.to_bits()), "{config:?}");
            }
        }
    }

    #[test]
    fn greedy_is_argmax() {
        let config = SampleConfig { greedy: true, ..SampleConfig::default() };
        assert_eq!(Sampler::new(&config, 0).sample(&mut [0.1, 5.0, 5.0, -2.0]).unwrap(), 1);
    }
}
