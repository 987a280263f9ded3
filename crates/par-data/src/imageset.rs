//! [`ImageSet`]: a labelled set of equally sized 8-bit images held in memory.

use crate::{IdxImages, PixelImage};

/// Equally sized images (`PixelImage` layout, image-major) and their class labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// Side length in pixels (images are square).
    pub size: usize,
    /// 1 or 3.
    pub channels: usize,
    /// `len · size · size · channels` bytes.
    pub pixels: Vec<u8>,
    /// One class id per image.
    pub labels: Vec<u32>,
}

impl ImageSet {
    /// Collects square images of one size.
    ///
    /// # Panics
    ///
    /// If the images differ in size or channels, are not square, or the label count differs.
    pub fn from_images(images: &[PixelImage], labels: Vec<u32>) -> Self {
        assert_eq!(images.len(), labels.len(), "one label per image");
        let (size, channels) = images.first().map_or((0, 1), |i| (i.width, i.channels));
        let mut pixels = Vec::with_capacity(images.len() * size * size * channels);
        for im in images {
            assert!(
                im.width == size && im.height == size && im.channels == channels,
                "uniform square images"
            );
            pixels.extend_from_slice(&im.data);
        }
        Self { size, channels, pixels, labels }
    }

    /// The IDX images brought to `size × size` by the ADM centre crop (28 → 32 for
    /// Fashion-MNIST: a bicubic up-scale, as the reference pipeline does for small images).
    pub fn from_idx(idx: &IdxImages, size: usize) -> Self {
        let images: Vec<PixelImage> =
            (0..idx.len()).map(|i| crate::adm_center_crop(&idx.image(i), size)).collect();
        Self::from_images(&images, idx.labels.iter().map(|&l| l as u32).collect())
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`.
    ///
    /// # Panics
    ///
    /// If `i ≥ len()`.
    pub fn image(&self, i: usize) -> PixelImage {
        let n = self.size * self.size * self.channels;
        PixelImage {
            width: self.size,
            height: self.size,
            channels: self.channels,
            data: self.pixels[i * n..(i + 1) * n].to_vec(),
        }
    }

    /// Images `indices` as `[len, channels, size, size]` floats in `[−1, 1]`, each mirrored
    /// horizontally where `flips` says so.
    ///
    /// # Panics
    ///
    /// If an index is out of range or `flips` is shorter than `indices`.
    pub fn batch_chw(&self, indices: &[usize], flips: &[bool]) -> Vec<f32> {
        let mut out = Vec::with_capacity(indices.len() * self.channels * self.size * self.size);
        for (k, &i) in indices.iter().enumerate() {
            let im = self.image(i);
            let im = if flips[k] { im.flip_horizontal() } else { im };
            out.extend(im.to_chw_signed());
        }
        out
    }

    /// The first `count` images (all if fewer).
    pub fn take(&self, count: usize) -> Self {
        let count = count.min(self.len());
        let n = self.size * self.size * self.channels;
        Self {
            size: self.size,
            channels: self.channels,
            pixels: self.pixels[..count * n].to_vec(),
            labels: self.labels[..count].to_vec(),
        }
    }

    /// All but the first `count` images (none if fewer): with [`ImageSet::take`], a split of one
    /// set into two disjoint ones.
    pub fn skip(&self, count: usize) -> Self {
        let count = count.min(self.len());
        let n = self.size * self.size * self.channels;
        Self {
            size: self.size,
            channels: self.channels,
            pixels: self.pixels[count * n..].to_vec(),
            labels: self.labels[count..].to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_and_skip_split_a_set_into_disjoint_parts() {
        let images: Vec<PixelImage> = (0..5u8)
            .map(|i| PixelImage { width: 2, height: 2, channels: 1, data: vec![i; 4] })
            .collect();
        let set = ImageSet::from_images(&images, (10..15).collect());
        let (head, tail) = (set.take(2), set.skip(2));
        assert_eq!((head.labels.clone(), tail.labels.clone()), (vec![10, 11], vec![12, 13, 14]));
        assert_eq!(tail.image(0).data, vec![2; 4]);
        assert_eq!([head.pixels, tail.pixels].concat(), set.pixels);
        assert!(set.skip(9).is_empty());
    }
}
