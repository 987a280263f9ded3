//! A small Fashion-MNIST classifier (Burn CNN) that scores generated samples: the fraction
//! classified as the class they were generated for, and its penultimate features for the
//! Fréchet distance and precision/recall (FD-FMNIST, [`crate::metrics`]).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::relu;
use par_data::ImageSet;
use par_train::Monitor;

use par_train::TrainError;
use par_train::plan::BatchPlan;

/// Width of [`Classifier::penultimate`].
pub const FEATURES: usize = 96;

static EMBEDDED: &[u8] = include_bytes!("../../../data/classifier/fashion_cnn.safetensors");

/// conv 3×3 (1→32) → BatchNorm → ReLU → max-pool 2 → conv 3×3 (32→64) → BatchNorm → ReLU →
/// max-pool 2 → linear (64·8·8 → 96) → ReLU → dropout 0.2 → linear (96 → 10), on 32×32
/// grayscale images in `[−1, 1]` (the tokenizer's input convention). 413 k parameters.
#[derive(Module, Debug)]
pub struct Classifier {
    conv1: Conv2d,
    norm1: BatchNorm,
    conv2: Conv2d,
    norm2: BatchNorm,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
}

impl Classifier {
    /// A randomly initialised classifier for `classes` classes.
    pub fn new(classes: usize, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            conv1: conv(1, 32),
            norm1: BatchNormConfig::new(32).init(device),
            conv2: conv(32, 64),
            norm2: BatchNormConfig::new(64).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            fc1: LinearConfig::new(64 * 8 * 8, 96).init(device),
            fc2: LinearConfig::new(96, classes).init(device),
            dropout: DropoutConfig::new(0.2).init(),
        }
    }

    /// Class logits.
    ///
    /// # Shapes
    ///
    /// - images: `[batch, 1, 32, 32]`; output `[batch, classes]`
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.fc2.forward(self.dropout.forward(self.penultimate(images)))
    }

    /// The penultimate layer (after `fc1` and its ReLU): the features FD-FMNIST and
    /// precision/recall are computed in, 96 per image.
    ///
    /// # Shapes
    ///
    /// - images: `[batch, 1, 32, 32]`; output `[batch, 96]`
    pub fn penultimate(&self, images: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.norm1.forward(self.conv1.forward(images))));
        let x = self.pool.forward(relu(self.norm2.forward(self.conv2.forward(x))));
        let [b, c, h, w] = x.dims();
        relu(self.fc1.forward(x.reshape([b, c * h * w])))
    }

    /// Penultimate features of every image of `set` (no dropout), `[len, 96]` row-major.
    ///
    /// # Panics
    ///
    /// If the set's images are not 32×32 gray (the callers convert them first).
    pub fn features(&self, set: &ImageSet, device: &Device) -> Vec<f32> {
        assert!(set.size == 32 && set.channels == 1, "the classifier reads 32×32 gray images");
        let model = self.valid();
        let all: Vec<usize> = (0..set.len()).collect();
        let mut out = Vec::with_capacity(set.len() * FEATURES);
        for chunk in all.chunks(256) {
            let f = model.penultimate(images(set, chunk, device));
            out.extend(f.into_data().try_into_vec_as::<f32>().expect("f32 features"));
        }
        out
    }

    /// The classifier trained once on the full Fashion-MNIST training set (91.3 % test accuracy,
    /// `data/classifier/`), compiled into the binary so every command has it.
    ///
    /// # Panics
    ///
    /// Never for the embedded file (tested).
    pub fn embedded(device: &Device) -> Self {
        let state = par_store::StateDict::from_safetensors_bytes(EMBEDDED, "embedded classifier")
            .expect("the embedded classifier weights read");
        par_train::module_state::restore(Classifier::new(10, device), &state)
            .expect("the embedded classifier matches its architecture")
    }

    /// Predicted class of each image (no dropout).
    pub fn predict(&self, set: &ImageSet, device: &Device) -> Vec<u32> {
        let model = self.valid();
        let mut out = Vec::with_capacity(set.len());
        let all: Vec<usize> = (0..set.len()).collect();
        for chunk in all.chunks(256) {
            let x = images(set, chunk, device);
            let ids =
                model.forward(x).argmax(1).into_data().try_into_vec_as::<i64>().expect("int ids");
            out.extend(ids.into_iter().map(|v| v as u32));
        }
        out
    }

    /// Fraction of `set` classified as its label.
    pub fn accuracy(&self, set: &ImageSet, device: &Device) -> f64 {
        let p = self.predict(set, device);
        p.iter().zip(&set.labels).filter(|(a, b)| a == b).count() as f64 / set.len().max(1) as f64
    }
}

fn images(set: &ImageSet, indices: &[usize], device: &Device) -> Tensor<4> {
    let s = set.size;
    let data = set.batch_chw(indices, &vec![false; indices.len()]);
    Tensor::from_data(TensorData::new(data, [indices.len(), set.channels, s, s]), device)
}

/// Trains the classifier: Adam (lr 2e-3, cosine decay to 0), batches of 64, random horizontal
/// flips, `epochs` passes over `train`, seeded.
///
/// # Errors
///
/// [`TrainError::Setting`] for no epochs or fewer than 64 images; [`TrainError::NonFinite`] at
/// the first non-finite loss (nothing is returned from a diverged run).
pub fn train_classifier(
    train: &ImageSet,
    epochs: usize,
    seed: u64,
    device: &Device,
    monitor: &dyn Monitor,
) -> Result<Classifier, TrainError> {
    train_classifier_with(train, epochs, 2e-3, seed, device, monitor)
}

/// [`train_classifier`] with another peak learning rate.
///
/// # Errors
///
/// As [`train_classifier`], and [`TrainError::Setting`] for a learning rate that is not
/// positive and finite.
pub fn train_classifier_with(
    train: &ImageSet,
    epochs: usize,
    lr: f64,
    seed: u64,
    device: &Device,
    monitor: &dyn Monitor,
) -> Result<Classifier, TrainError> {
    let batch = 64;
    if epochs == 0 || train.len() < batch {
        return Err(TrainError::Setting {
            field: "epochs",
            reason: format!(
                "and the images must give at least one step of {batch} (epochs {epochs}, {} images)",
                train.len()
            ),
        });
    }
    if !(lr.is_finite() && lr > 0.0) {
        return Err(TrainError::Setting {
            field: "lr",
            reason: format!("must be finite and > 0, got {lr}"),
        });
    }
    let ad = device.clone().autodiff();
    ad.seed(seed);
    let classes = train.labels.iter().max().map_or(1, |&m| m as usize + 1);
    let mut model = Classifier::new(classes, &ad);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let plan = BatchPlan::new(train.len(), batch, seed);
    let steps = epochs.saturating_mul(train.len()) / batch;
    monitor.start(0, steps);
    let loss_fn = burn::nn::loss::CrossEntropyLossConfig::new().init(&ad);
    for step in 0..steps {
        if monitor.should_stop(step) {
            return Err(TrainError::StoppedUnsaved { step });
        }
        let (idx, flips) = plan.batch(step, true);
        let s = train.size;
        let x = Tensor::<4>::from_data(
            TensorData::new(train.batch_chw(&idx, &flips), [idx.len(), 1, s, s]),
            &ad,
        );
        let y: Vec<i64> = idx.iter().map(|&i| train.labels[i] as i64).collect();
        let y = Tensor::<1, Int>::from_data(TensorData::new(y, [idx.len()]), &ad);
        let loss = loss_fn.forward(model.forward(x), y);
        let value = loss.clone().into_scalar::<f64>();
        if !value.is_finite() {
            return Err(TrainError::NonFinite {
                step: step + 1,
                quantity: "loss".into(),
                value,
                last_checkpoint: None,
            });
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let lr = par_train::par::WarmupCosine { base_lr: lr, warmup_steps: 0, total_steps: steps }
            .lr(step);
        model = optim.step(lr, model, grads);
        monitor.update(step + 1, "");
    }
    let model = model.valid();
    // The last update can overflow without a later loss to show it.
    par_train::checkpoint::finite_weights(
        &par_train::module_state::snapshot(&model)?,
        steps,
        None,
    )?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use par_data::PixelImage;

    fn images(n: usize) -> ImageSet {
        let ims: Vec<PixelImage> = (0..n)
            .map(|i| PixelImage {
                width: 32,
                height: 32,
                channels: 1,
                data: (0..1024).map(|p| ((p * 7 + i * 13) % 256) as u8).collect(),
            })
            .collect();
        ImageSet::from_images(&ims, (0..n as u32).map(|i| i % 10).collect())
    }

    #[test]
    fn a_diverging_classifier_is_an_error_not_a_model() {
        let device = Device::flex();
        let hidden = par_train::Silent;
        let err = train_classifier_with(&images(128), 2, 1e30, 0, &device, &hidden).unwrap_err();
        assert!(matches!(err, TrainError::NonFinite { .. }), "{err:?}");
        assert!(matches!(
            train_classifier_with(&images(128), 1, f64::NAN, 0, &device, &hidden),
            Err(TrainError::Setting { field: "lr", .. })
        ));
        assert!(matches!(
            train_classifier(&images(10), 1, 0, &device, &hidden),
            Err(TrainError::Setting { .. })
        ));
        train_classifier_with(&images(128), 1, 2e-3, 0, &device, &hidden).unwrap();
    }
}
