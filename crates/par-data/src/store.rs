//! [`CodeStore`]: one reader over both code-store formats.

use std::path::{Path, PathBuf};

use crate::DataError;
use crate::compact::CompactReader;
use crate::llamagen::LlamaGenDirs;

/// File name of the compact store inside an output folder.
pub const COMPACT_FILE: &str = "codes.parc";
/// File name of the tokenize report (classes, codebook size, provenance) next to a dump.
pub const REPORT_FILE: &str = "tokenize.json";

/// What a code store holds.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeStoreInfo {
    /// Samples.
    pub num_images: usize,
    /// Views per sample.
    pub views: usize,
    /// Code grid `[h, w]` of one latent frame (square for LlamaGen dumps: `√tokens`).
    pub grid: [usize; 2],
    /// Latent frames per view (1 for images and LlamaGen dumps).
    pub frames: usize,
    /// Codebook entries, when recorded (compact stores and our LlamaGen dumps; reference dumps
    /// do not record it).
    pub codebook_size: Option<usize>,
    /// Class names, when recorded.
    pub classes: Vec<String>,
}

impl CodeStoreInfo {
    /// Tokens per view, `frames·h·w`.
    pub fn tokens(&self) -> usize {
        self.frames * self.grid[0] * self.grid[1]
    }
}

#[derive(Debug)]
enum Kind {
    Compact(CompactReader),
    LlamaGen(LlamaGenDirs),
}

/// A pre-tokenized dataset: a compact file ([`crate::compact`]) or a LlamaGen dump
/// ([`crate::llamagen`]).
#[derive(Debug)]
pub struct CodeStore {
    path: PathBuf,
    info: CodeStoreInfo,
    kind: Kind,
}

#[derive(serde::Deserialize)]
struct ReportMeta {
    codebook_size: Option<usize>,
    #[serde(default)]
    classes: Vec<String>,
}

impl CodeStore {
    /// Opens `path`: a compact file, a folder holding `codes.parc`, a folder holding one
    /// `NAME_codes`/`NAME_labels` pair, or a `NAME_codes` folder.
    ///
    /// # Errors
    ///
    /// [`DataError`] naming the file: missing path, empty dump, bad header, sample 0 unreadable.
    pub fn open(path: &Path) -> Result<Self, DataError> {
        if !path.exists() {
            return Err(DataError::io(path, std::io::ErrorKind::NotFound.into()));
        }
        let compact = if path.is_file() {
            Some(path.to_path_buf())
        } else {
            Some(path.join(COMPACT_FILE)).filter(|p| p.is_file())
        };
        if let Some(file) = compact {
            let reader = CompactReader::open(&file)?;
            let h = reader.header();
            let info = CodeStoreInfo {
                num_images: h.num_images,
                views: h.views,
                grid: h.grid,
                frames: h.frames,
                codebook_size: Some(h.codebook_size),
                classes: h.classes.clone(),
            };
            return Ok(Self { path: file, info, kind: Kind::Compact(reader) });
        }
        let dirs = LlamaGenDirs::find(path)?;
        let num_images = dirs.count()?;
        if num_images == 0 {
            return Err(DataError::store(&dirs.codes, "no samples (expected 0.npy, 1.npy, …)"));
        }
        let (codes, views, _) = dirs.read(0)?;
        let tokens = codes.len() / views;
        let side = (tokens as f64).sqrt().round() as usize;
        if side * side != tokens {
            return Err(DataError::store(
                dirs.codes_file(0),
                format!("{tokens} tokens per view is not a square grid"),
            ));
        }
        let report = dirs.codes.parent().map(|p| p.join(REPORT_FILE)).filter(|p| p.is_file());
        let meta = match report {
            Some(r) => {
                let bytes = std::fs::read(&r).map_err(|e| DataError::io(&r, e))?;
                serde_json::from_slice::<ReportMeta>(&bytes)
                    .map_err(|e| DataError::store(&r, e.to_string()))?
            }
            None => ReportMeta { codebook_size: None, classes: Vec::new() },
        };
        let info = CodeStoreInfo {
            num_images,
            views,
            grid: [side, side],
            frames: 1,
            codebook_size: meta.codebook_size,
            classes: meta.classes,
        };
        Ok(Self { path: dirs.codes.clone(), info, kind: Kind::LlamaGen(dirs) })
    }

    /// What the store holds.
    pub fn info(&self) -> &CodeStoreInfo {
        &self.info
    }

    /// The file or folder read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sample `i`: `(codes [views · tokens], label)`.
    ///
    /// # Errors
    ///
    /// [`DataError`] naming the file for a read failure, a shape that differs from sample 0 or
    /// an id beyond the recorded codebook.
    pub fn sample(&self, i: usize) -> Result<(Vec<u32>, u32), DataError> {
        match &self.kind {
            Kind::Compact(r) => Ok((r.read_range(i, 1)?, r.labels()[i])),
            Kind::LlamaGen(d) => {
                let (codes, views, label) = d.read(i)?;
                if views != self.info.views || codes.len() != views * self.info.tokens() {
                    return Err(DataError::store(
                        d.codes_file(i),
                        format!(
                            "{} views × {} tokens, sample 0 has {} × {}",
                            views,
                            codes.len() / views,
                            self.info.views,
                            self.info.tokens()
                        ),
                    ));
                }
                if let Some(k) = self.info.codebook_size
                    && let Some((p, &c)) = codes.iter().enumerate().find(|&(_, &c)| c as usize >= k)
                {
                    return Err(DataError::CodeRange {
                        path: d.codes_file(i),
                        code: c as i64,
                        position: p,
                        codebook_size: k,
                    });
                }
                Ok((codes, label))
            }
        }
    }

    /// Every sample in memory: `(codes [N · views · tokens], labels [N])`; `progress` is called
    /// with the number of samples read so far.
    ///
    /// # Errors
    ///
    /// As [`CodeStore::sample`].
    pub fn load_all(
        &self,
        mut progress: impl FnMut(usize),
    ) -> Result<(Vec<u32>, Vec<u32>), DataError> {
        match &self.kind {
            Kind::Compact(r) => {
                let codes = r.read_range(0, self.info.num_images)?;
                progress(self.info.num_images);
                Ok((codes, r.labels().to_vec()))
            }
            Kind::LlamaGen(_) => {
                let mut codes =
                    Vec::with_capacity(self.info.num_images * self.info.views * self.info.tokens());
                let mut labels = Vec::with_capacity(self.info.num_images);
                for i in 0..self.info.num_images {
                    let (c, l) = self.sample(i)?;
                    codes.extend(c);
                    labels.push(l);
                    if i % 1024 == 1023 {
                        progress(i + 1);
                    }
                }
                progress(self.info.num_images);
                Ok((codes, labels))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llamagen_ids_beyond_the_recorded_codebook_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = LlamaGenDirs::new(dir.path(), "x");
        dirs.write(0, &[1, 2, 3, 4], 1, 0).unwrap();
        dirs.write(1, &[1, 2, 99, 4], 1, 0).unwrap();
        std::fs::write(dir.path().join(REPORT_FILE), br#"{"codebook_size": 16, "classes": ["a"]}"#)
            .unwrap();
        let store = CodeStore::open(dir.path()).unwrap();
        assert_eq!(store.info().grid, [2, 2]);
        assert_eq!(store.sample(0).unwrap(), (vec![1, 2, 3, 4], 0));
        let err = store.sample(1).unwrap_err();
        assert!(
            matches!(&err, DataError::CodeRange { code: 99, position: 2, codebook_size: 16, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("1.npy"));
        assert!(CodeStore::open(&dir.path().join("missing")).is_err());
        let empty = tempfile::tempdir().unwrap();
        assert!(CodeStore::open(empty.path()).unwrap_err().to_string().contains("no code dump"));
    }
}
