//! The compact code store: one file holding every sample's views and label, for fast training
//! reads (format in `docs/data.md`).
//!
//! ```text
//! offset 0   8 bytes  magic "PARCODES"
//!        8   u64 LE   header length H
//!       16   H bytes  header, UTF-8 JSON (CompactHeader), then zero padding to a multiple of 8
//!            N × u32 LE    labels, then zero padding to a multiple of 8
//!            N × V × T × {u16 | u32} LE   codes, sample-major, then view, then raster order
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::DataError;

/// The 8 bytes every compact store starts with.
pub const MAGIC: &[u8; 8] = b"PARCODES";
/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;

/// The JSON header of a compact store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactHeader {
    /// [`VERSION`].
    pub version: u32,
    /// Samples `N`.
    pub num_images: usize,
    /// Views per sample `V` (10 with ten-crop, 2 with centre + flip).
    pub views: usize,
    /// Code grid `[h, w]` of one latent frame.
    pub grid: [usize; 2],
    /// Latent frames per view (1 for images; 5 for 17-frame clips, docs/spec.md §8); tokens per
    /// view `T = frames·h·w`, raster order over (frame, row, column). Absent in stores written
    /// before video (read as 1).
    #[serde(default = "one")]
    pub frames: usize,
    /// Codebook entries; every id is below it.
    pub codebook_size: usize,
    /// `"u16"` when the codebook has at most 65,536 entries, else `"u32"`.
    pub code_dtype: String,
    /// Class names; labels index them.
    pub classes: Vec<String>,
    /// Provenance: tokenizer, augmentation, source (free-form).
    #[serde(default)]
    pub meta: serde_json::Value,
}

fn one() -> usize {
    1
}

impl CompactHeader {
    /// Tokens per view, `frames·h·w` (saturating: a damaged header's absurd sizes then fail the
    /// file-length check instead of overflowing).
    pub fn tokens(&self) -> usize {
        self.frames.saturating_mul(self.grid[0]).saturating_mul(self.grid[1])
    }

    fn code_bytes(&self) -> usize {
        if self.code_dtype == "u16" { 2 } else { 4 }
    }

    /// The code dtype for a codebook size.
    pub fn dtype_for(codebook_size: usize) -> &'static str {
        if codebook_size <= 1 << 16 { "u16" } else { "u32" }
    }
}

fn pad8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Serialises a store: header, labels and `num_images · views · tokens` codes.
///
/// # Errors
///
/// [`DataError::Store`] if the lengths disagree with the header or a code id is not below the
/// codebook size (`path` is named).
pub fn encode(
    path: &Path,
    header: &CompactHeader,
    labels: &[u32],
    codes: &[u32],
) -> Result<Vec<u8>, DataError> {
    let per = header.views * header.tokens();
    if labels.len() != header.num_images || codes.len() != header.num_images * per {
        return Err(DataError::store(
            path,
            format!(
                "{} labels and {} codes for {} samples of {per} codes",
                labels.len(),
                codes.len(),
                header.num_images
            ),
        ));
    }
    if let Some((i, &c)) =
        codes.iter().enumerate().find(|&(_, &c)| c as usize >= header.codebook_size)
    {
        return Err(DataError::CodeRange {
            path: path.into(),
            code: c as i64,
            position: i,
            codebook_size: header.codebook_size,
        });
    }
    let json = serde_json::to_vec(header).expect("header serialises");
    let mut out = Vec::with_capacity(
        16 + pad8(json.len()) + pad8(4 * labels.len()) + codes.len() * header.code_bytes(),
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.resize(16 + pad8(json.len()), 0);
    labels.iter().for_each(|l| out.extend_from_slice(&l.to_le_bytes()));
    out.resize(pad8(out.len()), 0);
    if header.code_bytes() == 2 {
        codes.iter().for_each(|&c| out.extend_from_slice(&(c as u16).to_le_bytes()));
    } else {
        codes.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
    }
    Ok(out)
}

/// Writes a store piece by piece (header and labels first, then the codes in sample order)
/// through a temporary file that [`StreamWriter::finish`] renames into place: memory stays at one
/// piece, and a reader never sees a partial store.
pub struct StreamWriter {
    path: PathBuf,
    file: std::io::BufWriter<tempfile::NamedTempFile>,
    header: CompactHeader,
    written: usize,
}

impl StreamWriter {
    /// Starts a store at `path` with its header and all labels.
    ///
    /// # Errors
    ///
    /// [`DataError::Store`] if the label count differs from the header; [`DataError::Io`].
    pub fn create(path: &Path, header: &CompactHeader, labels: &[u32]) -> Result<Self, DataError> {
        if labels.len() != header.num_images {
            return Err(DataError::store(
                path,
                format!("{} labels for {} samples", labels.len(), header.num_images),
            ));
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, e))?;
        let tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| DataError::io(dir, e))?;
        let json = serde_json::to_vec(header).expect("header serialises");
        let mut head = MAGIC.to_vec();
        head.extend_from_slice(&(json.len() as u64).to_le_bytes());
        head.extend_from_slice(&json);
        head.resize(16 + pad8(json.len()), 0);
        labels.iter().for_each(|l| head.extend_from_slice(&l.to_le_bytes()));
        head.resize(pad8(head.len()), 0);
        let mut file = std::io::BufWriter::new(tmp);
        std::io::Write::write_all(&mut file, &head).map_err(|e| DataError::io(path, e))?;
        Ok(Self { path: path.into(), file, header: header.clone(), written: 0 })
    }

    /// Appends the codes of whole samples (`k · views · tokens` ids).
    ///
    /// # Errors
    ///
    /// [`DataError::CodeRange`] for an id not below the codebook size, [`DataError::Store`] for
    /// a partial sample or too many samples; [`DataError::Io`].
    pub fn append(&mut self, codes: &[u32]) -> Result<(), DataError> {
        let per = self.header.views * self.header.tokens();
        if !codes.len().is_multiple_of(per)
            || self.written + codes.len() / per > self.header.num_images
        {
            return Err(DataError::store(
                &self.path,
                format!(
                    "{} codes do not complete samples of {per} within {}",
                    codes.len(),
                    self.header.num_images
                ),
            ));
        }
        if let Some((i, &c)) =
            codes.iter().enumerate().find(|&(_, &c)| c as usize >= self.header.codebook_size)
        {
            return Err(DataError::CodeRange {
                path: self.path.clone(),
                code: c as i64,
                position: self.written * per + i,
                codebook_size: self.header.codebook_size,
            });
        }
        let mut bytes = Vec::with_capacity(codes.len() * self.header.code_bytes());
        if self.header.code_bytes() == 2 {
            codes.iter().for_each(|&c| bytes.extend_from_slice(&(c as u16).to_le_bytes()));
        } else {
            codes.iter().for_each(|c| bytes.extend_from_slice(&c.to_le_bytes()));
        }
        std::io::Write::write_all(&mut self.file, &bytes)
            .map_err(|e| DataError::io(&self.path, e))?;
        self.written += codes.len() / per;
        Ok(())
    }

    /// Checks that every sample was written, then renames the file into place (rw-r--r--).
    ///
    /// # Errors
    ///
    /// [`DataError::Store`] for missing samples; [`DataError::Io`].
    pub fn finish(self) -> Result<(), DataError> {
        if self.written != self.header.num_images {
            return Err(DataError::store(
                &self.path,
                format!("{} of {} samples written", self.written, self.header.num_images),
            ));
        }
        let path = self.path.clone();
        let tmp = self.file.into_inner().map_err(|e| DataError::io(&path, e.into_error()))?;
        #[cfg(unix)]
        tmp.as_file()
            .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(|e| DataError::io(&path, e))?;
        tmp.as_file().sync_all().map_err(|e| DataError::io(&path, e))?;
        tmp.persist(&path).map_err(|e| DataError::io(&path, e.error))?;
        Ok(())
    }
}

/// An open compact store; reads samples with positioned reads (no seeking state, shareable
/// across threads).
#[derive(Debug)]
pub struct CompactReader {
    path: PathBuf,
    file: File,
    header: CompactHeader,
    labels: Vec<u32>,
    codes_offset: u64,
}

fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n = std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            )?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

impl CompactReader {
    /// Opens and validates a store (magic, header, file length, labels).
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] if unreadable; [`DataError::Store`] naming the file for a wrong magic, a
    /// bad header, an unsupported version or a length that disagrees with the header
    /// (truncated file).
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
        let bad = |r: String| DataError::store(path, r);
        let mut head = [0u8; 16];
        if len < 16 {
            return Err(bad(format!("{len} bytes: not a compact code store")));
        }
        read_at(&file, &mut head, 0).map_err(|e| DataError::io(path, e))?;
        if &head[..8] != MAGIC {
            return Err(bad("not a compact code store (magic is not PARCODES)".into()));
        }
        let hlen = u64::from_le_bytes(head[8..].try_into().unwrap());
        if hlen > len - 16 {
            return Err(bad(format!(
                "header length {hlen} exceeds the file ({len} bytes): truncated"
            )));
        }
        let mut json = vec![0; hlen as usize];
        read_at(&file, &mut json, 16).map_err(|e| DataError::io(path, e))?;
        let header: CompactHeader =
            serde_json::from_slice(&json).map_err(|e| bad(format!("header: {e}")))?;
        if header.version != VERSION {
            return Err(bad(format!(
                "format version {} (this build reads {VERSION})",
                header.version
            )));
        }
        if !matches!(header.code_dtype.as_str(), "u16" | "u32")
            || header.views == 0
            || header.tokens() == 0
        {
            return Err(bad(format!(
                "header: dtype {:?}, views {}, grid {:?}, frames {}",
                header.code_dtype, header.views, header.grid, header.frames
            )));
        }
        // Sizes whose byte count overflows cannot match any file.
        if header
            .num_images
            .checked_mul(header.views)
            .and_then(|n| n.checked_mul(header.tokens()))
            .and_then(|n| n.checked_mul(header.code_bytes()))
            .is_none_or(|n| n == usize::MAX || header.num_images > usize::MAX / 8)
        {
            return Err(bad(format!(
                "header: {} samples × {} views × {} tokens do not fit in memory",
                header.num_images,
                header.views,
                header.tokens()
            )));
        }
        let labels_offset = 16 + pad8(hlen as usize) as u64;
        let codes_offset = labels_offset + pad8(4 * header.num_images) as u64;
        let expected = codes_offset
            + (header.num_images * header.views * header.tokens() * header.code_bytes()) as u64;
        if len != expected {
            return Err(bad(format!(
                "{len} bytes, the header describes {expected}: truncated or corrupt"
            )));
        }
        let mut raw = vec![0u8; 4 * header.num_images];
        read_at(&file, &mut raw, labels_offset).map_err(|e| DataError::io(path, e))?;
        let labels: Vec<u32> =
            raw.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        if let Some(l) = labels
            .iter()
            .find(|&&l| !header.classes.is_empty() && l as usize >= header.classes.len())
        {
            return Err(bad(format!("label {l} but {} classes", header.classes.len())));
        }
        Ok(Self { path: path.into(), file, header, labels, codes_offset })
    }

    /// The header.
    pub fn header(&self) -> &CompactHeader {
        &self.header
    }

    /// All labels.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// Codes of samples `start..start + count`, all views: `count · views · tokens` ids.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] on a read failure; [`DataError::Store`] for a range past the end;
    /// [`DataError::CodeRange`] for an id not below the codebook size.
    pub fn read_range(&self, start: usize, count: usize) -> Result<Vec<u32>, DataError> {
        if start + count > self.header.num_images {
            return Err(DataError::store(
                &self.path,
                format!(
                    "samples {start}..{} past the end ({})",
                    start + count,
                    self.header.num_images
                ),
            ));
        }
        let per = self.header.views * self.header.tokens();
        let width = self.header.code_bytes();
        let mut raw = vec![0u8; count * per * width];
        let offset = self.codes_offset + (start * per * width) as u64;
        read_at(&self.file, &mut raw, offset).map_err(|e| DataError::io(&self.path, e))?;
        let codes: Vec<u32> = if width == 2 {
            raw.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as u32).collect()
        } else {
            raw.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect()
        };
        if let Some((i, &c)) =
            codes.iter().enumerate().find(|&(_, &c)| c as usize >= self.header.codebook_size)
        {
            return Err(DataError::CodeRange {
                path: self.path.clone(),
                code: c as i64,
                position: start * per + i,
                codebook_size: self.header.codebook_size,
            });
        }
        Ok(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(n: usize, k: usize) -> CompactHeader {
        CompactHeader {
            version: VERSION,
            num_images: n,
            views: 2,
            grid: [2, 3],
            frames: 1,
            codebook_size: k,
            code_dtype: CompactHeader::dtype_for(k).into(),
            classes: vec!["a".into(), "b".into()],
            meta: serde_json::json!({"note": "test"}),
        }
    }

    #[test]
    fn round_trip_in_both_widths_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        for k in [1000, 70_000] {
            let path = dir.path().join(format!("c{k}.parc"));
            let codes: Vec<u32> = (0..3 * 12).map(|i| (i * 997 % k) as u32).collect();
            let bytes = encode(&path, &header(3, k), &[1, 0, 1], &codes).unwrap();
            std::fs::write(&path, &bytes).unwrap();
            let r = CompactReader::open(&path).unwrap();
            assert_eq!(r.header(), &header(3, k));
            assert_eq!(r.labels(), [1, 0, 1]);
            assert_eq!(r.read_range(0, 3).unwrap(), codes);
            assert_eq!(r.read_range(1, 1).unwrap(), codes[12..24]);
            assert!(r.read_range(2, 2).is_err());
            std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
            let err = CompactReader::open(&path).unwrap_err().to_string();
            assert!(err.contains(&format!("c{k}.parc")) && err.contains("truncated"), "{err}");
        }
        // The streamed file equals the one-shot encoding.
        let path = dir.path().join("stream.parc");
        let codes: Vec<u32> = (0..3 * 12).map(|i| i as u32).collect();
        let mut w = StreamWriter::create(&path, &header(3, 1000), &[1, 0, 1]).unwrap();
        w.append(&codes[..12]).unwrap();
        w.append(&codes[12..]).unwrap();
        w.finish().unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            encode(&path, &header(3, 1000), &[1, 0, 1], &codes).unwrap()
        );
        let mut w = StreamWriter::create(&path, &header(3, 1000), &[1, 0, 1]).unwrap();
        w.append(&codes[..12]).unwrap();
        assert!(w.finish().is_err(), "an incomplete store is not renamed into place");
        let path = dir.path().join("bad.parc");
        assert!(matches!(
            encode(&path, &header(1, 10), &[0], &[10; 12]),
            Err(DataError::CodeRange { code: 10, position: 0, .. })
        ));
        std::fs::write(&path, b"PARCODEX........").unwrap();
        assert!(CompactReader::open(&path).unwrap_err().to_string().contains("magic"));
    }
}
