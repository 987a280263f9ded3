//! Distances between two sets of feature vectors: the Fréchet distance of their Gaussian fits
//! (the FID formula, here in the Fashion-MNIST classifier's features) and the k-NN precision and
//! recall of Kynkäänniemi et al. (2019).

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, Par, Side};
use rayon::prelude::*;

use crate::EvalError;

/// Mean and covariance (unbiased, `n − 1`) of `n` row-major `dim`-vectors, in f64.
fn gaussian_fit(features: &[f32], dim: usize) -> Result<(Vec<f64>, Mat<f64>), EvalError> {
    if dim == 0 || !features.len().is_multiple_of(dim) {
        return Err(EvalError::Invalid(format!(
            "{} values are not rows of {dim} features",
            features.len()
        )));
    }
    check_finite(features, "the")?;
    let n = features.len() / dim;
    if n < 2 {
        return Err(EvalError::Invalid(format!("{n} feature vector(s): at least 2 are needed")));
    }
    let mut mean = vec![0.0f64; dim];
    for row in features.chunks(dim) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let centred = Mat::<f64>::from_fn(n, dim, |r, c| features[r * dim + c] as f64 - mean[c]);
    let mut cov = Mat::<f64>::zeros(dim, dim);
    matmul(
        cov.as_mut(),
        Accum::Replace,
        centred.transpose(),
        centred.as_ref(),
        1.0 / (n - 1) as f64,
        Par::rayon(0),
    );
    Ok((mean, cov))
}

/// `√A` of a symmetric positive semi-definite matrix through its eigendecomposition (negative
/// eigenvalues from rounding are taken as 0).
fn sqrt_psd(a: &Mat<f64>) -> Result<Mat<f64>, EvalError> {
    let evd = a
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| EvalError::Invalid(format!("eigendecomposition failed: {e:?}")))?;
    let (u, s) = (evd.U(), evd.S());
    let d = a.nrows();
    let root: Vec<f64> = (0..d).map(|i| s[i].max(0.0).sqrt()).collect();
    let scaled = Mat::<f64>::from_fn(d, d, |r, c| u[(r, c)] * root[c]);
    let mut out = Mat::<f64>::zeros(d, d);
    matmul(out.as_mut(), Accum::Replace, scaled.as_ref(), u.transpose(), 1.0, Par::Seq);
    Ok(out)
}

/// The Fréchet distance between the Gaussian fits of two feature sets,
/// `‖μ₁ − μ₂‖² + tr(Σ₁) + tr(Σ₂) − 2·tr((Σ₁^½ Σ₂ Σ₁^½)^½)` (the FID formula; the trace of
/// `(Σ₁Σ₂)^½` through the symmetric form, so no complex square root is needed).
///
/// # Shapes
///
/// `a`: `[n_a, dim]`, `b`: `[n_b, dim]`, row-major f32; the result is a squared distance in the
/// features' units (≥ 0).
///
/// # Errors
///
/// [`EvalError::Invalid`] for fewer than 2 vectors, ragged rows or non-finite features (which
/// would otherwise score as a perfect 0).
pub fn frechet_distance(a: &[f32], b: &[f32], dim: usize) -> Result<f64, EvalError> {
    let (mu_a, cov_a) = gaussian_fit(a, dim)?;
    let (mu_b, cov_b) = gaussian_fit(b, dim)?;
    let root_a = sqrt_psd(&cov_a)?;
    let mut tmp = Mat::<f64>::zeros(dim, dim);
    matmul(tmp.as_mut(), Accum::Replace, root_a.as_ref(), cov_b.as_ref(), 1.0, Par::Seq);
    let mut product = Mat::<f64>::zeros(dim, dim);
    matmul(product.as_mut(), Accum::Replace, tmp.as_ref(), root_a.as_ref(), 1.0, Par::Seq);
    let product = Mat::<f64>::from_fn(dim, dim, |r, c| 0.5 * (product[(r, c)] + product[(c, r)]));
    let eig = product
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| EvalError::Invalid(format!("eigenvalues failed: {e:?}")))?;
    let trace_sqrt: f64 = eig.iter().map(|&l| l.max(0.0).sqrt()).sum();
    let mean_term: f64 = mu_a.iter().zip(&mu_b).map(|(x, y)| (x - y).powi(2)).sum();
    let trace = |m: &Mat<f64>| (0..dim).map(|i| m[(i, i)]).sum::<f64>();
    Ok((mean_term + trace(&cov_a) + trace(&cov_b) - 2.0 * trace_sqrt).max(0.0))
}

/// Squared distance between two feature rows.
fn squared_distance(x: &[f32], y: &[f32]) -> f32 {
    x.iter().zip(y).map(|(p, q)| (p - q) * (p - q)).sum()
}

/// The squared distance of every row of `set` to its `k`-th nearest other row (the radius of its
/// k-NN ball, Kynkäänniemi et al.). One row of distances at a time per thread, so memory stays
/// `O(n)` whatever the set size (50,000 images: no 10 GB distance table).
fn knn_radii(set: &[f32], dim: usize, k: usize) -> Vec<f32> {
    set.par_chunks(dim)
        .map_init(Vec::new, |d, x| {
            d.clear();
            d.extend(set.chunks(dim).map(|y| squared_distance(x, y)));
            // d[i] = 0 for the point itself: the k-th nearest other point is at index k.
            d.select_nth_unstable_by(k, f32::total_cmp);
            d[k]
        })
        .collect()
}

/// Fraction of the rows of `points` inside at least one ball (`centres`, squared `radii`).
fn covered(points: &[f32], centres: &[f32], radii: &[f32], dim: usize) -> f64 {
    let inside = points
        .par_chunks(dim)
        .filter(|x| centres.chunks(dim).zip(radii).any(|(c, &r)| squared_distance(x, c) <= r))
        .count();
    inside as f64 / (points.len() / dim) as f64
}

/// The first non-finite value of a feature set, as an error naming the set.
fn check_finite(set: &[f32], name: &str) -> Result<(), EvalError> {
    match set.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(EvalError::Invalid(format!(
            "{name} features hold {} at value {i}: a non-finite input",
            set[i]
        ))),
        None => Ok(()),
    }
}

/// Precision and recall of generated features against real ones (Kynkäänniemi et al. 2019): the
/// real manifold is the union of balls around every real vector reaching its `k`-th nearest real
/// neighbour; precision is the fraction of generated vectors inside it, recall the fraction of
/// real vectors inside the generated manifold built the same way. Returns
/// `(precision, recall)`, fractions in `[0, 1]`.
///
/// # Shapes
///
/// `real`: `[n_real, dim]`, `generated`: `[n_generated, dim]`, row-major f32. Time
/// `O((n_real + n_generated)² · dim)`, memory `O(n_real + n_generated)`.
///
/// # Errors
///
/// [`EvalError::Invalid`] if either set has at most `k` vectors, rows are ragged or a feature is
/// not finite.
pub fn precision_recall(
    real: &[f32],
    generated: &[f32],
    dim: usize,
    k: usize,
) -> Result<(f64, f64), EvalError> {
    if dim == 0 || !real.len().is_multiple_of(dim) || !generated.len().is_multiple_of(dim) {
        return Err(EvalError::Invalid("feature rows of different widths".into()));
    }
    let (nr, ng) = (real.len() / dim, generated.len() / dim);
    if nr <= k || ng <= k {
        return Err(EvalError::Invalid(format!(
            "precision/recall with k = {k} needs more than {k} real and generated images (got {nr} and {ng})"
        )));
    }
    check_finite(real, "real")?;
    check_finite(generated, "generated")?;
    let (real_radii, gen_radii) = (knn_radii(real, dim, k), knn_radii(generated, dim, k));
    Ok((covered(generated, real, &real_radii, dim), covered(real, generated, &gen_radii, dim)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic N(0, 1) draws (Box–Muller on a 64-bit LCG).
    fn normals(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let mut uniform = move || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        (0..n)
            .map(|_| {
                (-2.0 * uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform()).cos()
            })
            .collect()
    }

    #[test]
    fn non_finite_features_are_errors_not_perfect_scores() {
        let mut a: Vec<f32> = normals(300, 3).iter().map(|&v| v as f32).collect();
        let b = a.clone();
        a[7] = f32::NAN;
        assert!(frechet_distance(&a, &b, 3).is_err(), "NaN would otherwise give FD 0");
        assert!(precision_recall(&b, &a, 3, 3).is_err());
    }

    #[test]
    fn identical_sets_are_at_distance_zero() {
        let a: Vec<f32> = normals(3000, 1).iter().map(|&v| v as f32).collect();
        let d = frechet_distance(&a, &a, 3).unwrap();
        assert!(d.abs() < 1e-9, "{d}");
    }

    #[test]
    fn two_gaussians_at_the_analytic_distance() {
        // The Fréchet distance of the two *fitted* Gaussians, whatever the samples: compare the
        // function against the closed form evaluated on the same fitted moments. Diagonal
        // covariances: FD = ‖μ₁ − μ₂‖² + Σᵢ (σ₁ᵢ − σ₂ᵢ)².
        let dim = 4;
        let z = normals(4000 * dim * 2, 7);
        let (s1, s2) = ([1.0, 2.0, 0.5, 3.0], [2.0, 1.0, 1.5, 0.2]);
        let (m1, m2) = ([0.0, 1.0, -2.0, 0.5], [3.0, 1.0, 0.0, -1.0]);
        // Decorrelate exactly: whiten the samples' own covariance so the fitted covariances are
        // exactly diagonal with the chosen standard deviations.
        let make = |offset: usize, s: [f64; 4], m: [f64; 4]| -> Vec<f32> {
            let n = 4000;
            let x = Mat::<f64>::from_fn(n, dim, |r, c| z[offset + r * dim + c]);
            let mean: Vec<f64> =
                (0..dim).map(|c| (0..n).map(|r| x[(r, c)]).sum::<f64>() / n as f64).collect();
            let xc = Mat::<f64>::from_fn(n, dim, |r, c| x[(r, c)] - mean[c]);
            let mut cov = Mat::<f64>::zeros(dim, dim);
            matmul(
                cov.as_mut(),
                Accum::Replace,
                xc.transpose(),
                xc.as_ref(),
                1.0 / (n - 1) as f64,
                Par::Seq,
            );
            let llt = cov.llt(Side::Lower).unwrap();
            let l = llt.L();
            // rows of xc · L⁻ᵀ have identity covariance.
            let mut white = xc.transpose().to_owned();
            faer::linalg::triangular_solve::solve_lower_triangular_in_place(
                l,
                white.as_mut(),
                Par::Seq,
            );
            (0..n)
                .flat_map(|r| (0..dim).map(move |c| (r, c)))
                .map(|(r, c)| (white[(c, r)] * s[c] + m[c]) as f32)
                .collect()
        };
        let (a, b) = (make(0, s1, m1), make(4000 * dim, s2, m2));
        let expected: f64 = m1.iter().zip(&m2).map(|(x, y)| (x - y).powi(2)).sum::<f64>()
            + s1.iter().zip(&s2).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
        let got = frechet_distance(&a, &b, dim).unwrap();
        assert!((got - expected).abs() < 1e-6 * expected, "{got} vs {expected}");
    }

    #[test]
    fn precision_and_recall_of_constructed_sets() {
        // Real: a 10×10 lattice with unit spacing. k = 3: every real ball has radius² 1 (the
        // third-nearest lattice neighbour is at distance 1 for interior and edge points, √2 for
        // corners).
        let real: Vec<f32> = (0..100).flat_map(|i| [(i % 10) as f32, (i / 10) as f32]).collect();
        // Generated: 10 points on the lattice (inside) and 10 far away (outside).
        let mut generated: Vec<f32> = (0..10).flat_map(|i| [i as f32, 0.0]).collect();
        generated.extend((0..10).flat_map(|i| [100.0 + i as f32, 100.0]));
        let (p, r) = precision_recall(&real, &generated, 2, 3).unwrap();
        assert!((p - 0.5).abs() < 1e-12, "precision {p}");
        // The generated manifold: along row 0 the 3rd-nearest other generated point is 2 away
        // (radius² 4) except at the row's ends (3 away, radius² 9). It covers rows y = 0…2 (30
        // real points) and (0, 3), (9, 3) from the ends: 32 of 100. The far cluster covers none.
        assert!((r - 0.32).abs() < 1e-12, "recall {r}");
        assert!(precision_recall(&real, &generated[..6], 2, 3).is_err(), "needs > k points");
    }
}
