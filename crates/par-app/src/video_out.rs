//! Video outputs (docs/spec.md §8): a clip as a looping animated GIF ([`write_gif`]), or its
//! frames side by side in one PNG ([`write_strip`]; several clips as rows, [`write_strip_grid`]).
//! Every file is written atomically (`par_store::write_atomic`: a temporary file renamed into
//! place), so a failed or interrupted write leaves no partial file.

use std::path::{Path, PathBuf};

use par_data::{PixelImage, VideoClip};

/// Why a video output could not be written. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum VideoOutError {
    /// Nothing to write.
    #[error("{path}: no frames to write")]
    Empty {
        /// The output file.
        path: PathBuf,
    },
    /// A frame that does not fit the others (size, channels) or is malformed.
    #[error("{path}: frame {index}: {reason}")]
    Frame {
        /// The output file.
        path: PathBuf,
        /// The frame's index (row-major over a grid's rows).
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// A frame rate that is not a finite number > 0.
    #[error("{path}: the frame rate must be a finite number > 0, got {fps}")]
    Fps {
        /// The output file.
        path: PathBuf,
        /// The rate.
        fps: f64,
    },
    /// The image encoder failed (a GIF side above 65,535 pixels).
    #[error("{path}: encoding: {source}")]
    Encode {
        /// The output file.
        path: PathBuf,
        /// The encoder's error.
        source: image::ImageError,
    },
    /// The file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The output file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Checks that `frames` (at least one) are well-formed 1- or 3-channel images of one size;
/// returns `(width, height)`.
fn check_frames<'a>(
    path: &Path,
    frames: impl IntoIterator<Item = &'a PixelImage>,
) -> Result<(usize, usize), VideoOutError> {
    let mut size = None;
    for (index, f) in frames.into_iter().enumerate() {
        let bad = |reason: String| VideoOutError::Frame { path: path.into(), index, reason };
        if !matches!(f.channels, 1 | 3) || f.width == 0 || f.height == 0 {
            return Err(bad(format!(
                "{}×{} with {} channels; expected a non-empty 1- or 3-channel image",
                f.width, f.height, f.channels
            )));
        }
        if f.data.len() != f.width * f.height * f.channels {
            return Err(bad(format!(
                "{} bytes for {}×{}×{}",
                f.data.len(),
                f.width,
                f.height,
                f.channels
            )));
        }
        match size {
            None => size = Some((f.width, f.height)),
            Some((w, h)) if (w, h) != (f.width, f.height) => {
                return Err(bad(format!("{}×{}, the first frame is {w}×{h}", f.width, f.height)));
            }
            Some(_) => {}
        }
    }
    size.ok_or_else(|| VideoOutError::Empty { path: path.into() })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), VideoOutError> {
    par_store::write_atomic(path, bytes)
        .map_err(|source| VideoOutError::Io { path: path.into(), source })
}

/// The GIF frame delay for `fps`: `round(100 / fps)` centiseconds (GIF's unit), at least 2
/// (browsers play shorter delays at 10 cs) and at most 65,535. 8 fps → 13 cs (7.7 fps shown).
pub fn gif_delay_cs(fps: f64) -> u16 {
    (100.0 / fps).round().clamp(2.0, u16::MAX as f64) as u16
}

/// The bytes of a looping animated GIF of `frames` shown at `fps` (see [`write_gif`]).
///
/// # Errors
///
/// As [`write_gif`], without [`VideoOutError::Io`]; `path` only names the file in errors.
pub fn gif_bytes(path: &Path, frames: &[PixelImage], fps: f64) -> Result<Vec<u8>, VideoOutError> {
    if !(fps.is_finite() && fps > 0.0) {
        return Err(VideoOutError::Fps { path: path.into(), fps });
    }
    let (w, h) = check_frames(path, frames)?;
    let encode = |source| VideoOutError::Encode { path: path.into(), source };
    let delay = image::Delay::from_numer_denom_ms(u32::from(gif_delay_cs(fps)) * 10, 1);
    let mut out = Vec::new();
    {
        // Speed 10: gif's recommended NeuQuant sampling for frames of more than 256 colours.
        let mut encoder = image::codecs::gif::GifEncoder::new_with_speed(&mut out, 10);
        encoder.set_repeat(image::codecs::gif::Repeat::Infinite).map_err(encode)?;
        for f in frames {
            let mut rgba = Vec::with_capacity(w * h * 4);
            for px in f.data.chunks_exact(f.channels) {
                let (r, g, b) =
                    if f.channels == 1 { (px[0], px[0], px[0]) } else { (px[0], px[1], px[2]) };
                rgba.extend_from_slice(&[r, g, b, 255]);
            }
            let buffer = image::RgbaImage::from_raw(w as u32, h as u32, rgba)
                .expect("the buffer holds w·h·4 bytes");
            encoder.encode_frame(image::Frame::from_parts(buffer, 0, 0, delay)).map_err(encode)?;
        }
    }
    Ok(out)
}

/// Writes `frames` as an animated GIF shown at `fps` (delay [`gif_delay_cs`]), looping forever
/// (the NETSCAPE2.0 extension). Gray frames are shown as gray; each frame gets its own palette,
/// exact for frames of at most 256 colours and a NeuQuant quantisation otherwise. Written
/// atomically.
///
/// # Errors
///
/// [`VideoOutError::Empty`], [`VideoOutError::Frame`] (frames of different sizes, malformed),
/// [`VideoOutError::Fps`], [`VideoOutError::Encode`] (a side above 65,535),
/// [`VideoOutError::Io`]; each naming `path`.
pub fn write_gif(path: &Path, frames: &[PixelImage], fps: f64) -> Result<(), VideoOutError> {
    write(path, &gif_bytes(path, frames, fps)?)
}

/// [`write_gif`] of a clip's frames.
///
/// # Errors
///
/// As [`write_gif`]; [`VideoOutError::Frame`] for a clip whose `data` does not hold its frames.
pub fn write_clip_gif(path: &Path, clip: &VideoClip, fps: f64) -> Result<(), VideoOutError> {
    if !clip.is_consistent() {
        return Err(VideoOutError::Frame {
            path: path.into(),
            index: 0,
            reason: format!(
                "a clip of {}×{}×{}×3 holds {} bytes",
                clip.frames,
                clip.height,
                clip.width,
                clip.data.len()
            ),
        });
    }
    write_gif(path, &clip.frame_images(), fps)
}

/// Writes `frames` side by side, left to right without gaps, as one PNG: `frames.len() · W`
/// wide, `H` high (RGB, or gray if every frame is gray). Written atomically.
///
/// # Errors
///
/// [`VideoOutError::Empty`], [`VideoOutError::Frame`], [`VideoOutError::Encode`],
/// [`VideoOutError::Io`]; each naming `path`.
pub fn write_strip(path: &Path, frames: &[PixelImage]) -> Result<(), VideoOutError> {
    write_strip_grid(path, &[frames.to_vec()])
}

/// Writes several clips as the rows of one PNG, each row a clip's frames side by side, without
/// gaps: `max_len · W` wide, `rows · H` high; a row shorter than the longest is padded with
/// black frames. Written atomically.
///
/// # Errors
///
/// [`VideoOutError::Empty`] (no rows, or only empty rows), [`VideoOutError::Frame`] (frames of
/// different sizes, malformed; indexed row-major), [`VideoOutError::Encode`],
/// [`VideoOutError::Io`]; each naming `path`.
pub fn write_strip_grid(path: &Path, rows: &[Vec<PixelImage>]) -> Result<(), VideoOutError> {
    let (w, h) = check_frames(path, rows.iter().flatten())?;
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let channels = rows.iter().flatten().map(|f| f.channels).max().unwrap_or(1);
    let black = &PixelImage::new(w, h, channels);
    let cells: Vec<PixelImage> = rows
        .iter()
        .flat_map(|row| (0..columns).map(move |i| row.get(i).unwrap_or(black).clone()))
        .collect();
    let png = PixelImage::grid(&cells, columns, 0, 0)
        .to_png()
        .map_err(|source| VideoOutError::Encode { path: path.into(), source })?;
    write(path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::AnimationDecoder;

    /// A `w × h` RGB frame whose pixel `(x, y)` is `(x + 10·k, y, 200)`.
    fn frame(w: usize, h: usize, k: u8) -> PixelImage {
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[x as u8 + 10 * k, y as u8, 200]);
            }
        }
        PixelImage { width: w, height: h, channels: 3, data }
    }

    #[test]
    fn gif_round_trip_keeps_frames_pixels_and_loops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip.gif");
        let frames: Vec<PixelImage> = (0..3).map(|k| frame(6, 4, k)).collect();
        write_gif(&path, &frames, 8.0).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.windows(11).any(|w| w == b"NETSCAPE2.0"), "looping extension");
        let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes)).unwrap();
        let decoded = decoder.into_frames().collect_frames().unwrap();
        assert_eq!(decoded.len(), 3);
        for (k, f) in decoded.iter().enumerate() {
            assert_eq!(f.delay().numer_denom_ms(), (130, 1));
            let b = f.buffer();
            assert_eq!((b.width(), b.height()), (6, 4));
            assert_eq!(b.get_pixel(5, 2).0, [5 + 10 * k as u8, 2, 200, 255], "frame {k}");
        }
        // A gray clip is written as gray.
        let gray = PixelImage { width: 2, height: 1, channels: 1, data: vec![17, 240] };
        let gray_path = dir.path().join("gray.gif");
        write_gif(&gray_path, &[gray], 8.0).unwrap();
        let gif = image::open(&gray_path).unwrap().to_rgb8();
        assert_eq!(gif.get_pixel(1, 0).0, [240, 240, 240]);
    }

    #[test]
    fn strips_put_frames_side_by_side_and_clips_in_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("strip.png");
        let frames: Vec<PixelImage> = (0..3).map(|k| frame(5, 4, k)).collect();
        write_strip(&path, &frames).unwrap();
        let png = image::open(&path).unwrap().to_rgb8();
        assert_eq!((png.width(), png.height()), (3 * 5, 4));
        assert_eq!(png.get_pixel(5 + 1, 2).0, [11, 2, 200], "frame 1, pixel (1, 2)");

        let grid = dir.path().join("grid.png");
        write_strip_grid(&grid, &[frames.clone(), frames[..2].to_vec()]).unwrap();
        let png = image::open(&grid).unwrap().to_rgb8();
        assert_eq!((png.width(), png.height()), (15, 8));
        assert_eq!(png.get_pixel(10 + 3, 4 + 1).0, [0, 0, 0], "the short row is padded black");
        assert_eq!(png.get_pixel(5 + 3, 4 + 1).0, [13, 1, 200]);
    }

    #[test]
    fn bad_inputs_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.gif");
        let named = |e: VideoOutError| {
            assert!(e.to_string().contains("out.gif"), "{e}");
            e
        };
        assert!(matches!(
            named(write_gif(&path, &[], 8.0).unwrap_err()),
            VideoOutError::Empty { .. }
        ));
        let mixed = [frame(5, 4, 0), frame(4, 4, 0)];
        let e = named(write_gif(&path, &mixed, 8.0).unwrap_err());
        assert!(matches!(e, VideoOutError::Frame { index: 1, .. }), "{e}");
        let e = named(write_gif(&path, &[frame(2, 2, 0)], f64::NAN).unwrap_err());
        assert!(matches!(e, VideoOutError::Fps { .. }), "{e}");
        let short = PixelImage { width: 2, height: 2, channels: 3, data: vec![0; 5] };
        assert!(matches!(
            named(write_strip(&path, &[short]).unwrap_err()),
            VideoOutError::Frame { index: 0, .. }
        ));
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let e = write_strip(&blocker.join("out.gif"), &[frame(2, 2, 0)]).unwrap_err();
        assert!(matches!(named(e), VideoOutError::Io { .. }));
        assert!(!path.exists(), "nothing written");
        assert_eq!(gif_delay_cs(8.0), 13);
        assert_eq!(gif_delay_cs(1000.0), 2);
    }
}
