//! NumPy `.npz` files of images in the layout of the ADM evaluator (OpenAI's guided-diffusion
//! suite, which every FID in the paper comes from, spec §7): one array `arr_0`, uint8,
//! `[N, H, W, 3]` (NHWC, RGB), as `np.savez` writes it (stored, uncompressed entries).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::{DataError, PixelImage};

/// The `.npy` v1.0 header of a uint8 C-ordered array of `shape` (padded so that the data starts
/// at a multiple of 64 bytes, as NumPy writes it).
fn npy_header(shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple =
        if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut dict = format!("{{'descr': '|u1', 'fortran_order': False, 'shape': {tuple}, }}");
    // magic (6) + version (2) + length (2) + dict + '\n' ≡ 0 (mod 64)
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((dict.len() as u16).to_le_bytes());
    out.extend(dict.as_bytes());
    out
}

/// The RGB bytes of one image of `height`×`width` (gray replicated), or an error naming `path`.
fn rgb_bytes(
    path: &Path,
    im: &PixelImage,
    height: usize,
    width: usize,
) -> Result<Vec<u8>, DataError> {
    if (im.height, im.width) != (height, width) {
        return Err(DataError::store(
            path,
            format!("images of {width}×{height} and {}×{} in one array", im.width, im.height),
        ));
    }
    if !matches!(im.channels, 1 | 3) || im.data.len() != height * width * im.channels {
        return Err(DataError::store(
            path,
            format!(
                "an image of {} channel(s) and {} bytes for {width}×{height} (1 or 3 channels)",
                im.channels,
                im.data.len()
            ),
        ));
    }
    Ok(if im.channels == 1 {
        im.data.iter().flat_map(|&v| [v; 3]).collect()
    } else {
        im.data.clone()
    })
}

/// Writes `count` images of `height`×`width` as the `arr_0` of an ADM `.npz` (uint8, `[count,
/// height, width, 3]`, one stored entry) image by image, so that a 50,000-image set never sits in
/// memory. The file appears at its path only when [`NpzImageWriter::finish`] succeeds (written
/// to `<path>.partial`, then renamed); a writer dropped before that removes its partial file.
pub struct NpzImageWriter {
    path: PathBuf,
    partial: PathBuf,
    zip: Option<zip::ZipWriter<std::io::BufWriter<std::fs::File>>>,
    shape: (usize, usize, usize),
    written: usize,
}

impl NpzImageWriter {
    /// Starts the file for `count` images of `height`×`width` pixels.
    ///
    /// # Errors
    ///
    /// [`DataError`] naming `path`: zero sizes, or the file cannot be created.
    pub fn create(
        path: &Path,
        count: usize,
        height: usize,
        width: usize,
    ) -> Result<Self, DataError> {
        if count == 0 || height == 0 || width == 0 {
            return Err(DataError::store(
                path,
                format!("{count} images of {width}×{height}: nothing to write"),
            ));
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let file = std::fs::File::create(&partial).map_err(|e| DataError::io(&partial, e))?;
        let mut writer = Self {
            path: path.into(),
            partial,
            zip: Some(zip::ZipWriter::new(std::io::BufWriter::new(file))),
            shape: (count, height, width),
            written: 0,
        };
        let header = npy_header(&[count, height, width, 3]);
        let total = header.len() + count * height * width * 3;
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(total >= u32::MAX as usize);
        let zip = writer.zip.as_mut().expect("just created");
        zip.start_file("arr_0.npy", options).map_err(|e| DataError::store(path, e.to_string()))?;
        zip.write_all(&header).map_err(|e| DataError::io(path, e))?;
        Ok(writer)
    }

    /// Appends the next image (1 or 3 channels; gray is replicated to RGB).
    ///
    /// # Errors
    ///
    /// [`DataError`] naming the file: another size, 2 or 4 channels, more than `count` images,
    /// or a write failure.
    pub fn push(&mut self, image: &PixelImage) -> Result<(), DataError> {
        let (count, height, width) = self.shape;
        if self.written == count {
            return Err(DataError::store(
                &self.path,
                format!("more than the {count} images announced"),
            ));
        }
        let bytes = rgb_bytes(&self.path, image, height, width)?;
        let zip = self.zip.as_mut().expect("open until finish");
        zip.write_all(&bytes).map_err(|e| DataError::io(&self.path, e))?;
        self.written += 1;
        Ok(())
    }

    /// Completes the archive and moves it to its path.
    ///
    /// # Errors
    ///
    /// [`DataError`] naming the file: fewer images than announced, or a write failure.
    pub fn finish(mut self) -> Result<(), DataError> {
        let (count, ..) = self.shape;
        if self.written != count {
            return Err(DataError::store(
                &self.path,
                format!("{} of the {count} images announced", self.written),
            ));
        }
        let zip = self.zip.take().expect("open until finish");
        let io = |e: std::io::Error| DataError::io(&self.path, e);
        let buffered = zip.finish().map_err(|e| DataError::store(&self.path, e.to_string()))?;
        let file = buffered.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&self.partial, &self.path).map_err(io)?;
        Ok(())
    }
}

impl Drop for NpzImageWriter {
    fn drop(&mut self) {
        if self.zip.is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// The `.npz` bytes holding `images` as `arr_0`, uint8 NHWC with 3 channels (gray images are
/// replicated to RGB): the in-memory counterpart of [`NpzImageWriter`] for small sets.
///
/// # Errors
///
/// [`DataError::Npy`] for no images, images of different sizes, or of 2 or 4 channels (naming
/// `path`).
pub fn encode_images(path: &Path, images: &[PixelImage]) -> Result<Vec<u8>, DataError> {
    let Some(first) = images.first() else {
        return Err(DataError::store(path, "no images to write"));
    };
    let (h, w) = (first.height, first.width);
    let mut npy = npy_header(&[images.len(), h, w, 3]);
    for im in images {
        npy.extend(rgb_bytes(path, im, h, w)?);
    }
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
    if n > 0 && h * w == 0 {
        return Err(bad(format!("arr_0 has shape {shape:?}: images of zero size")));
    }
    let data: Vec<u8> =
        npy.into_vec().map_err(|e| bad(format!("arr_0 is not uint8, or is cut short: {e}")))?;
    if data.len() != n * h * w * c {
        return Err(bad(format!("arr_0 holds {} bytes for shape {shape:?}", data.len())));
    }
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
        let two = PixelImage { width: 1, height: 1, channels: 2, data: vec![1, 2] };
        assert!(encode_images(&path, &[two]).is_err(), "2 channels refused, not a panic");
        // Images of zero size, and an array cut short: errors naming the file, not panics.
        for (shape, payload) in [([1, 0, 0, 3], 0), ([2, 2, 2, 3], 20)] {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            zip.start_file("arr_0.npy", zip::write::SimpleFileOptions::default()).unwrap();
            zip.write_all(&npy_header(&shape)).unwrap();
            zip.write_all(&vec![7u8; payload]).unwrap();
            std::fs::write(&path, zip.finish().unwrap().into_inner()).unwrap();
            let e = read_images(&path).unwrap_err().to_string();
            assert!(e.contains("x.npz"), "{shape:?}: {e}");
        }
    }

    #[test]
    fn the_streaming_writer_writes_the_same_bytes_and_leaves_nothing_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let images: Vec<PixelImage> = (0..3u8)
            .map(|i| PixelImage { width: 4, height: 2, channels: 1, data: vec![i * 40; 8] })
            .collect();
        let path = dir.path().join("s.npz");
        let mut w = NpzImageWriter::create(&path, 3, 2, 4).unwrap();
        for im in &images {
            w.push(im).unwrap();
        }
        assert!(!path.exists(), "nothing at the path before finish");
        w.finish().unwrap();
        assert_eq!(read_images(&path).unwrap()[2].data[..3], [80, 80, 80]);
        assert_eq!(std::fs::read(&path).unwrap(), encode_images(&path, &images).unwrap());
        // One image short: an error, and no file (partial or final) left.
        let short = dir.path().join("short.npz");
        let mut w = NpzImageWriter::create(&short, 3, 2, 4).unwrap();
        w.push(&images[0]).unwrap();
        assert!(w.finish().is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only s.npz");
        // The data starts at a multiple of 64 bytes, as NumPy's own files do.
        let header = npy_header(&[3, 2, 4, 3]);
        assert_eq!(header.len() % 64, 0);
        assert!(String::from_utf8_lossy(&header).contains("'shape': (3, 2, 4, 3)"));
    }
}
