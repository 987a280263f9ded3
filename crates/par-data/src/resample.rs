//! Pillow's convolution resampling (`Image.resize` with `BOX` or `BICUBIC`) on 8-bit images,
//! reproduced bit for bit: separable, horizontal pass first into an 8-bit intermediate, filter
//! support scaled by the down-scaling factor (anti-aliasing), weights normalised then rounded to
//! 22-bit fixed point, accumulation from `2^21`, clipping to `[0, 255]`
//! (Pillow `libImaging/Resample.c`). The ADM centre crop depends on these exact numbers.
//!
//! Also PyTorch's bicubic interpolation of float images ([`interpolate_bicubic`],
//! `F.interpolate(mode="bicubic", align_corners=False)`), which the reference uses to bring 384 px
//! samples to 256 px for the ADM evaluator.

use crate::PixelImage;

/// The two resampling filters the reference pipeline uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Pillow `Image.BOX`: each output pixel averages the input pixels its footprint covers.
    Box,
    /// Pillow `Image.BICUBIC`: Keys cubic with `a = −0.5`.
    Bicubic,
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Box => 0.5,
            Filter::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Box => {
                if x > -0.5 && x <= 0.5 {
                    1.0
                } else {
                    0.0
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// Per output pixel: first input index and fixed-point weights.
struct Coefficients {
    bounds: Vec<(usize, usize)>,
    weights: Vec<Vec<i32>>,
}

/// Pillow `precompute_coeffs` + `normalize_coeffs_8bpc` for a full-image box.
fn coefficients(in_size: usize, out_size: usize, filter: Filter) -> Coefficients {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ss = 1.0 / filterscale;
    let mut bounds = Vec::with_capacity(out_size);
    let mut weights = Vec::with_capacity(out_size);
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        // C's (int) cast truncates towards zero.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let count = xmax.saturating_sub(xmin);
        let raw: Vec<f64> = (0..count)
            .map(|x| filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss))
            .collect();
        let total: f64 = raw.iter().sum();
        let fixed = raw
            .iter()
            .map(|&w| {
                let w = if total != 0.0 { w / total } else { w };
                let scaled = w * (1u32 << PRECISION_BITS) as f64;
                if w < 0.0 { (-0.5 + scaled) as i32 } else { (0.5 + scaled) as i32 }
            })
            .collect();
        bounds.push((xmin, count));
        weights.push(fixed);
    }
    Coefficients { bounds, weights }
}

fn clip8(v: i64) -> u8 {
    if v >= (1i64 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

fn resample_horizontal(src: &PixelImage, width: usize, filter: Filter) -> PixelImage {
    let c = src.channels;
    let coeffs = coefficients(src.width, width, filter);
    let mut out = PixelImage::new(width, src.height, c);
    for y in 0..src.height {
        let row = &src.data[y * src.width * c..(y + 1) * src.width * c];
        for (xx, ((xmin, count), k)) in coeffs.bounds.iter().zip(&coeffs.weights).enumerate() {
            for ch in 0..c {
                let mut acc: i64 = 1 << (PRECISION_BITS - 1);
                for x in 0..*count {
                    acc += row[(xmin + x) * c + ch] as i64 * k[x] as i64;
                }
                out.data[(y * width + xx) * c + ch] = clip8(acc);
            }
        }
    }
    out
}

fn resample_vertical(src: &PixelImage, height: usize, filter: Filter) -> PixelImage {
    let (c, w) = (src.channels, src.width);
    let coeffs = coefficients(src.height, height, filter);
    let mut out = PixelImage::new(w, height, c);
    for (yy, ((ymin, count), k)) in coeffs.bounds.iter().zip(&coeffs.weights).enumerate() {
        for i in 0..w * c {
            let mut acc: i64 = 1 << (PRECISION_BITS - 1);
            for (y, &ky) in k.iter().enumerate().take(*count) {
                acc += src.data[(ymin + y) * w * c + i] as i64 * ky as i64;
            }
            out.data[yy * w * c + i] = clip8(acc);
        }
    }
    out
}

/// `image.resize((width, height), filter)` as Pillow computes it on an 8-bit image. An axis whose
/// size does not change is not resampled (Pillow skips that pass too).
///
/// # Panics
///
/// If `width` or `height` is 0.
pub fn resize(image: &PixelImage, width: usize, height: usize, filter: Filter) -> PixelImage {
    assert!(width > 0 && height > 0, "resize to a non-empty image");
    let mut out = std::borrow::Cow::Borrowed(image);
    if width != image.width {
        out = std::borrow::Cow::Owned(resample_horizontal(&out, width, filter));
    }
    if height != image.height {
        out = std::borrow::Cow::Owned(resample_vertical(&out, height, filter));
    }
    out.into_owned()
}

/// PyTorch's `F.interpolate(x, size, mode="bicubic", align_corners=False)` without
/// anti-aliasing, on float images: the reference's 384 → 256 px resize before FID (spec §3.5).
/// Separable Keys cubic with `A = −0.75` (PyTorch's coefficient), source coordinate
/// `(i + ½)·in/out − ½`, the four taps clamped to the border, computed in f32 as PyTorch does on
/// the CPU.
///
/// # Shapes
///
/// - values: `[channels, height, width]` row-major
/// - output: `[channels, out_height, out_width]`
///
/// # Panics
///
/// If `values` is not `channels · height · width` long or a size is 0.
pub fn interpolate_bicubic(
    values: &[f32],
    channels: usize,
    height: usize,
    width: usize,
    out_height: usize,
    out_width: usize,
) -> Vec<f32> {
    assert_eq!(values.len(), channels * height * width, "values are not [c, h, w]");
    assert!(height > 0 && width > 0 && out_height > 0 && out_width > 0, "empty image");
    /// Taps and weights of every output index along one axis.
    fn taps(input: usize, output: usize) -> Vec<([usize; 4], [f32; 4])> {
        const A: f32 = -0.75;
        let cubic1 = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0; // |x| ≤ 1
        let cubic2 = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A; // 1 < |x| < 2
        let scale = input as f32 / output as f32;
        (0..output)
            .map(|i| {
                let src = (i as f32 + 0.5) * scale - 0.5;
                let x0 = src.floor();
                let t = src - x0;
                let w = [cubic2(t + 1.0), cubic1(t), cubic1(1.0 - t), cubic2(2.0 - t)];
                let at = |d: i64| (x0 as i64 + d).clamp(0, input as i64 - 1) as usize;
                ([at(-1), at(0), at(1), at(2)], w)
            })
            .collect()
    }
    let (rows, cols) = (taps(height, out_height), taps(width, out_width));
    let mut out = Vec::with_capacity(channels * out_height * out_width);
    for c in 0..channels {
        let plane = &values[c * height * width..(c + 1) * height * width];
        for (ry, wy) in &rows {
            for (cx, wx) in &cols {
                let mut acc = 0.0f32;
                for (&y, &fy) in ry.iter().zip(wy) {
                    let line = &plane[y * width..(y + 1) * width];
                    let h: f32 = cx.iter().zip(wx).map(|(&x, &fx)| line[x] * fx).sum();
                    acc += h * fy;
                }
                out.push(acc);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_halving_averages_two_by_two_blocks() {
        let image =
            PixelImage { width: 4, height: 2, channels: 1, data: vec![0, 10, 20, 31, 2, 4, 6, 8] };
        let out = resize(&image, 2, 1, Filter::Box);
        // (0+10+2+4)/4 = 4, (20+31+6+8)/4 = 16.25 → rounded per pass: rows (5, 25.5→26), (3, 7) → 4, 16.5→17
        assert_eq!(out.data, vec![4, 17]);
    }

    #[test]
    fn identity_when_size_is_unchanged() {
        let image = PixelImage { width: 3, height: 2, channels: 3, data: (0..18).collect() };
        assert_eq!(resize(&image, 3, 2, Filter::Bicubic), image);
    }

    #[test]
    fn bicubic_weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(28, 32), (500, 422), (422, 384), (7, 3)] {
            let c = coefficients(i, o, Filter::Bicubic);
            for k in &c.weights {
                let sum: i64 = k.iter().map(|&w| w as i64).sum();
                assert!((sum - (1 << PRECISION_BITS)).abs() <= k.len() as i64, "{i}->{o}: {sum}");
            }
        }
    }

    #[test]
    fn constant_image_stays_constant() {
        let image = PixelImage { width: 28, height: 28, channels: 1, data: vec![200; 784] };
        let out = resize(&image, 32, 32, Filter::Bicubic);
        assert!(out.data.iter().all(|&v| v == 200));
    }
}
