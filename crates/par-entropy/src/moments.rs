//! [`Moments`]: the covariance of every position's vector, and the linear-regression entropies
//! that follow from it.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par, Side};

use crate::{EntropyError, gaussian_constant};

/// Settings of the linear estimator.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EntropyOptions {
    /// Ridge of the least-squares fit, relative: `λ = ridge · mean variance` of the conditioning
    /// vectors (0 = plain least squares).
    pub ridge: f64,
    /// Added to the diagonal of the residual covariance before its log-determinant (0 = none;
    /// a singular covariance is then an error).
    pub jitter: f64,
}

impl Default for EntropyOptions {
    fn default() -> Self {
        Self { ridge: 1e-4, jitter: 0.0 }
    }
}

impl EntropyOptions {
    /// Checks the ranges.
    ///
    /// # Errors
    ///
    /// [`EntropyError::Invalid`] naming the field.
    pub fn validate(&self) -> Result<(), EntropyError> {
        for (field, value) in [("ridge", self.ridge), ("jitter", self.jitter)] {
            if !(value.is_finite() && value >= 0.0) {
                return Err(EntropyError::Invalid(format!(
                    "entropy setting `{field}` must be finite and ≥ 0, got {value}"
                )));
            }
        }
        Ok(())
    }
}

/// Mean and covariance of the vectors at every position, from `samples` observations.
///
/// The data are `[samples, positions · dim]` row-major: sample `s` holds the `dim`-dimensional
/// vector of position `i` at columns `i·dim … (i+1)·dim`. The covariance is the unbiased sample
/// covariance (divided by `samples − 1`), accumulated in f64.
#[derive(Debug, Clone)]
pub struct Moments {
    positions: usize,
    dim: usize,
    samples: usize,
    mean: Vec<f64>,
    cov: Mat<f64>,
}

impl Moments {
    /// Computes the moments of `data` (see the type docs), in chunks of rows.
    ///
    /// # Errors
    ///
    /// [`EntropyError::Invalid`] if `data` is not `[samples, positions·dim]` or holds a
    /// non-finite value; [`EntropyError::TooFewSamples`] for fewer than 2 samples.
    pub fn from_samples(data: &[f32], positions: usize, dim: usize) -> Result<Self, EntropyError> {
        let width = positions * dim;
        if width == 0 || !data.len().is_multiple_of(width) {
            return Err(EntropyError::Invalid(format!(
                "{} values do not make rows of {positions} positions × {dim}",
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(EntropyError::Invalid(format!("sample value {i} is {}", data[i])));
        }
        let samples = data.len() / width;
        if samples < 2 {
            return Err(EntropyError::TooFewSamples { samples, dim: width });
        }
        let mut mean = vec![0.0f64; width];
        for row in data.chunks(width) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mean.iter_mut().for_each(|m| *m /= samples as f64);
        let mut cov = Mat::<f64>::zeros(width, width);
        const CHUNK: usize = 2048;
        for rows in data.chunks(CHUNK * width) {
            let n = rows.len() / width;
            let centred =
                Mat::<f64>::from_fn(n, width, |r, c| rows[r * width + c] as f64 - mean[c]);
            matmul(
                cov.as_mut(),
                Accum::Add,
                centred.transpose(),
                centred.as_ref(),
                1.0 / (samples - 1) as f64,
                Par::rayon(0),
            );
        }
        Ok(Self { positions, dim, samples, mean, cov })
    }

    /// Positions (blocks of `dim` columns).
    pub fn positions(&self) -> usize {
        self.positions
    }

    /// Vector dimension `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Samples the moments come from.
    pub fn samples(&self) -> usize {
        self.samples
    }

    /// The mean of every column, `[positions · dim]`.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The covariance, `[positions · dim, positions · dim]`.
    pub fn covariance(&self) -> MatRef<'_, f64> {
        self.cov.as_ref()
    }

    fn check_position(&self, i: usize) -> Result<(), EntropyError> {
        if i < self.positions {
            Ok(())
        } else {
            Err(EntropyError::Invalid(format!(
                "position {i} outside the {} positions",
                self.positions
            )))
        }
    }

    /// `Ĥ(v_target | v_given)` in nats: the Gaussian entropy of the residuals of a ridge
    /// least-squares fit (with intercept) of the target's vector on the given positions' vectors,
    /// in-sample. With `β = (C_SS + λI)⁻¹ C_St`, the residual covariance is
    /// `Σ = C_tt − C_tS β − λ βᵀβ` (which is `C_tt − C_tS C_SS⁻¹ C_St` for `λ = 0`); with no
    /// given positions it is `C_tt`, the marginal entropy.
    ///
    /// # Errors
    ///
    /// [`EntropyError::Invalid`] for positions outside the grid, a target among the given
    /// positions or repeated positions; [`EntropyError::TooFewSamples`] when the fit has as many
    /// regressors as samples; [`EntropyError::SingularConditioning`] /
    /// [`EntropyError::Singular`] for singular covariances.
    pub fn conditional_entropy(
        &self,
        target: usize,
        given: &[usize],
        options: &EntropyOptions,
    ) -> Result<f64, EntropyError> {
        options.validate()?;
        self.check_position(target)?;
        let d = self.dim;
        let mut seen = vec![false; self.positions];
        seen[target] = true;
        for &j in given {
            self.check_position(j)?;
            if std::mem::replace(&mut seen[j], true) {
                return Err(EntropyError::Invalid(format!(
                    "position {j} is the target or given twice"
                )));
            }
        }
        let p = given.len() * d;
        if p + 1 >= self.samples {
            return Err(EntropyError::TooFewSamples { samples: self.samples, dim: p + 1 });
        }
        let t0 = target * d;
        let idx: Vec<usize> = given.iter().flat_map(|&j| j * d..(j + 1) * d).collect();
        let c = self.cov.as_ref();
        let mut sigma = Mat::<f64>::from_fn(d, d, |a, b| c[(t0 + a, t0 + b)]);
        if p > 0 {
            let mut a = Mat::<f64>::from_fn(p, p, |r, s| c[(idx[r], idx[s])]);
            let lambda = options.ridge * (0..p).map(|r| a[(r, r)]).sum::<f64>() / p as f64;
            for r in 0..p {
                a[(r, r)] += lambda;
            }
            let c_st = Mat::<f64>::from_fn(p, d, |r, b| c[(idx[r], t0 + b)]);
            let llt = a
                .llt(Side::Lower)
                .map_err(|_| EntropyError::SingularConditioning { target, given: given.len() })?;
            let beta = faer::linalg::solvers::Solve::solve(&llt, c_st.as_ref()); // [p, d]
            matmul(sigma.as_mut(), Accum::Add, c_st.transpose(), beta.as_ref(), -1.0, Par::Seq);
            if lambda > 0.0 {
                matmul(
                    sigma.as_mut(),
                    Accum::Add,
                    beta.transpose(),
                    beta.as_ref(),
                    -lambda,
                    Par::Seq,
                );
            }
        }
        // A residual variance below 1e-10 of the target's own is rounding noise of a zero.
        let floor = 1e-10 * (0..d).map(|a| c[(t0 + a, t0 + a)]).sum::<f64>() / d as f64;
        gaussian_entropy(sigma.as_ref(), options.jitter, floor).ok_or(EntropyError::Singular {
            target,
            given: given.len(),
            dim: d,
        })
    }
}

/// `½ · log((2πe)^d · |Σ + jitter·I|)` in nats through a Cholesky factor; `None` if the matrix
/// is not positive definite or a pivot (a conditional variance) is at most `floor`.
pub fn gaussian_entropy(sigma: MatRef<'_, f64>, jitter: f64, floor: f64) -> Option<f64> {
    let d = sigma.nrows();
    // Symmetrise (products are symmetric only up to rounding), then add the jitter.
    let m = Mat::<f64>::from_fn(d, d, |a, b| {
        0.5 * (sigma[(a, b)] + sigma[(b, a)]) + if a == b { jitter } else { 0.0 }
    });
    let llt = m.llt(Side::Lower).ok()?;
    let l = llt.L();
    if (0..d).any(|i| l[(i, i)] * l[(i, i)] <= floor) {
        return None;
    }
    let log_det: f64 = (0..d).map(|i| 2.0 * l[(i, i)].ln()).sum();
    log_det.is_finite().then(|| gaussian_constant(d) + 0.5 * log_det)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_dimensional_gaussian_of_known_variance() {
        // ±2 with equal weight: variance 4·n/(n−1); entropy ½ log(2πe σ²).
        let data: Vec<f32> = (0..1000).map(|i| if i % 2 == 0 { 2.0 } else { -2.0 }).collect();
        let m = Moments::from_samples(&data, 1, 1).unwrap();
        let var = 4.0 * 1000.0 / 999.0;
        let expected = 0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E * var).ln();
        let got = m.conditional_entropy(0, &[], &EntropyOptions::default()).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn bad_queries_are_errors() {
        let data: Vec<f32> = (0..40).map(|i| (i * 7 % 5) as f32).collect();
        let m = Moments::from_samples(&data, 2, 2).unwrap(); // 10 samples
        let o = EntropyOptions::default();
        assert!(matches!(m.conditional_entropy(2, &[], &o), Err(EntropyError::Invalid(_))));
        assert!(matches!(m.conditional_entropy(0, &[0], &o), Err(EntropyError::Invalid(_))));
        assert!(matches!(m.conditional_entropy(0, &[1, 1], &o), Err(EntropyError::Invalid(_))));
        let bad = EntropyOptions { ridge: f64::NAN, ..o };
        assert!(matches!(m.conditional_entropy(0, &[], &bad), Err(EntropyError::Invalid(_))));
        assert!(matches!(Moments::from_samples(&[1.0, 2.0], 1, 1).map(|_| ()), Ok(())));
        assert!(matches!(
            Moments::from_samples(&[1.0], 1, 1),
            Err(EntropyError::TooFewSamples { .. })
        ));
        assert!(matches!(
            Moments::from_samples(&[1.0, f32::NAN], 1, 1),
            Err(EntropyError::Invalid(_))
        ));
    }
}
