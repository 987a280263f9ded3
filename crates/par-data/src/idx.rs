//! MNIST-style IDX files (`*-images-idx3-ubyte[.gz]`, `*-labels-idx1-ubyte[.gz]`).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::{DataError, PixelImage};

/// Fashion-MNIST's class names, by IDX label 0–9.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The two splits of an MNIST-style directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdxSplit {
    /// `train-*` (60,000 images for (Fashion-)MNIST).
    Train,
    /// `t10k-*` (10,000 images).
    Test,
}

use serde::{Deserialize, Serialize};

impl IdxSplit {
    fn prefix(self) -> &'static str {
        match self {
            IdxSplit::Train => "train",
            IdxSplit::Test => "t10k",
        }
    }
}

/// Grayscale images and labels of one IDX split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Image rows (28 for MNIST).
    pub rows: usize,
    /// Image columns.
    pub cols: usize,
    /// `count · rows · cols` pixels, image-major.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    gunzip_if_gz(path, raw)
}

fn gunzip_if_gz(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>, DataError> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::Idx { path: path.into(), reason: format!("gzip: {e}") })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses an IDX file of unsigned bytes with `rank` dimensions; returns dims and payload.
fn parse_idx(path: &Path, bytes: Vec<u8>, rank: usize) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bad = |reason: String| DataError::Idx { path: path.into(), reason };
    if bytes.len() < 4 {
        return Err(bad(format!("{} bytes is shorter than the header", bytes.len())));
    }
    let magic = &bytes[..4];
    if magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || magic[3] as usize != rank {
        return Err(bad(format!(
            "magic {magic:02x?}, expected [00, 00, 08, {rank:02x}] (unsigned bytes, {rank} dimensions)"
        )));
    }
    if bytes.len() < 4 + 4 * rank {
        return Err(bad(format!("{} bytes is shorter than the header", bytes.len())));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let header = 4 + 4 * rank;
    if rank > 1 && dims[1..].contains(&0) {
        return Err(bad(format!("dimensions {dims:?}: items of zero size")));
    }
    let Some(expected) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        return Err(bad(format!("dimensions {dims:?} overflow")));
    };
    if bytes.len() - header != expected {
        return Err(bad(format!(
            "dimensions {dims:?} need {expected} bytes of data, the file holds {}",
            bytes.len() - header
        )));
    }
    let mut bytes = bytes;
    bytes.drain(..header);
    Ok((dims, bytes))
}

/// Reads an IDX label file (`idx1-ubyte`, optionally gzip-compressed).
///
/// # Errors
///
/// [`DataError::Io`] or [`DataError::Idx`] naming the file.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    Ok(parse_idx(path, read_maybe_gz(path)?, 1)?.1)
}

fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    for name in [format!("{stem}.gz"), stem.to_string()] {
        let p = dir.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(DataError::io(
        dir.join(format!("{stem}[.gz]")),
        std::io::Error::new(std::io::ErrorKind::NotFound, "IDX file not found"),
    ))
}

impl IdxImages {
    /// Parses an image and a label IDX file held in memory (`.gz` or raw), e.g. compiled into a
    /// binary; `name` stands for the path in errors.
    ///
    /// # Errors
    ///
    /// [`DataError::Idx`] for malformed data or counts that differ.
    pub fn from_bytes(images: &[u8], labels: &[u8], name: &str) -> Result<Self, DataError> {
        let path = Path::new(name);
        let (dims, pixels) = parse_idx(path, gunzip_if_gz(path, images.to_vec())?, 3)?;
        let labels = parse_idx(path, gunzip_if_gz(path, labels.to_vec())?, 1)?.1;
        if labels.len() != dims[0] {
            return Err(DataError::Idx {
                path: path.into(),
                reason: format!("{} labels for {} images", labels.len(), dims[0]),
            });
        }
        Ok(Self { rows: dims[1], cols: dims[2], pixels, labels })
    }

    /// Reads one IDX image file (`…images-idx3-ubyte[.gz]`) and, when a sibling file of the same
    /// name with `labels-idx1` in place of `images-idx3` exists, its labels. The flag says whether
    /// labels were found; without them every label is 0.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] / [`DataError::Idx`] naming the file; counts that differ.
    pub fn open_file(path: &Path) -> Result<(Self, bool), DataError> {
        let (dims, pixels) = parse_idx(path, read_maybe_gz(path)?, 3)?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let labels_path = path.with_file_name(name.replace("images-idx3", "labels-idx1"));
        let labelled = name.contains("images-idx3") && labels_path.is_file();
        let labels = if labelled { read_idx_labels(&labels_path)? } else { vec![0; dims[0]] };
        if labels.len() != dims[0] {
            return Err(DataError::Idx {
                path: labels_path,
                reason: format!(
                    "{} labels for {} images in {}",
                    labels.len(),
                    dims[0],
                    path.display()
                ),
            });
        }
        Ok((Self { rows: dims[1], cols: dims[2], pixels, labels }, labelled))
    }

    /// The image and label files of `split` in `dir` (what [`IdxImages::open`] reads), e.g. to
    /// fingerprint them.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] naming a missing file.
    pub fn files(dir: &Path, split: IdxSplit) -> Result<[PathBuf; 2], DataError> {
        Ok([
            find(dir, &format!("{}-images-idx3-ubyte", split.prefix()))?,
            find(dir, &format!("{}-labels-idx1-ubyte", split.prefix()))?,
        ])
    }

    /// Reads `{split}-images-idx3-ubyte[.gz]` and `{split}-labels-idx1-ubyte[.gz]` from `dir`
    /// (the layout of MNIST, Fashion-MNIST and Debian's `dataset-fashion-mnist`).
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] for a missing file, [`DataError::Idx`] for a malformed one or when the
    /// image and label counts differ.
    pub fn open(dir: &Path, split: IdxSplit) -> Result<Self, DataError> {
        let [images, labels] = Self::files(dir, split)?;
        let (dims, pixels) = parse_idx(&images, read_maybe_gz(&images)?, 3)?;
        let labels_v = read_idx_labels(&labels)?;
        if labels_v.len() != dims[0] {
            return Err(DataError::Idx {
                path: labels,
                reason: format!(
                    "{} labels for {} images in {}",
                    labels_v.len(),
                    dims[0],
                    images.display()
                ),
            });
        }
        Ok(Self { rows: dims[1], cols: dims[2], pixels, labels: labels_v })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i` as a one-channel [`PixelImage`].
    ///
    /// # Panics
    ///
    /// If `i ≥ len()`.
    pub fn image(&self, i: usize) -> PixelImage {
        let n = self.rows * self.cols;
        PixelImage {
            width: self.cols,
            height: self.rows,
            channels: 1,
            data: self.pixels[i * n..(i + 1) * n].to_vec(),
        }
    }

    /// The first `count` images (all if fewer).
    pub fn take(mut self, count: usize) -> Self {
        let count = count.min(self.len());
        self.pixels.truncate(count * self.rows * self.cols);
        self.labels.truncate(count);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn idx(rank: u8, dims: &[u32], payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, rank];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn reads_plain_and_gzip_and_rejects_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let images = idx(3, &[2, 2, 3], &(0..12).collect::<Vec<u8>>());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&images).unwrap();
        std::fs::write(dir.path().join("train-images-idx3-ubyte.gz"), gz.finish().unwrap())
            .unwrap();
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), idx(1, &[2], &[3, 9])).unwrap();
        let set = IdxImages::open(dir.path(), IdxSplit::Train).unwrap();
        assert_eq!((set.len(), set.rows, set.cols), (2, 2, 3));
        assert_eq!(set.image(1).data, (6..12).collect::<Vec<u8>>());
        assert_eq!(set.labels, [3, 9]);

        std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), &images[..20]).unwrap();
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), idx(1, &[2], &[3, 9])).unwrap();
        let err = IdxImages::open(dir.path(), IdxSplit::Test).unwrap_err();
        assert!(
            err.to_string().contains("t10k-images-idx3-ubyte")
                && err.to_string().contains("need 12"),
            "{err}"
        );
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), idx(1, &[2], &[3, 9])).unwrap();
        assert!(
            IdxImages::open(dir.path(), IdxSplit::Test).unwrap_err().to_string().contains("magic")
        );
        let missing = IdxImages::open(&dir.path().join("none"), IdxSplit::Train).unwrap_err();
        assert!(missing.to_string().contains("train-images-idx3-ubyte"), "{missing}");
    }
}
