//! The non-linear estimator: `f_θ` a small MLP trained with Burn (Algorithm 1's option), the
//! residual covariance taken on held-out samples so the fit cannot shrink it by memorising.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use faer::Mat;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::moments::gaussian_entropy;
use crate::{EntropyError, EntropyOptions};

/// Settings of the MLP estimator.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MlpOptions {
    /// Hidden width of the two hidden layers.
    pub hidden: usize,
    /// Passes over the training samples.
    pub epochs: usize,
    /// Samples per Adam step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Fraction of the samples held out for the residuals.
    pub held_out: f64,
    /// Seed of the initial weights, the split and the batch order.
    pub seed: u64,
}

impl Default for MlpOptions {
    fn default() -> Self {
        Self { hidden: 256, epochs: 20, batch_size: 256, lr: 1e-3, held_out: 0.2, seed: 0 }
    }
}

#[derive(Module, Debug)]
struct Mlp {
    l1: Linear,
    l2: Linear,
    l3: Linear,
    act: Relu,
}

impl Mlp {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let x = self.act.forward(self.l1.forward(x));
        let x = self.act.forward(self.l2.forward(x));
        self.l3.forward(x)
    }
}

/// `Ĥ(v_target | v_given)` with an MLP regressor: trained on `1 − held_out` of the samples
/// (Adam, MSE), residual covariance on the held-out rest. `data` is `[samples, positions·dim]`
/// as for [`crate::Moments::from_samples`]; `device` is a Burn device (autodiff is turned on
/// here).
///
/// # Errors
///
/// [`EntropyError::Invalid`] for bad positions, data or settings;
/// [`EntropyError::TooFewSamples`] if either split is too small; [`EntropyError::Singular`] for a
/// singular residual covariance (without jitter).
#[allow(clippy::too_many_arguments)] // the estimator's settings, each documented above
pub fn conditional_entropy(
    data: &[f32],
    positions: usize,
    dim: usize,
    target: usize,
    given: &[usize],
    options: &EntropyOptions,
    mlp: &MlpOptions,
    device: &Device,
) -> Result<f64, EntropyError> {
    options.validate()?;
    let width = positions * dim;
    if width == 0 || !data.len().is_multiple_of(width) {
        return Err(EntropyError::Invalid(format!(
            "{} values do not make rows of {positions} positions × {dim}",
            data.len()
        )));
    }
    if target >= positions || given.iter().any(|&j| j >= positions || j == target) {
        return Err(EntropyError::Invalid(format!(
            "target {target} and given positions must be distinct positions below {positions}"
        )));
    }
    if !(0.0..1.0).contains(&mlp.held_out)
        || mlp.hidden == 0
        || mlp.epochs == 0
        || mlp.batch_size == 0
    {
        return Err(EntropyError::Invalid(
            "MLP settings: held_out in [0, 1), hidden, epochs and batch_size ≥ 1".into(),
        ));
    }
    if !(mlp.lr.is_finite() && mlp.lr > 0.0) {
        return Err(EntropyError::Invalid(format!(
            "MLP learning rate must be > 0, got {}",
            mlp.lr
        )));
    }
    let samples = data.len() / width;
    let held = ((samples as f64 * mlp.held_out).round() as usize).max(dim + 1);
    if held + 2 > samples {
        return Err(EntropyError::TooFewSamples { samples, dim: held + 2 });
    }
    let p = given.len() * dim;
    let row = |s: usize, j: usize| &data[s * width + j * dim..s * width + (j + 1) * dim];
    let features = |s: usize| -> Vec<f32> {
        if p == 0 { vec![0.0] } else { given.iter().flat_map(|&j| row(s, j).to_vec()).collect() }
    };
    let in_dim = p.max(1);
    // A seeded shuffle: the last `held` samples of it are held out.
    let mut rng = ChaCha8Rng::seed_from_u64(mlp.seed);
    let mut order: Vec<usize> = (0..samples).collect();
    order.shuffle(&mut rng);
    let (train, test) = order.split_at(samples - held);
    let ad = device.clone().autodiff();
    ad.seed(mlp.seed);
    let layer = |i, o| LinearConfig::new(i, o).init(&ad);
    let mut model = Mlp {
        l1: layer(in_dim, mlp.hidden),
        l2: layer(mlp.hidden, mlp.hidden),
        l3: layer(mlp.hidden, dim),
        act: Relu::new(),
    };
    let mut optim = AdamConfig::new().init();
    let batch = |ids: &[usize], dev: &Device| {
        let x: Vec<f32> = ids.iter().flat_map(|&s| features(s)).collect();
        let y: Vec<f32> = ids.iter().flat_map(|&s| row(s, target).to_vec()).collect();
        (
            Tensor::<2>::from_data(TensorData::new(x, [ids.len(), in_dim]), dev),
            Tensor::<2>::from_data(TensorData::new(y, [ids.len(), dim]), dev),
        )
    };
    for epoch in 0..mlp.epochs {
        let mut ids = train.to_vec();
        ids.shuffle(&mut ChaCha8Rng::seed_from_u64(mlp.seed ^ (epoch as u64 + 1)));
        for chunk in ids.chunks(mlp.batch_size) {
            let (x, y) = batch(chunk, &ad);
            let loss = (model.forward(x) - y).square().mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(mlp.lr, model, grads);
        }
    }
    // Residuals on the held-out samples, and their covariance.
    let model = model.valid();
    let (x, y) = batch(test, device);
    let residual = (y - model.forward(x))
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| EntropyError::Invalid(format!("reading residuals: {e:?}")))?;
    let n = test.len();
    let mean: Vec<f64> = (0..dim)
        .map(|a| (0..n).map(|s| residual[s * dim + a] as f64).sum::<f64>() / n as f64)
        .collect();
    let sigma = Mat::<f64>::from_fn(dim, dim, |a, b| {
        (0..n)
            .map(|s| {
                (residual[s * dim + a] as f64 - mean[a]) * (residual[s * dim + b] as f64 - mean[b])
            })
            .sum::<f64>()
            / (n - 1) as f64
    });
    let variance =
        test.iter().flat_map(|&s| row(s, target).iter().map(|&v| (v as f64).powi(2))).sum::<f64>()
            / (n * dim) as f64;
    gaussian_entropy(sigma.as_ref(), options.jitter, 1e-10 * variance)
        .ok_or(EntropyError::Singular { target, given: given.len(), dim })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Moments;
    use crate::synthetic::Normal;

    #[test]
    fn mlp_captures_a_nonlinear_dependence_the_linear_fit_misses() {
        // y = x² (per channel) + small noise, x ~ N(0, 1): linear regression cannot use x (the
        // correlation is 0), an MLP can.
        let (d, m) = (2, 4000);
        let mut normal = Normal::new(2);
        let mut data = Vec::with_capacity(m * 2 * d);
        for _ in 0..m {
            let x: Vec<f64> = (0..d).map(|_| normal.sample()).collect();
            data.extend(x.iter().map(|&v| v as f32));
            data.extend(x.iter().map(|&v| (v * v + 0.05 * normal.sample()) as f32));
        }
        let o = EntropyOptions::default();
        let linear =
            Moments::from_samples(&data, 2, d).unwrap().conditional_entropy(1, &[0], &o).unwrap();
        let opts = MlpOptions { epochs: 30, hidden: 64, ..MlpOptions::default() };
        let mlp = conditional_entropy(&data, 2, d, 1, &[0], &o, &opts, &Device::flex()).unwrap();
        assert!(mlp < linear - 1.0, "MLP {mlp} vs linear {linear}");
    }
}
