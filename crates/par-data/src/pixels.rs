//! [`PixelImage`]: 8-bit images in HWC layout, decoded and converted as torchvision's loader.

use std::path::Path;

use crate::DataError;

/// An 8-bit image, row-major, channels interleaved (`[height, width, channels]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PixelImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// 1 (luma) or 3 (RGB).
    pub channels: usize,
    /// `height · width · channels` bytes.
    pub data: Vec<u8>,
}

impl PixelImage {
    /// A zero image.
    pub fn new(width: usize, height: usize, channels: usize) -> Self {
        Self { width, height, channels, data: vec![0; width * height * channels] }
    }

    /// The sub-image of `size.0 × size.1` (width × height) at `(left, top)`.
    ///
    /// # Panics
    ///
    /// If the window leaves the image (callers compute offsets from the image's own size).
    pub fn crop(&self, left: usize, top: usize, width: usize, height: usize) -> Self {
        assert!(left + width <= self.width && top + height <= self.height, "crop window inside");
        let c = self.channels;
        let mut data = Vec::with_capacity(width * height * c);
        for y in top..top + height {
            let row = (y * self.width + left) * c;
            data.extend_from_slice(&self.data[row..row + width * c]);
        }
        Self { width, height, channels: c, data }
    }

    /// The horizontal mirror image.
    pub fn flip_horizontal(&self) -> Self {
        let c = self.channels;
        let mut data = Vec::with_capacity(self.data.len());
        for row in self.data.chunks(self.width * c) {
            for px in row.chunks(c).rev() {
                data.extend_from_slice(px);
            }
        }
        Self { data, ..*self }
    }

    /// Pixels as `[channels, height, width]` floats in `[−1, 1]`, computed as torchvision's
    /// `ToTensor` then `Normalize(0.5, 0.5)` in f32: `(v / 255 − 0.5) / 0.5`.
    pub fn to_chw_signed(&self) -> Vec<f32> {
        let (c, hw) = (self.channels, self.width * self.height);
        let mut out = vec![0.0; c * hw];
        for (i, px) in self.data.chunks(c).enumerate() {
            for (ch, &v) in px.iter().enumerate() {
                out[ch * hw + i] = (v as f32 / 255.0 - 0.5) / 0.5;
            }
        }
        out
    }

    /// The image from `[channels, height, width]` floats in `[−1, 1]` with the reference's
    /// conversion `clamp(127.5·x + 128, 0, 255)` truncated to u8 (LlamaGen `sample_c2i.py`).
    pub fn from_chw_signed(values: &[f32], channels: usize, height: usize, width: usize) -> Self {
        let hw = height * width;
        let mut data = vec![0; hw * channels];
        for ch in 0..channels {
            for i in 0..hw {
                data[i * channels + ch] =
                    (values[ch * hw + i] * 127.5 + 128.0).clamp(0.0, 255.0) as u8;
            }
        }
        Self { width, height, channels, data }
    }

    /// Pillow's `convert("L")` of an RGB pixel: ITU-R 601-2 luma in 16-bit fixed point.
    fn luma(r: u8, g: u8, b: u8) -> u8 {
        ((r as u32 * 19595 + g as u32 * 38470 + b as u32 * 7471 + 0x8000) >> 16) as u8
    }

    /// Converts a decoded image to `channels` (1 or 3) 8-bit channels, as torchvision's loader
    /// (`Image.convert("RGB")`, or `"L"` for grayscale datasets): alpha is dropped (not composited),
    /// grayscale is replicated, 16-bit samples are scaled to 8 bits (`round(v / 257)`; Pillow
    /// would clip them at 255, a bug we do not reproduce), luma uses ITU-R 601-2 weights.
    pub fn from_dynamic(image: &image::DynamicImage, channels: usize) -> Self {
        let rgb = image.to_rgb8();
        let (width, height) = (rgb.width() as usize, rgb.height() as usize);
        let data = if channels == 1 {
            if image.color().has_color() {
                rgb.pixels().map(|p| Self::luma(p[0], p[1], p[2])).collect()
            } else {
                image.to_luma8().into_raw()
            }
        } else {
            rgb.into_raw()
        };
        Self { width, height, channels, data }
    }

    /// Tiles equally sized images row by row, `columns` per row, with `gap` pixels of
    /// `background` between them; the result has the channels of the first image (gray images
    /// are replicated when mixed with RGB ones).
    ///
    /// # Panics
    ///
    /// If `images` is empty, `columns` is 0 or the images differ in size.
    pub fn grid(images: &[PixelImage], columns: usize, gap: usize, background: u8) -> Self {
        assert!(!images.is_empty() && columns > 0, "a non-empty grid");
        let (w, h) = (images[0].width, images[0].height);
        let c = images.iter().map(|i| i.channels).max().unwrap_or(1);
        let rows = images.len().div_ceil(columns);
        let cols = columns.min(images.len());
        let (gw, gh) = (cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap);
        let mut out =
            Self { width: gw, height: gh, channels: c, data: vec![background; gw * gh * c] };
        for (i, im) in images.iter().enumerate() {
            assert!(im.width == w && im.height == h, "grid images of one size");
            let (ox, oy) = ((i % columns) * (w + gap), (i / columns) * (h + gap));
            for y in 0..h {
                for x in 0..w {
                    let src = (y * w + x) * im.channels;
                    let dst = ((oy + y) * gw + ox + x) * c;
                    for ch in 0..c {
                        out.data[dst + ch] = im.data[src + ch.min(im.channels - 1)];
                    }
                }
            }
        }
        out
    }

    /// Encodes as PNG (8-bit gray or RGB).
    ///
    /// # Errors
    ///
    /// The encoder's error (only on allocation failure).
    pub fn to_png(&self) -> Result<Vec<u8>, image::ImageError> {
        let mut out = Vec::new();
        let color = if self.channels == 1 {
            image::ExtendedColorType::L8
        } else {
            image::ExtendedColorType::Rgb8
        };
        image::ImageEncoder::write_image(
            image::codecs::png::PngEncoder::new(&mut out),
            &self.data,
            self.width as u32,
            self.height as u32,
            color,
        )?;
        Ok(out)
    }
}

/// Reads an image file and converts it to `channels` 8-bit channels (see
/// [`PixelImage::from_dynamic`]).
///
/// # Errors
///
/// [`DataError::Io`] if the file cannot be read, [`DataError::Image`] if it is corrupt, truncated
/// or not an image.
pub fn load_image(path: &Path, channels: usize) -> Result<PixelImage, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    decode_image(path, bytes, channels)
}

/// [`load_image`] of a file's bytes already read (`path` names it in errors): for a caller that
/// also fingerprints them, so the file is read once and what is hashed is what is decoded.
///
/// # Errors
///
/// [`DataError::Io`] for an unreadable format guess, [`DataError::Image`] if the bytes are
/// corrupt, truncated or not an image.
pub fn decode_image(path: &Path, bytes: Vec<u8>, channels: usize) -> Result<PixelImage, DataError> {
    let image = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DataError::io(path, e))?
        .decode()
        .map_err(|e| DataError::Image { path: path.into(), reason: e.to_string() })?;
    if image.width() == 0 || image.height() == 0 {
        return Err(DataError::Image { path: path.into(), reason: "empty image".into() });
    }
    Ok(PixelImage::from_dynamic(&image, channels))
}
