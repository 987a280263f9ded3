//! Fingerprints of a job's input files, so a resumed job refuses an input that changed since it
//! started (a checkpoint retrained in place, a dataset edited between two runs) instead of
//! mixing the work of two inputs.
//!
//! A fingerprint is the file's size and the 128-bit XXH3 hash of its bytes (`xxhash-rust`, the
//! hash Burn's own `cubecl-common` uses), streamed in 1 MiB reads: the file is never held in
//! memory. XXH3 runs at memory speed, so the cost is reading the file once: 0.36 s for a 1.5 GB
//! checkpoint in the page cache, 0.92 s from disk (docs/checkpoints.md, 2026-12-07). It detects change, not tampering: it is not a cryptographic hash.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One input file as a job recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFingerprint {
    /// The path as given (for messages; the content decides whether it changed).
    pub path: PathBuf,
    /// Size in bytes.
    pub bytes: u64,
    /// XXH3-128 of the content, 32 lowercase hex digits.
    pub xxh3: String,
}

impl FileFingerprint {
    /// Fingerprints `path`, reading it once in 1 MiB pieces.
    ///
    /// # Errors
    ///
    /// The I/O error of opening or reading the file.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        let mut buffer = vec![0u8; 1 << 20];
        let mut bytes = 0u64;
        loop {
            let n = match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buffer[..n]);
            bytes += n as u64;
        }
        Ok(Self { path: path.to_path_buf(), bytes, xxh3: format!("{:032x}", hasher.digest128()) })
    }

    /// The fingerprint of bytes already in memory (e.g. an image file a job has read anyway),
    /// equal to [`FileFingerprint::of`] of a file holding them.
    pub fn of_bytes(path: &Path, data: &[u8]) -> Self {
        Self {
            path: path.to_path_buf(),
            bytes: data.len() as u64,
            xxh3: format!("{:032x}", xxhash_rust::xxh3::xxh3_128(data)),
        }
    }

    /// Whether the content is the same (the path may differ: a moved file is the same input).
    pub fn same_content(&self, other: &FileFingerprint) -> bool {
        self.bytes == other.bytes && self.xxh3 == other.xxh3
    }
}

/// An input that differs from the one a job was started with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{role} {path} changed since the job in {job} started ({change}); give the original file, or choose another output folder to start afresh"
)]
pub struct InputChanged {
    /// What the input is (the flag that gives it, e.g. `--checkpoint`).
    pub role: String,
    /// The file now.
    pub path: PathBuf,
    /// The job's folder.
    pub job: PathBuf,
    /// What differs, in words.
    pub change: String,
}

/// The fingerprints of a job's inputs under their roles (`--checkpoint`, `--tokenizer`, …),
/// stored in the job's manifest and compared on resume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InputFingerprints(pub BTreeMap<String, FileFingerprint>);

impl InputFingerprints {
    /// Fingerprints every `(role, file)`; roles without a file are left out.
    ///
    /// # Errors
    ///
    /// The I/O error, with the file's path.
    pub fn of<'a>(
        files: impl IntoIterator<Item = (&'a str, Option<&'a Path>)>,
    ) -> Result<Self, crate::CheckpointError> {
        let mut map = BTreeMap::new();
        for (role, path) in files {
            if let Some(path) = path {
                let f = FileFingerprint::of(path)
                    .map_err(|source| crate::CheckpointError::Io { path: path.into(), source })?;
                map.insert(role.to_string(), f);
            }
        }
        Ok(Self(map))
    }

    /// Whether anything was recorded (a job started by a version before fingerprints records
    /// nothing: its inputs can only be compared by path).
    pub fn is_recorded(&self) -> bool {
        !self.0.is_empty()
    }

    /// Checks that `now` has the inputs of `self` (the job's record) with the same content, in
    /// role order; `job` is the job's folder, for the message.
    ///
    /// # Errors
    ///
    /// [`InputChanged`] for the first input that was added, removed or changed.
    pub fn check_unchanged(&self, now: &InputFingerprints, job: &Path) -> Result<(), InputChanged> {
        let roles: std::collections::BTreeSet<&String> =
            self.0.keys().chain(now.0.keys()).collect();
        for role in roles {
            let change = match (self.0.get(role), now.0.get(role)) {
                (Some(a), Some(b)) if a.same_content(b) => continue,
                (Some(a), Some(b)) if a.bytes != b.bytes => {
                    format!("{} bytes then, {} bytes now", a.bytes, b.bytes)
                }
                (Some(a), Some(_)) => {
                    format!("same size, other content than {} had", a.path.display())
                }
                (Some(a), None) => format!("the job was started with {}", a.path.display()),
                (None, Some(_)) => "the job was started without it".to_string(),
                (None, None) => continue,
            };
            let path = now.0.get(role).or(self.0.get(role)).map(|f| f.path.clone());
            return Err(InputChanged {
                role: role.clone(),
                path: path.unwrap_or_default(),
                job: job.to_path_buf(),
                change,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_stream_and_detect_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.bin");
        // Over 1 MiB, so the streamed hash crosses a read boundary: it must equal the one-shot
        // hash of the same bytes.
        let data: Vec<u8> =
            (0..(3 << 20) + 17).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = FileFingerprint::of(&path).unwrap();
        assert_eq!(f, FileFingerprint::of_bytes(&path, &data));
        assert_eq!(f.bytes, data.len() as u64);
        assert_eq!(f.xxh3.len(), 32);
        // The empty input's XXH3-128, a published constant (xxhash's test vectors).
        assert_eq!(FileFingerprint::of_bytes(&path, b"").xxh3, "99aa06d3014798d86001c324468d497f");

        let before =
            InputFingerprints::of([("--checkpoint", Some(path.as_path())), ("--x", None)]).unwrap();
        assert_eq!(before.0.len(), 1);
        before.check_unchanged(&before.clone(), dir.path()).unwrap();
        // One byte changed, same size.
        let mut changed = data.clone();
        changed[2 << 20] ^= 1;
        std::fs::write(&path, &changed).unwrap();
        let now = InputFingerprints::of([("--checkpoint", Some(path.as_path()))]).unwrap();
        let e = before.check_unchanged(&now, dir.path()).unwrap_err();
        assert_eq!(e.role, "--checkpoint");
        assert!(e.to_string().contains("same size, other content"), "{e}");
        // Another size.
        std::fs::write(&path, b"short").unwrap();
        let now = InputFingerprints::of([("--checkpoint", Some(path.as_path()))]).unwrap();
        let e = before.check_unchanged(&now, dir.path()).unwrap_err();
        assert!(e.to_string().contains("bytes then, 5 bytes now"), "{e}");
        // An input the job did not have.
        let e = InputFingerprints::default().check_unchanged(&now, dir.path()).unwrap_err();
        assert!(e.to_string().contains("started without it"), "{e}");
    }
}
