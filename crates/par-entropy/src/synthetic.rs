//! Gaussian data with a known covariance: the estimator's self-check.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{EntropyError, EntropyOptions, Moments};

/// Standard normal draws (Box–Muller on the seeded ChaCha8 stream: the same seed gives the same
/// numbers on every platform).
pub struct Normal(ChaCha8Rng);

impl Normal {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(seed))
    }

    /// One N(0, 1) draw.
    pub fn sample(&mut self) -> f64 {
        let u1: f64 = 1.0 - self.0.random::<f64>(); // (0, 1]
        let u2: f64 = self.0.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// A random covariance `A·Aᵀ/dim + ½·I` (`A` standard normal): full rank, with correlations.
pub fn random_covariance(dim: usize, normal: &mut Normal) -> Mat<f64> {
    let a = Mat::<f64>::from_fn(dim, dim, |_, _| normal.sample());
    let mut c = Mat::<f64>::identity(dim, dim) * 0.5;
    matmul(c.as_mut(), Accum::Add, a.as_ref(), a.transpose(), 1.0 / dim as f64, Par::Seq);
    c
}

/// `samples` draws of `N(0, cov)` as a row-major `[samples, dim]` f32 array (through the Cholesky
/// factor of `cov`).
///
/// # Errors
///
/// [`EntropyError::Invalid`] if `cov` is not positive definite.
pub fn draw(cov: &Mat<f64>, samples: usize, normal: &mut Normal) -> Result<Vec<f32>, EntropyError> {
    let dim = cov.nrows();
    let llt = cov
        .llt(faer::Side::Lower)
        .map_err(|_| EntropyError::Invalid("covariance is not positive definite".into()))?;
    let l = llt.L();
    let mut out = Vec::with_capacity(samples * dim);
    let mut z = vec![0.0f64; dim];
    for _ in 0..samples {
        z.iter_mut().for_each(|v| *v = normal.sample());
        for r in 0..dim {
            out.push((0..=r).map(|c| l[(r, c)] * z[c]).sum::<f64>() as f32);
        }
    }
    Ok(out)
}

/// `½·log((2πe)^d·|Σ|)` through faer's determinant (an LU factorisation), independent of the
/// Cholesky path the estimator takes.
pub fn analytic_entropy(cov: &Mat<f64>) -> f64 {
    crate::gaussian_constant(cov.nrows()) + 0.5 * cov.as_ref().determinant().ln()
}

/// The self-check's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SelfCheck {
    /// Estimated entropy (nats).
    pub estimated: f64,
    /// `½·log((2πe)^d·|Σ|)` of the covariance the data were drawn from (nats).
    pub analytic: f64,
    /// `|estimated − analytic| / |analytic|`.
    pub relative_error: f64,
    /// Dimension.
    pub dim: usize,
    /// Samples.
    pub samples: usize,
    /// Seed.
    pub seed: u64,
}

/// Draws `samples` vectors of `N(0, Σ)` with a random `Σ` (seeded), estimates their entropy as
/// one position with no conditioning, and compares with the analytic value.
///
/// # Errors
///
/// [`EntropyError`] from the estimator (e.g. fewer than 2 samples).
pub fn gaussian_self_check(
    dim: usize,
    samples: usize,
    seed: u64,
    options: &EntropyOptions,
) -> Result<SelfCheck, EntropyError> {
    if dim == 0 {
        return Err(EntropyError::Invalid("dimension must be at least 1".into()));
    }
    // n samples, centred on their mean, span at most n − 1 dimensions: with n ≤ dim the sample
    // covariance is singular, known before anything is drawn (a jitter makes it invertible).
    if samples < 2 || (samples <= dim && options.jitter == 0.0) {
        return Err(EntropyError::TooFewSamples { samples, dim });
    }
    let mut normal = Normal::new(seed);
    let cov = random_covariance(dim, &mut normal);
    let data = draw(&cov, samples, &mut normal)?;
    let estimated = Moments::from_samples(&data, 1, dim)?.conditional_entropy(0, &[], options)?;
    let analytic = analytic_entropy(&cov);
    Ok(SelfCheck {
        estimated,
        analytic,
        relative_error: (estimated - analytic).abs() / analytic.abs(),
        dim,
        samples,
        seed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_few_samples_are_refused_before_anything_is_drawn() {
        let o = EntropyOptions::default();
        // 10 samples in 100,000 dimensions: refused at once (drawing would need 80 GB).
        assert!(matches!(
            gaussian_self_check(100_000, 10, 0, &o),
            Err(EntropyError::TooFewSamples { samples: 10, dim: 100_000 })
        ));
        assert!(gaussian_self_check(8, 8, 0, &o).is_err());
        assert!(gaussian_self_check(8, 9, 0, &o).is_ok());
        let jitter = EntropyOptions { jitter: 1e-3, ..o };
        assert!(gaussian_self_check(8, 4, 0, &jitter).is_ok());
    }

    #[test]
    fn estimate_within_one_percent_of_the_analytic_entropy() {
        let r = gaussian_self_check(8, 10_000, 0, &EntropyOptions::default()).unwrap();
        assert!(r.relative_error < 0.01, "{r:?}");
        // The check can fail: the entropy of a wrong covariance (here, twice the true one) is
        // far outside the 1 % band.
        let mut normal = Normal::new(0);
        let cov = random_covariance(8, &mut normal);
        let doubled = analytic_entropy(&(&cov * 2.0));
        assert!((doubled - r.analytic).abs() / r.analytic > 0.1);
    }

    #[test]
    fn same_seed_same_output() {
        let o = EntropyOptions::default();
        assert_eq!(gaussian_self_check(4, 500, 7, &o), gaussian_self_check(4, 500, 7, &o));
        assert_ne!(
            gaussian_self_check(4, 500, 7, &o).unwrap().estimated,
            gaussian_self_check(4, 500, 8, &o).unwrap().estimated
        );
    }

    #[test]
    fn residual_entropy_of_a_linear_dependence_is_the_noise_entropy() {
        // y = B·x + e with x ~ N(0, I), e ~ N(0, Σ_e): H(y | x) = H(e).
        let (d, m) = (8, 20_000);
        let mut normal = Normal::new(3);
        let b = Mat::<f64>::from_fn(d, d, |_, _| normal.sample());
        let noise_cov = random_covariance(d, &mut normal) * 0.1;
        let noise = draw(&noise_cov, m, &mut normal).unwrap();
        let mut data = Vec::with_capacity(m * 2 * d);
        for s in 0..m {
            let x: Vec<f64> = (0..d).map(|_| normal.sample()).collect();
            data.extend(x.iter().map(|&v| v as f32));
            for r in 0..d {
                let y = (0..d).map(|c| b[(r, c)] * x[c]).sum::<f64>() + noise[s * d + r] as f64;
                data.push(y as f32);
            }
        }
        let moments = Moments::from_samples(&data, 2, d).unwrap();
        let o = EntropyOptions { ridge: 0.0, jitter: 0.0 };
        let got = moments.conditional_entropy(1, &[0], &o).unwrap();
        let expected = analytic_entropy(&noise_cov);
        assert!((got - expected).abs() < 0.01 * expected.abs(), "{got} vs {expected}");
        // Unconditioned, y keeps B·x's variance: a much larger entropy.
        let marginal = moments.conditional_entropy(1, &[], &o).unwrap();
        assert!(marginal - got > 5.0, "{marginal} vs {got}");
    }

    #[test]
    fn a_singular_covariance_is_an_error_unless_jittered() {
        // Position 1 copies position 0: given it, nothing is left.
        let mut normal = Normal::new(1);
        let data: Vec<f32> = (0..400)
            .flat_map(|_| {
                let v = [normal.sample() as f32, normal.sample() as f32];
                [v[0], v[1], v[0], v[1]]
            })
            .collect();
        let m = Moments::from_samples(&data, 2, 2).unwrap();
        let plain = EntropyOptions { ridge: 0.0, jitter: 0.0 };
        assert!(
            matches!(
                m.conditional_entropy(1, &[0], &plain),
                Err(EntropyError::Singular { target: 1, given: 1, dim: 2 })
                    | Err(EntropyError::SingularConditioning { .. })
            ),
            "{:?}",
            m.conditional_entropy(1, &[0], &plain)
        );
        let jittered = EntropyOptions { ridge: 0.0, jitter: 1e-6 };
        let h = m.conditional_entropy(1, &[0], &jittered).unwrap();
        assert!(h < -10.0, "a near-deterministic target has a very negative entropy: {h}");
    }
}
