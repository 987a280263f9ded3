//! The conditional entropy of visual tokens (PAR supplement D, Algorithm 1; docs/entropy.md).
//!
//! PAR's ordering rests on a measurement: tokens far apart in the code grid depend on each other
//! weakly, so generating them together loses little, while adjacent tokens depend strongly. Each
//! token is represented by its (l2-normalised) codebook vector `v ∈ ℝ^d`. For a target position
//! `k` and a set `S` of conditioning positions, Algorithm 1 fits a regressor `f_θ` predicting
//! `v_k` from `(v_j)_{j ∈ S}`, takes the residuals `r = v_k − f_θ(v_S)` and their covariance
//! `Σ` (`d × d`), and reports the Gaussian entropy of the residuals
//!
//! ```text
//! Ĥ(v_k | v_S) = ½ · log((2πe)^d · |Σ|)          (nats; log-determinant through a Cholesky factor)
//! ```
//!
//! - [`Moments`]: the mean and covariance of every position's vector, computed once from the
//!   samples; a ridge-regularised linear least-squares fit and its residual covariance then follow
//!   from sub-blocks of the covariance ([`Moments::conditional_entropy`]), so a whole map costs a
//!   few small solves per entry.
//! - [`mlp`]: the optional non-linear `f_θ`, a small MLP trained with Burn (residuals on held-out
//!   samples).
//! - [`maps`]: Fig. 11 (`H(v_i | v_j)` over all `i` for a reference `j`) and Fig. 12 (the entropy
//!   increase from sequential to parallel generation for an ordering's decode groups).
//! - [`synthetic`]: Gaussian data with a known covariance, the self-check (`par entropy
//!   --synthetic-gaussian`).
//!
//! Linear algebra is faer's (Cholesky, matrix products).
#![warn(missing_docs)]

pub mod maps;
pub mod mlp;
mod moments;
pub mod synthetic;

pub use moments::{EntropyOptions, Moments, gaussian_entropy};

/// `d·log(2πe)/2`, the part of a `d`-dimensional Gaussian entropy that does not depend on `Σ`.
pub fn gaussian_constant(d: usize) -> f64 {
    0.5 * d as f64 * (2.0 * std::f64::consts::PI * std::f64::consts::E).ln()
}

/// Why an entropy could not be estimated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EntropyError {
    /// The residual covariance is not positive definite: the target is (numerically) determined
    /// by the conditioning positions, or the codebook vectors span fewer than `d` dimensions.
    #[error(
        "the residual covariance of position {target} given {given} position(s) is singular (the target is determined by them, or the vectors span fewer than {dim} dimensions); pass a jitter (e.g. 1e-6) to add to its diagonal"
    )]
    Singular {
        /// The target position.
        target: usize,
        /// How many positions it was conditioned on.
        given: usize,
        /// The vector dimension `d`.
        dim: usize,
    },
    /// The conditioning covariance cannot be inverted (raise the ridge).
    #[error(
        "the covariance of the {given} conditioning position(s) of position {target} is singular; raise the ridge"
    )]
    SingularConditioning {
        /// The target position.
        target: usize,
        /// How many positions it was conditioned on.
        given: usize,
    },
    /// Fewer samples than needed for a covariance (at least 2, and more than the regressors).
    #[error("{samples} sample(s) cannot estimate a {dim}-dimensional covariance")]
    TooFewSamples {
        /// Samples given.
        samples: usize,
        /// Dimension asked for.
        dim: usize,
    },
    /// Data of the wrong size, a position outside the grid, or a setting out of range.
    #[error("{0}")]
    Invalid(String),
}
