//! Output locations checked before any compute, and folders removed again when a command fails.
//!
//! Every output is also checked against the command's inputs (**outputs never alias inputs**): an
//! output file must not be an input file (by canonical path, or the same file through a hard
//! link); an output folder must not be an input, hold an input, or lie inside an input folder.

use std::path::{Component, Path, PathBuf};

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
/// ancestor is a folder the process may write in (`access(W_OK)`: permissions and read-only
/// file systems). Creates and touches nothing, so a finished job run again leaves even its
/// folder's modification time alone.
fn check_writable(dir: &Path, flag: &str, target: &Path) -> Result<(), InvalidInput> {
    let at = existing_ancestor(dir);
    let fail = |why: String| InvalidInput(format!("{flag} {}: {why}", target.display()));
    if !at.is_dir() {
        return Err(fail(format!("{} is not a folder", at.display())));
    }
    #[cfg(unix)]
    let writable =
        rustix::fs::access(&at, rustix::fs::Access::WRITE_OK).map_err(std::io::Error::from);
    #[cfg(not(unix))]
    let writable = tempfile::Builder::new().prefix(".par-write-check").tempfile_in(&at).map(drop);
    writable.map_err(|e| fail(format!("cannot write in {}: {e}", at.display())))
}

/// A command's input files and folders under the flags that give them (`None`: not given).
pub type Inputs<'a> = [(&'a str, Option<&'a Path>)];

/// `path` made absolute with links resolved, also when it does not exist yet: walked component
/// by component from the root, each existing prefix canonicalised (so a link is followed before
/// a `..` after it is applied), `..` of a missing component folded lexically (a missing folder
/// cannot be a link), `.` dropped.
fn resolved(path: &Path) -> PathBuf {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => out.push(component),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => {
                out.push(name);
                if let Ok(canonical) = out.canonicalize() {
                    out = canonical;
                }
            }
        }
    }
    out
}

/// Whether two existing paths are the same file or folder (the same inode, so hard links and
/// symbolic links count).
fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    resolved(a) == resolved(b)
}

fn alias(flag: &str, out: &Path, input_flag: &str, input: &Path, why: &str) -> InvalidInput {
    InvalidInput(format!(
        "{flag} {} {why} {input_flag} {}: an output must never overwrite or mix with an input; choose another {flag}",
        out.display(),
        input.display()
    ))
}

/// Refuses an input that does not exist, naming its flag (before any work, so a typo is not
/// reported as a bare OS error after minutes of loading).
///
/// # Errors
///
/// [`InvalidInput`] `--flag PATH: no such file or folder`.
pub fn check_inputs_exist(inputs: &Inputs<'_>) -> Result<(), InvalidInput> {
    for (flag, input) in inputs.iter().filter_map(|(f, p)| p.map(|p| (*f, p))) {
        if std::fs::metadata(input).is_err() {
            return Err(InvalidInput(format!(
                "{flag} {}: no such file or folder",
                input.display()
            )));
        }
    }
    Ok(())
}

/// Refuses an output file that is one of the inputs.
fn check_file_apart(path: &Path, flag: &str, inputs: &Inputs<'_>) -> Result<(), InvalidInput> {
    for (input_flag, input) in inputs.iter().filter_map(|(f, p)| p.map(|p| (*f, p))) {
        let is_input = if path.exists() && input.exists() {
            same_file(path, input)
        } else {
            resolved(path) == resolved(input)
        };
        if is_input {
            return Err(alias(flag, path, input_flag, input, "is the same file as"));
        }
        // A file written into a folder the command reads as its input set.
        if input.is_dir() && resolved(path).starts_with(resolved(input)) {
            return Err(alias(flag, path, input_flag, input, "lies inside the input folder"));
        }
    }
    Ok(())
}

/// Refuses an output folder that is, holds, or lies inside one of the inputs.
fn check_dir_apart(path: &Path, flag: &str, inputs: &Inputs<'_>) -> Result<(), InvalidInput> {
    let out = resolved(path);
    for (input_flag, input) in inputs.iter().filter_map(|(f, p)| p.map(|p| (*f, p))) {
        let inp = resolved(input);
        if (path.exists() && input.exists() && same_file(path, input)) || out == inp {
            return Err(alias(flag, path, input_flag, input, "is"));
        }
        if inp.starts_with(&out) {
            return Err(alias(flag, path, input_flag, input, "holds"));
        }
        if out.starts_with(&inp) {
            return Err(alias(flag, path, input_flag, input, "lies inside"));
        }
    }
    Ok(())
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

/// After a failed multi-stage job (the demos, the ablation): when `dir` holds nothing but the
/// job's settings record `record` (`config.json`), no stage got anywhere, so the record is
/// removed and, if the job `created` the folder, the folder too: a failed job leaves nothing it
/// created. A folder with any stage's progress is kept (the job resumes from it).
pub fn remove_unstarted_job(dir: &Path, record: &str, created: bool) {
    let only_record = std::fs::read_dir(dir)
        .is_ok_and(|entries| entries.flatten().all(|e| e.file_name().to_string_lossy() == record));
    if only_record {
        let _ = std::fs::remove_file(dir.join(record));
        if created {
            remove_empty(&[dir.to_path_buf()]);
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
    /// Checks `path` before any work: every one of `inputs` exists; `path` is not a folder, not
    /// one of `inputs` nor inside an input folder, and its folder exists and is writable or can
    /// be created. Creates nothing.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] naming `flag` and the path (and the input it would overwrite).
    pub fn check(path: &Path, flag: &str, inputs: &Inputs<'_>) -> Result<Self, InvalidInput> {
        if path.as_os_str().is_empty() {
            return Err(InvalidInput(format!("{flag}: an empty path; give a file name")));
        }
        check_inputs_exist(inputs)?;
        check_file_apart(path, flag, inputs)?;
        // `resolved`: also a folder reached through a missing folder and `..` (and, for an
        // existing path, the path itself).
        if resolved(path).is_dir() {
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
    /// Checks `path` before any work: every one of `inputs` exists; `path` is an existing folder
    /// that can be written, or a folder that can be created; neither one of `inputs`, nor holding
    /// one, nor inside an input folder. Creates nothing.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`] naming `flag` and the path (and the input it would overwrite).
    pub fn check(path: &Path, flag: &str, inputs: &Inputs<'_>) -> Result<Self, InvalidInput> {
        if path.as_os_str().is_empty() {
            return Err(InvalidInput(format!("{flag}: an empty path; give a folder")));
        }
        check_inputs_exist(inputs)?;
        check_dir_apart(path, flag, inputs)?;
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
        let e = OutputFile::check(&blocker.join("a/b.npy"), "--out", &[]).unwrap_err();
        assert!(e.0.contains("--out") && e.0.contains("is not a folder"), "{e}");
        assert!(
            OutputFile::check(dir.path(), "--out", &[]).unwrap_err().0.contains("is a directory")
        );
        let ok = OutputFile::check(&dir.path().join("new/sub/x.npy"), "--out", &[]).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing created");
        ok.write(b"data").unwrap();
        assert_eq!(std::fs::read(dir.path().join("new/sub/x.npy")).unwrap(), b"data");
    }

    #[test]
    fn a_dropped_output_dir_removes_the_empty_folders_it_made() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("a/b/run");
        let out = OutputDir::check(&run, "--out", &[]).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        drop(out);
        assert!(!dir.path().join("a").exists());
        // Progress inside: kept.
        let out = OutputDir::check(&run, "--out", &[]).unwrap();
        std::fs::create_dir_all(run.join("checkpoint")).unwrap();
        drop(out);
        assert!(run.join("checkpoint").is_dir());
        // A folder that existed before is never removed.
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        drop(OutputDir::check(&existing, "--out", &[]).unwrap());
        assert!(existing.is_dir());
    }

    #[test]
    fn outputs_that_alias_inputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let input = d.join("a.pt");
        std::fs::write(&input, b"weights").unwrap();
        let data = d.join("data");
        std::fs::create_dir_all(data.join("class0")).unwrap();
        let inputs = [("--checkpoint", Some(input.as_path())), ("--images", Some(data.as_path()))];
        // The same file: by name, through `..`, through a symbolic and a hard link.
        let e = OutputFile::check(&input, "--out", &inputs).unwrap_err();
        assert!(e.0.contains("is the same file as --checkpoint"), "{e}");
        OutputFile::check(&d.join("data/../a.pt"), "--out", &inputs).unwrap_err();
        // Through a folder that does not exist yet, then `..` (was: accepted, and the write
        // created `missing/` and replaced the input).
        OutputFile::check(&d.join("missing/../a.pt"), "--out", &inputs).unwrap_err();
        OutputFile::check(&d.join("missing/x/../../a.pt"), "--out", &inputs).unwrap_err();
        assert!(OutputDir::check(&d.join("missing/../data/codes"), "--out", &inputs).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&input, d.join("link.pt")).unwrap();
            OutputFile::check(&d.join("link.pt"), "--out", &inputs).unwrap_err();
            // A link to the input folder, then `..` out of it and back in.
            std::os::unix::fs::symlink(&data, d.join("datalink")).unwrap();
            assert!(
                OutputDir::check(&d.join("datalink/class0/../codes"), "--out", &inputs).is_err()
            );
            assert!(
                OutputDir::check(&d.join("datalink/zz/../../data/codes"), "--out", &inputs)
                    .is_err()
            );
        }
        std::fs::hard_link(&input, d.join("hard.pt")).unwrap();
        OutputFile::check(&d.join("hard.pt"), "--out", &inputs).unwrap_err();
        // Inside an input folder, or a folder that is, holds or lies inside an input.
        assert!(
            OutputFile::check(&data.join("x.npy"), "--out", &inputs)
                .unwrap_err()
                .0
                .contains("inside")
        );
        assert!(OutputDir::check(&data, "--out", &inputs).unwrap_err().0.contains(" is --images"));
        assert!(OutputDir::check(d, "--out", &inputs).unwrap_err().0.contains("holds"));
        assert!(
            OutputDir::check(&data.join("codes"), "--out", &inputs)
                .unwrap_err()
                .0
                .contains("lies inside")
        );
        assert!(OutputDir::check(&input, "--out", &inputs).is_err());
        // A trailing slash is the same folder.
        let slash = PathBuf::from(format!("{}/", data.display()));
        assert!(OutputDir::check(&slash, "--out", &inputs).is_err());
        // Apart: accepted, and an empty path is refused.
        OutputFile::check(&d.join("b.pt"), "--out", &inputs).unwrap();
        OutputDir::check(&d.join("run"), "--out", &inputs).unwrap();
        assert!(
            OutputFile::check(Path::new(""), "--out", &inputs).unwrap_err().0.contains("empty")
        );
        assert!(OutputDir::check(Path::new(""), "--out", &inputs).is_err());
    }
}
