//! Global gradient-norm clipping, as PyTorch's `clip_grad_norm_` (docs/spec.md §5.3: 1.0). Burn's
//! own `GradientClipping::Norm` clips each parameter tensor separately, which is not what the
//! paper or LlamaGen do.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    /// Summed on the device: one host synchronisation per step, not one per parameter.
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            let s = g.cast(burn::tensor::DType::F32).square().sum();
            self.total = Some(match self.total.take() {
                Some(t) => t + s,
                None => s,
            });
        }
    }
}

struct Scale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Scale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g * self.factor);
        }
    }
}

/// The L2 norm of all gradients of `module` together.
pub fn grad_norm<M: Module>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SquaredNorm { grads, total: None };
    module.visit(&mut v);
    v.total.map_or(0.0, |t| t.into_scalar::<f64>().sqrt())
}

/// Scales all gradients of `module` by `max_norm / (norm + 1e-6)` when their global L2 norm
/// exceeds `max_norm` (PyTorch `torch.nn.utils.clip_grad_norm_`); returns the norm before
/// clipping.
pub fn clip_grad_norm<M: Module>(module: &M, grads: &mut GradientsParams, max_norm: f64) -> f64 {
    let norm = grad_norm(module, grads);
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        module.visit(&mut Scale { grads, factor });
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;

    #[test]
    fn clips_the_global_norm_not_each_tensor() {
        let device = Device::flex().autodiff();
        let layer = LinearConfig::new(2, 1).init(&device);
        // loss = 3·(w·x + b) with x = (1, 2) → dL/dw = (3, 6), dL/db = 3 → global norm √54.
        let x = Tensor::<2>::from_floats([[1.0, 2.0]], &device);
        let loss = layer.forward(x).sum() * 3.0;
        let mut grads = GradientsParams::from_grads(loss.backward(), &layer);
        let norm = clip_grad_norm(&layer, &mut grads, 1.0);
        assert!((norm - 54f64.sqrt()).abs() < 1e-4, "{norm}");
        let after = grad_norm(&layer, &grads);
        assert!((after - 1.0).abs() < 1e-4, "{after}");
        let gw =
            grads.get::<2>(layer.weight.id).unwrap().into_data().try_into_vec_as::<f32>().unwrap();
        // Direction kept: w-gradient (3, 6) / √54.
        assert!(
            (gw[0] - 3.0 / 54f32.sqrt()).abs() < 1e-4 && (gw[1] - 6.0 / 54f32.sqrt()).abs() < 1e-4
        );
        // Below the threshold nothing changes.
        assert!((clip_grad_norm(&layer, &mut grads, 10.0) - 1.0).abs() < 1e-4);
    }
}
