//! The LlamaGen/PAR code layout (docs/spec.md §5.1): `{dir}/{name}_codes/{idx}.npy`, int64
//! `(1, views, tokens)` in raster order, and `{dir}/{name}_labels/{idx}.npy`, int64 `(1,)`, for
//! `idx = 0, 1, …`. Dumps made by the reference's `extract_codes_c2i.py` read as they are, and ours
//! feed its `train_c2i.py` (name the folder with "flip" in it, e.g. `imagenet_code_c2i_flip_ten_crop`,
//! so the reference picks one view per sample, §5.2).

use std::path::{Path, PathBuf};

use crate::DataError;
use crate::npy::{encode, read_ints};

/// The two folders of a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlamaGenDirs {
    /// `…_codes`.
    pub codes: PathBuf,
    /// `…_labels`.
    pub labels: PathBuf,
}

impl LlamaGenDirs {
    /// `{dir}/{name}_codes` and `{dir}/{name}_labels` (e.g. name `imagenet384`).
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            codes: dir.join(format!("{name}_codes")),
            labels: dir.join(format!("{name}_labels")),
        }
    }

    /// Finds the dump in `path`: either a `…_codes` folder itself (labels in the sibling
    /// `…_labels`) or a folder holding exactly one `…_codes` / `…_labels` pair.
    ///
    /// # Errors
    ///
    /// [`DataError::Store`] if there is no such pair or more than one.
    pub fn find(path: &Path) -> Result<Self, DataError> {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if let Some(stem) = name.strip_suffix("_codes") {
            let labels = path.with_file_name(format!("{stem}_labels"));
            return if labels.is_dir() {
                Ok(Self { codes: path.into(), labels })
            } else {
                Err(DataError::store(labels, "label folder of the code dump is missing"))
            };
        }
        let entries = std::fs::read_dir(path).map_err(|e| DataError::io(path, e))?;
        let mut found = Vec::new();
        for e in entries {
            let p = e.map_err(|e| DataError::io(path, e))?.path();
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if let Some(stem) = n.strip_suffix("_codes")
                && p.is_dir()
                && path.join(format!("{stem}_labels")).is_dir()
            {
                found.push(stem.to_string());
            }
        }
        match found.as_slice() {
            [stem] => Ok(Self::new(path, stem)),
            [] => Err(DataError::store(
                path,
                "no code dump here (expected NAME_codes/ and NAME_labels/ or codes.parc)",
            )),
            many => Err(DataError::store(
                path,
                format!("several code dumps here ({}); name one", many.join(", ")),
            )),
        }
    }

    /// `{codes}/{idx}.npy`.
    pub fn codes_file(&self, idx: usize) -> PathBuf {
        self.codes.join(format!("{idx}.npy"))
    }

    /// `{labels}/{idx}.npy`.
    pub fn labels_file(&self, idx: usize) -> PathBuf {
        self.labels.join(format!("{idx}.npy"))
    }

    /// Number of samples: files `0.npy … (n−1).npy` present in both folders (the first gap ends
    /// the dump).
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] if a folder cannot be read.
    pub fn count(&self) -> Result<usize, DataError> {
        let mut present = std::collections::HashSet::new();
        for e in std::fs::read_dir(&self.codes).map_err(|e| DataError::io(&self.codes, e))? {
            let e = e.map_err(|e| DataError::io(&self.codes, e))?;
            if let Some(i) = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".npy"))
                .and_then(|n| n.parse::<usize>().ok())
            {
                present.insert(i);
            }
        }
        let mut n = 0;
        while present.contains(&n) && self.labels_file(n).is_file() {
            n += 1;
        }
        Ok(n)
    }

    /// Writes sample `idx` atomically: `codes` holds `views · tokens` ids, view-major.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] on a write failure.
    pub fn write(
        &self,
        idx: usize,
        codes: &[u32],
        views: usize,
        label: u32,
    ) -> Result<(), DataError> {
        let tokens = codes.len() / views;
        let values: Vec<i64> = codes.iter().map(|&c| c as i64).collect();
        let path = self.codes_file(idx);
        par_store::write_atomic(&path, &encode(&[1, views, tokens], &values))
            .map_err(|e| DataError::io(&path, e))?;
        let path = self.labels_file(idx);
        par_store::write_atomic(&path, &encode(&[1], &[label as i64]))
            .map_err(|e| DataError::io(&path, e))
    }

    /// Reads sample `idx`: `(codes [views · tokens], views, label)`.
    ///
    /// # Errors
    ///
    /// [`DataError::Store`] naming the file for a wrong dtype or shape (codes must be `(1, V, N)`
    /// or `(V, N)`, labels `(1,)` or `()`), negative values; [`DataError::Io`] if missing.
    pub fn read(&self, idx: usize) -> Result<(Vec<u32>, usize, u32), DataError> {
        let path = self.codes_file(idx);
        let codes = read_ints(&path)?;
        let views = match codes.shape.as_slice() {
            [1, v, n] | [v, n] if *v > 0 && *n > 0 => *v,
            s => {
                return Err(DataError::store(
                    &path,
                    format!("code array of shape {s:?}, expected (1, views, tokens)"),
                ));
            }
        };
        let codes_u32 = to_u32(&path, &codes.values)?;
        let lpath = self.labels_file(idx);
        let label = read_ints(&lpath)?;
        let label = match (label.shape.as_slice(), label.values.as_slice()) {
            ([1] | [], [l]) => *l,
            (s, _) => {
                return Err(DataError::store(
                    &lpath,
                    format!("label array of shape {s:?}, expected (1,)"),
                ));
            }
        };
        let label = u32::try_from(label).map_err(|_| {
            DataError::store(&lpath, format!("label {label} is negative or too large"))
        })?;
        Ok((codes_u32, views, label))
    }
}

pub(crate) fn to_u32(path: &Path, values: &[i64]) -> Result<Vec<u32>, DataError> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u32::try_from(v).map_err(|_| {
                DataError::store(path, format!("code id {v} at position {i} is not a valid id"))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_wrong_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = LlamaGenDirs::new(dir.path(), "imagenet16");
        dirs.write(0, &[1, 2, 3, 4, 5, 6, 7, 8], 2, 5).unwrap();
        dirs.write(1, &[0; 8], 2, 1).unwrap();
        assert_eq!(dirs.count().unwrap(), 2);
        assert_eq!(dirs.read(0).unwrap(), (vec![1, 2, 3, 4, 5, 6, 7, 8], 2, 5));
        assert_eq!(LlamaGenDirs::find(dir.path()).unwrap(), dirs);
        assert_eq!(LlamaGenDirs::find(&dirs.codes).unwrap(), dirs);
        // The reference's file: int64 (1, 2, 4).
        let raw = crate::npy::read_ints(&dirs.codes_file(0)).unwrap();
        assert_eq!(raw.shape, [1, 2, 4]);
        // Wrong dtype and shape.
        std::fs::write(dirs.codes_file(1), crate::npy::encode(&[1, 2, 4], &[0.5f32; 8])).unwrap();
        let err = dirs.read(1).unwrap_err().to_string();
        assert!(err.contains("1.npy") && err.contains("integer"), "{err}");
        std::fs::write(dirs.codes_file(1), crate::npy::encode(&[8], &[0i64; 8])).unwrap();
        assert!(dirs.read(1).unwrap_err().to_string().contains("shape"));
        std::fs::write(dirs.codes_file(1), crate::npy::encode(&[1, 2, 4], &[-1i64; 8])).unwrap();
        assert!(dirs.read(1).unwrap_err().to_string().contains("-1"));
    }
}
