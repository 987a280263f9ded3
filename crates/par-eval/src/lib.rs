//! Quality of generated image sets on Fashion-MNIST (`par eval`, the demo, the ablation):
//!
//! - [`classifier`]: the Fashion-MNIST CNN (embedded weights), its class predictions and its
//!   96-d penultimate features;
//! - [`metrics`]: the Fréchet distance of Gaussian fits in those features — **FD-FMNIST**, the
//!   FID formula in a Fashion-MNIST classifier's features, *not* Inception FID — and the k-NN
//!   precision/recall of Kynkäänniemi et al. (2019, k = 3);
//! - [`images`]: image sets from a folder of PNGs (as `par sample` writes them, class in the name),
//!   an ADM `.npz` or IDX files;
//! - [`evaluate`]: all of it against a reference set, as one [`Report`].
#![warn(missing_docs)]

pub mod classifier;
pub mod images;
pub mod metrics;

use burn::prelude::Device;
use par_data::ImageSet;

pub use classifier::Classifier;

/// Why an evaluation could not be made.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An image set that cannot be read (names the file or folder).
    #[error(transparent)]
    Data(#[from] par_data::DataError),
    /// Sizes or counts that do not allow the measurement.
    #[error("{0}")]
    Invalid(String),
    /// The classifier's features of finite images are not finite: its weights overflow.
    #[error(
        "the classifier's features of the {set} hold {value} (feature value {index}); the images are finite 8-bit pixels, so the classifier's weights overflow or are damaged"
    )]
    Classifier {
        /// `images` or `reference`.
        set: &'static str,
        /// The first non-finite value.
        value: f32,
        /// Its index in the feature set.
        index: usize,
    },
}

/// The quality of one image set against a reference set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Fréchet distance in the classifier's penultimate features (FD-FMNIST).
    pub fd_fmnist: f64,
    /// Fraction (in `[0, 1]`) of generated images inside the reference manifold (k = 3).
    pub precision: f64,
    /// Fraction (in `[0, 1]`) of reference images inside the generated manifold (k = 3).
    pub recall: f64,
    /// Fraction of images the classifier assigns the class they carry; `None` when they carry
    /// none.
    pub class_accuracy: Option<f64>,
    /// Images evaluated.
    pub images: usize,
    /// Reference images.
    pub reference_images: usize,
}

/// Neighbours of the precision/recall manifolds (Kynkäänniemi et al. use k = 3).
pub const K_NEAREST: usize = 3;

/// The fewest images a set may have for [`evaluate`] (`k + 1` for the k-NN balls).
pub const MIN_IMAGES: usize = K_NEAREST + 1;

/// Evaluates `images` (32×32 gray, labels when `labelled`) against `reference` with
/// `classifier`.
///
/// # Errors
///
/// [`EvalError::Invalid`] for images that are not 32×32 gray (convert them with
/// [`images::load`]'s preparation first), or sets too small for the statistics (at least
/// [`MIN_IMAGES`] images each).
pub fn evaluate(
    classifier: &Classifier,
    images: &ImageSet,
    labelled: bool,
    reference: &ImageSet,
    device: &Device,
) -> Result<Report, EvalError> {
    for (set, name) in [(images, "images"), (reference, "reference")] {
        if set.size != 32 || set.channels != 1 {
            return Err(EvalError::Invalid(format!(
                "the {name} are {0}×{0} with {1} channel(s); the classifier reads 32×32 gray",
                set.size, set.channels
            )));
        }
        if set.len() < MIN_IMAGES {
            return Err(EvalError::Invalid(format!(
                "{} {name}: at least {MIN_IMAGES} are needed (precision/recall with k = {K_NEAREST})",
                set.len()
            )));
        }
    }
    let (a, b) = (classifier.features(images, device), classifier.features(reference, device));
    for (features, set) in [(&a, "images"), (&b, "reference")] {
        if let Some(index) = features.iter().position(|v| !v.is_finite()) {
            return Err(EvalError::Classifier { set, value: features[index], index });
        }
    }
    let dim = classifier::FEATURES;
    let fd_fmnist = metrics::frechet_distance(&a, &b, dim)?;
    let (precision, recall) = metrics::precision_recall(&b, &a, dim, K_NEAREST)?;
    let class_accuracy = labelled.then(|| classifier.accuracy(images, device));
    Ok(Report {
        fd_fmnist,
        precision,
        recall,
        class_accuracy,
        images: images.len(),
        reference_images: reference.len(),
    })
}
