//! NumPy `.npz` files of images in the layout of the ADM evaluator (OpenAI's guided-diffusion
//! suite, which every FID in the paper comes from, spec §7): one array `arr_0`, uint8,
//! `[N, H, W, 3]` (NHWC, RGB), as `np.savez` writes it (stored, uncompressed entries).

use std::io::{Read, Write};
use std::path::Path;

use crate::{DataError, PixelImage};

/// The `.npz` bytes holding `images` as `arr_0`, uint8 NHWC with 3 channels (gray images are
/// replicated to RGB).
///
/// # Errors
///
/// [`DataError::Npy`] for no images or images of different sizes (naming `path`).
pub fn encode_images(path: &Path, images: &[PixelImage]) -> Result<Vec<u8>, DataError> {
    let Some(first) = images.first() else {
        return Err(DataError::store(path, "no images to write"));
    };
    let (h, w) = (first.height, first.width);
    let mut data = Vec::with_capacity(images.len() * h * w * 3);
    for im in images {
        if (im.height, im.width) != (h, w) {
            return Err(DataError::store(
                path,
                format!("images of {}×{} and {}×{} in one array", w, h, im.width, im.height),
            ));
        }
        for px in im.data.chunks(im.channels) {
            if im.channels == 1 {
                data.extend([px[0]; 3]);
            } else {
                data.extend_from_slice(&px[..3]);
            }
        }
    }
    let npy = crate::npy::encode(&[images.len(), h, w, 3], &data);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(npy.len() >= u32::MAX as usize);
    let io = |e: zip::result::ZipError| DataError::store(path, e.to_string());
    zip.start_file("arr_0.npy", options).map_err(io)?;
    zip.write_all(&npy).map_err(|e| DataError::store(path, e.to_string()))?;
    Ok(zip.finish().map_err(io)?.into_inner())
}

/// Reads the images of an ADM-style `.npz` (`arr_0`, uint8, `[N, H, W, C]` with `C` = 1 or 3, or
/// `[N, H, W]` gray).
///
/// # Errors
///
/// [`DataError`] naming the file: not a zip, no `arr_0`, another dtype or shape.
pub fn read_images(path: &Path) -> Result<Vec<PixelImage>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let bad = |why: String| DataError::store(path, why);
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(format!("not an .npz: {e}")))?;
    let mut bytes = Vec::new();
    archive
        .by_name("arr_0.npy")
        .map_err(|_| bad("no array `arr_0`".into()))?
        .read_to_end(&mut bytes)
        .map_err(|e| DataError::io(path, e))?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(format!("arr_0: {e}")))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let (n, h, w, c) = match shape[..] {
        [n, h, w] => (n, h, w, 1),
        [n, h, w, c] if c == 1 || c == 3 => (n, h, w, c),
        _ => return Err(bad(format!("arr_0 has shape {shape:?}, expected [N, H, W, 3]"))),
    };
    let data: Vec<u8> = npy.into_vec().map_err(|e| bad(format!("arr_0 is not uint8: {e}")))?;
    Ok(data
        .chunks(h * w * c)
        .take(n)
        .map(|px| PixelImage { width: w, height: h, channels: c, data: px.to_vec() })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_round_trip_through_an_npz() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.npz");
        let gray =
            PixelImage { width: 3, height: 2, channels: 1, data: vec![0, 10, 20, 30, 40, 250] };
        let rgb = PixelImage { width: 3, height: 2, channels: 3, data: (0..18).collect() };
        std::fs::write(&path, encode_images(&path, &[gray.clone(), rgb.clone()]).unwrap()).unwrap();
        let back = read_images(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1], rgb);
        assert_eq!(back[0].data[..6], [0, 0, 0, 10, 10, 10], "gray replicated to RGB");
        assert!(encode_images(&path, &[]).is_err());
        std::fs::write(&path, b"not a zip").unwrap();
        assert!(read_images(&path).is_err());
    }
}
