//! Output locations checked before any compute, and folders removed again when a command fails.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::InvalidInput;

/// The nearest ancestor of `dir` that exists (`.` for a relative path with none).
fn existing_ancestor(dir: &Path) -> PathBuf {
    let mut at = dir;
    loop {
        if at.as_os_str().is_empty() {
            return PathBuf::from(".");
        }
        if std::fs::symlink_metadata(at).is_ok() {
            return at.to_path_buf();
        }
        match at.parent() {
            Some(p) => at = p,
            None => return PathBuf::from("."),
        }
    }
}

/// Checks that folder `dir` exists and can be written, or can be created: its nearest existing
/// ancestor is a folder in which a (removed at once) probe file can be created. Creates nothing.
fn check_writable(dir: &Path, flag: &str, target: &Path) -> Result<(), InvalidInput> {
    let at = existing_ancestor(dir);
    let fail = |why: String| InvalidInput(format!("{flag} {}: {why}", target.display()));
    if !at.is_dir() {
        return Err(fail(format!("{} is not a folder", at.display())));
    }
    tempfile::Builder::new()
        .prefix(".par-write-check")
        .tempfile_in(&at)
        .map(drop)
        .map_err(|e| fail(format!("cannot write in {}: {e}", at.display())))
}

/// The folders `create_dir_all(dir)` would create, outermost first.
fn missing_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && std::fs::symlink_metadata(a).is_err())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

/// Removes the given folders, innermost first, as long as they are empty.
fn remove_empty(created: &[PathBuf]) {
    for dir in created.iter().rev() {
        if std::fs::remove_dir(dir).is_err() {
            break;
        }
    }
}

/// A file a command will write (`--out x.npy`): checked when the command starts, written
/// atomically at the end, its missing parent folders created only then.
#[derive(Debug, Clone)]
pub struct OutputFile {
    path: PathBuf,
}

impl OutputFile {
    /// Checks `path` before any work: not a folder, and its folder exists and is writable or
    /// can be created. Creates nothing.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] naming `flag` and the path.
    pub fn check(path: &Path, flag: &str) -> Result<Self, InvalidInput> {
        if path.is_dir() {
            return Err(InvalidInput(format!(
                "{flag} {}: is a directory; give a file name",
                path.display()
            )));
        }
        let dir = path.parent().unwrap_or(Path::new(""));
        check_writable(dir, flag, path)?;
        Ok(Self { path: path.to_path_buf() })
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` atomically (temporary file + rename), creating the missing parent folders;
    /// if the write fails, the folders it created are removed again.
    ///
    /// # Errors
    ///
    /// The I/O error, naming the path.
    pub fn write(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new(""));
        let created = missing_dirs(dir);
        let result = par_store::write_atomic(&self.path, bytes)
            .with_context(|| format!("writing {}", self.path.display()));
        if result.is_err() {
            remove_empty(&created);
        }
        result
    }
}

/// A folder a job writes into (a run directory, a code store): checked when the command
/// starts; the folders the command creates for it are removed again when the command fails and
/// leaves them empty (a job that saved progress keeps its folder). Call [`OutputDir::keep`] on
/// success.
#[derive(Debug)]
pub struct OutputDir {
    path: PathBuf,
    created: Vec<PathBuf>,
    keep: bool,
}

impl OutputDir {
    /// Checks `path` before any work: an existing folder that can be written, or a folder that
    /// can be created. Creates nothing.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] naming `flag` and the path.
    pub fn check(path: &Path, flag: &str) -> Result<Self, InvalidInput> {
        if path.exists() && !path.is_dir() {
            return Err(InvalidInput(format!(
                "{flag} {}: is a file, not a folder",
                path.display()
            )));
        }
        check_writable(path, flag, path)?;
        Ok(Self { path: path.to_path_buf(), created: missing_dirs(path), keep: false })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The command succeeded (or saved progress worth keeping): nothing is removed.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        if !self.keep {
            remove_empty(&self.created);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_below_a_file_or_at_a_folder_are_refused_and_nothing_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("f");
        std::fs::write(&blocker, b"x").unwrap();
        let e = OutputFile::check(&blocker.join("a/b.npy"), "--out").unwrap_err();
        assert!(e.0.contains("--out") && e.0.contains("is not a folder"), "{e}");
        assert!(OutputFile::check(dir.path(), "--out").unwrap_err().0.contains("is a directory"));
        let ok = OutputFile::check(&dir.path().join("new/sub/x.npy"), "--out").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing created");
        ok.write(b"data").unwrap();
        assert_eq!(std::fs::read(dir.path().join("new/sub/x.npy")).unwrap(), b"data");
    }

    #[test]
    fn a_dropped_output_dir_removes_the_empty_folders_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("a/b/run");
        let out = OutputDir::check(&run, "--out").unwrap();
        std::fs::create_dir_all(&run).unwrap();
        drop(out);
        assert!(!dir.path().join("a").exists());
        // Progress inside: kept.
        let out = OutputDir::check(&run, "--out").unwrap();
        std::fs::create_dir_all(run.join("checkpoint")).unwrap();
        drop(out);
        assert!(run.join("checkpoint").is_dir());
        // A folder that existed before is never removed.
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        drop(OutputDir::check(&existing, "--out").unwrap());
        assert!(existing.is_dir());
    }
}
