//! Image sets to evaluate: a folder of PNGs (as `par sample` writes them: the class in the file
//! name, `…_classNNNN_…`), an ADM `.npz` (`arr_0`, no classes), or an IDX image file (labels from
//! the sibling `labels-idx1` file when present). Every image becomes 32×32 gray, the
//! classifier's input (ADM centre crop, as for training data; Pillow's luma for RGB).

use std::path::Path;

use par_data::{DataError, IdxImages, ImageSet, PixelImage, adm_center_crop};

use crate::EvalError;

/// Side of the classifier's input.
pub const SIDE: usize = 32;

fn to_gray(image: &PixelImage) -> PixelImage {
    if image.channels == 1 {
        return image.clone();
    }
    let data = image
        .data
        .chunks(image.channels)
        .map(|p| {
            ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8
        })
        .collect();
    PixelImage { width: image.width, height: image.height, channels: 1, data }
}

/// The class a `par sample` file name carries (`000123_class0007_seed0.png` → 7).
pub fn class_of(name: &str) -> Option<u32> {
    let rest = &name[name.find("_class")? + "_class".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Loads `path` as an image set of 32×32 gray images; returns it and whether it carries classes.
///
/// # Errors
///
/// [`EvalError::Data`] naming the file; [`EvalError::Invalid`] for an empty set.
pub fn load(path: &Path) -> Result<(ImageSet, bool), EvalError> {
    let prepare = |im: &PixelImage| adm_center_crop(&to_gray(im), SIDE);
    let (images, labels, labelled): (Vec<PixelImage>, Vec<u32>, bool) = if path.is_dir() {
        let mut names: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| DataError::Io { path: path.into(), source: e })?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")))
            .collect();
        names.sort();
        let mut images = Vec::with_capacity(names.len());
        let mut classes = Vec::with_capacity(names.len());
        for p in &names {
            images.push(prepare(&par_data::load_image(p, 1)?));
            classes.push(p.file_name().and_then(|n| class_of(&n.to_string_lossy())));
        }
        let labelled = !classes.is_empty() && classes.iter().all(Option::is_some);
        (images, classes.into_iter().map(|c| c.unwrap_or(0)).collect(), labelled)
    } else if path.extension().is_some_and(|x| x.eq_ignore_ascii_case("npz")) {
        let images: Vec<PixelImage> =
            par_data::npz::read_images(path)?.iter().map(prepare).collect();
        let n = images.len();
        (images, vec![0; n], false)
    } else {
        let (idx, labelled) = IdxImages::open_file(path)?;
        let images: Vec<PixelImage> = (0..idx.len()).map(|i| prepare(&idx.image(i))).collect();
        (images, idx.labels.iter().map(|&l| l as u32).collect(), labelled)
    };
    if images.is_empty() {
        return Err(EvalError::Invalid(format!("{}: no images", path.display())));
    }
    Ok((ImageSet::from_images(&images, labels), labelled))
}

static TEST_IMAGES: &[u8] = include_bytes!("../../../data/fashion-mnist/t10k-images-idx3-ubyte.gz");
static TEST_LABELS: &[u8] = include_bytes!("../../../data/fashion-mnist/t10k-labels-idx1-ubyte.gz");

/// The embedded Fashion-MNIST test subset (`data/fashion-mnist`, 2,000 images, MIT), 32×32, with
/// labels: the default reference set of `par eval`.
///
/// # Panics
///
/// Never for the embedded files (tested).
pub fn fashion_mnist_test() -> ImageSet {
    let idx = IdxImages::from_bytes(TEST_IMAGES, TEST_LABELS, "embedded Fashion-MNIST test set")
        .expect("the embedded Fashion-MNIST test set parses");
    ImageSet::from_idx(&idx, SIDE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_reference_and_classifier_load() {
        let set = fashion_mnist_test();
        assert_eq!((set.len(), set.size, set.channels), (2000, 32, 1));
        let device = burn::prelude::Device::flex();
        let c = crate::Classifier::embedded(&device);
        assert!(c.accuracy(&set.take(400), &device) > 0.85);
    }

    #[test]
    fn class_from_a_sample_file_name() {
        assert_eq!(class_of("000123_class0007_seed0.png"), Some(7));
        assert_eq!(class_of("image.png"), None);
    }
}
