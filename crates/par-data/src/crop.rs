//! The reference augmentation (docs/spec.md §5.1): ADM centre crop, ten-crop, centre + flip.

use crate::PixelImage;
use crate::resample::{Filter, resize};

/// Python's `round` (ties to even), as the reference's size and offset computations use it.
fn py_round(x: f64) -> usize {
    x.round_ties_even().max(0.0) as usize
}

/// `int(image_size · crop_range)`: the side of the ADM centre crop before ten-crop
/// (384 · 1.1 → 422). With `crop_range = 1` it is `image_size`.
pub fn crop_size(image_size: usize, crop_range: f64) -> usize {
    (image_size as f64 * crop_range) as usize
}

/// ADM's `center_crop_arr(image, size)`: while the short side is at least `2·size`, halve both
/// sides (floor) with a BOX filter; then resize with BICUBIC so the short side is `size` (sides
/// `round(side · size / short)`, ties to even); then cut the centre `size × size` window at
/// offset `(side − size) // 2`. Images smaller than `size` are up-scaled by the same rule.
///
/// # Panics
///
/// If `size` is 0 or the image is empty.
pub fn adm_center_crop(image: &PixelImage, size: usize) -> PixelImage {
    assert!(size > 0 && image.width > 0 && image.height > 0, "non-empty image and crop");
    let mut image = std::borrow::Cow::Borrowed(image);
    while image.width.min(image.height) >= 2 * size {
        image =
            std::borrow::Cow::Owned(resize(&image, image.width / 2, image.height / 2, Filter::Box));
    }
    let scale = size as f64 / image.width.min(image.height) as f64;
    let (w, h) = (py_round(image.width as f64 * scale), py_round(image.height as f64 * scale));
    let image = resize(&image, w.max(size), h.max(size), Filter::Bicubic);
    image.crop((image.width - size) / 2, (image.height - size) / 2, size, size)
}

/// Offsets `(left, top)` of torchvision's `five_crop(size)` on a `side × side` image, in its
/// order: top-left, top-right, bottom-left, bottom-right, centre (centre offset
/// `round((side − size) / 2)`, ties to even). For 422 → 384: 0, 38 and 19.
pub fn five_crop_offsets(side: usize, size: usize) -> [(usize, usize); 5] {
    let far = side - size;
    let c = py_round(far as f64 / 2.0);
    [(0, 0), (far, 0), (0, far), (far, far), (c, c)]
}

/// torchvision's `TenCrop(size)` of a square image: the five crops of the image, then the five
/// crops of its horizontal mirror.
///
/// # Panics
///
/// If the image is not square or smaller than `size`.
pub fn ten_crop(image: &PixelImage, size: usize) -> Vec<PixelImage> {
    assert!(image.width == image.height && image.width >= size, "square image ≥ crop");
    let offsets = five_crop_offsets(image.width, size);
    let flipped = image.flip_horizontal();
    [image, &flipped]
        .into_iter()
        .flat_map(|im| offsets.iter().map(move |&(l, t)| im.crop(l, t, size, size)))
        .collect()
}

/// Which views of each image are encoded (LlamaGen `extract_codes_c2i.py`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Augmentation {
    /// `--ten-crop --crop-range r`: ADM centre crop to `int(size·r)`, then [`ten_crop`]: 10 views.
    TenCrop {
        /// The crop range `r` (1.1 in the paper's runs).
        crop_range: f64,
    },
    /// ADM centre crop to `size` and its horizontal mirror: 2 views.
    CenterFlip,
}

use serde::{Deserialize, Serialize};

impl Augmentation {
    /// Views per image (10 or 2).
    pub fn views(self) -> usize {
        match self {
            Augmentation::TenCrop { .. } => 10,
            Augmentation::CenterFlip => 2,
        }
    }
}

/// The views of one image, each `image_size × image_size`, in the reference's order.
pub fn augment(
    image: &PixelImage,
    image_size: usize,
    augmentation: Augmentation,
) -> Vec<PixelImage> {
    match augmentation {
        Augmentation::TenCrop { crop_range } => {
            let side = crop_size(image_size, crop_range).max(image_size);
            ten_crop(&adm_center_crop(image, side), image_size)
        }
        Augmentation::CenterFlip => {
            let centre = adm_center_crop(image, image_size);
            let flipped = centre.flip_horizontal();
            vec![centre, flipped]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: usize, h: usize) -> PixelImage {
        let data = (0..w * h).flat_map(|i| [(i % w) as u8, (i / w) as u8, 7]).collect();
        PixelImage { width: w, height: h, channels: 3, data }
    }

    #[test]
    fn ten_crop_geometry_of_the_paper_runs() {
        // docs/spec.md §5.1: 384 with crop range 1.1 → 422 source, offsets 0 / 19 / 38.
        assert_eq!(crop_size(384, 1.1), 422);
        assert_eq!(five_crop_offsets(422, 384), [(0, 0), (38, 0), (0, 38), (38, 38), (19, 19)]);
        let source = adm_center_crop(&gradient(500, 450), 422);
        assert_eq!((source.width, source.height), (422, 422));
        let crops = ten_crop(&source, 384);
        assert_eq!(crops.len(), 10);
        for (i, (l, t)) in five_crop_offsets(422, 384).into_iter().enumerate() {
            assert_eq!(crops[i], source.crop(l, t, 384, 384));
            assert_eq!(crops[5 + i], source.flip_horizontal().crop(l, t, 384, 384));
        }
        // The mirrored top-left crop is the mirror of the original top-right crop.
        assert_eq!(crops[5], crops[1].flip_horizontal());
    }

    #[test]
    fn small_images_are_upscaled_and_large_ones_halved_first() {
        let up = adm_center_crop(&gradient(28, 20), 32);
        assert_eq!((up.width, up.height), (32, 32));
        // 1000×900 ≥ 2·384: one BOX halving to 500×450, then bicubic to 427×384 (round(500·384/450)).
        let down = adm_center_crop(&gradient(1000, 900), 384);
        assert_eq!((down.width, down.height), (384, 384));
        assert_eq!(augment(&gradient(40, 40), 32, Augmentation::CenterFlip).len(), 2);
        assert_eq!(
            augment(&gradient(40, 40), 32, Augmentation::TenCrop { crop_range: 1.1 }).len(),
            10
        );
    }

    #[test]
    fn python_rounding_ties_to_even() {
        assert_eq!(py_round(2.5), 2);
        assert_eq!(py_round(3.5), 4);
        assert_eq!(five_crop_offsets(37, 32)[4], (2, 2));
    }
}
