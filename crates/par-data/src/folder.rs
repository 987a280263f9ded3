//! [`ImageFolder`]: torchvision's `ImageFolder` index (ROOT/CLASS/…/IMAGE).

use std::path::{Path, PathBuf};

use crate::DataError;

/// torchvision's `IMG_EXTENSIONS` (matched case-insensitively).
pub const IMAGE_EXTENSIONS: [&str; 9] =
    ["jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp"];

/// The samples of an ImageFolder tree, in torchvision's order: classes are the sub-directories of
/// the root sorted by name (class id = index), samples are walked class by class, directories and
/// file names sorted, following symbolic links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFolder {
    /// The root directory.
    pub root: PathBuf,
    /// Class folder names; the class id is the index.
    pub classes: Vec<String>,
    /// `(image path, class id)` per sample.
    pub samples: Vec<(PathBuf, u32)>,
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut entries = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| DataError::io(dir, e)))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    Ok(entries)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// All image files under `dir`, recursively: torchvision's `sorted(os.walk(dir))` visits a
/// directory's files before its sub-directories, each sorted.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let entries = read_dir_sorted(dir)?;
    let (dirs, files): (Vec<_>, Vec<_>) = entries.into_iter().partition(|p| p.is_dir());
    out.extend(files.into_iter().filter(|p| has_image_extension(p)));
    for d in dirs {
        walk(&d, out)?;
    }
    Ok(())
}

impl ImageFolder {
    /// Indexes `root`.
    ///
    /// # Errors
    ///
    /// [`DataError::Io`] if `root` or a folder below it cannot be read (missing, not a
    /// directory, permissions); [`DataError::NoClasses`] without class folders;
    /// [`DataError::EmptyClass`] for a class folder without images unless `allow_empty` (then
    /// the class keeps its id and has no samples, as torchvision's `allow_empty=True`).
    pub fn scan(root: &Path, allow_empty: bool) -> Result<Self, DataError> {
        let classes: Vec<PathBuf> =
            read_dir_sorted(root)?.into_iter().filter(|p| p.is_dir()).collect();
        if classes.is_empty() {
            return Err(DataError::NoClasses { path: root.into() });
        }
        let mut samples = Vec::new();
        let mut names = Vec::with_capacity(classes.len());
        for (id, dir) in classes.iter().enumerate() {
            let mut files = Vec::new();
            walk(dir, &mut files)?;
            if files.is_empty() && !allow_empty {
                return Err(DataError::EmptyClass {
                    path: dir.clone(),
                    extensions: IMAGE_EXTENSIONS.join(", "),
                });
            }
            samples.extend(files.into_iter().map(|f| (f, id as u32)));
            names.push(
                dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            );
        }
        Ok(Self { root: root.into(), classes: names, samples })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_sorted_and_files_walked_like_torchvision() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b/2.png", "b/1.JPG", "b/sub/0.png", "a/x.png", "a/readme.txt", "c/z.webp"] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"").unwrap();
        }
        let folder = ImageFolder::scan(dir.path(), false).unwrap();
        assert_eq!(folder.classes, ["a", "b", "c"]);
        let rel: Vec<(String, u32)> = folder
            .samples
            .iter()
            .map(|(p, c)| (p.strip_prefix(dir.path()).unwrap().to_string_lossy().into_owned(), *c))
            .collect();
        let expect =
            [("a/x.png", 0), ("b/1.JPG", 1), ("b/2.png", 1), ("b/sub/0.png", 1), ("c/z.webp", 2)];
        assert_eq!(rel, expect.map(|(p, c)| (p.to_string(), c)));
    }

    #[test]
    fn empty_class_and_missing_root_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a")).unwrap();
        std::fs::create_dir_all(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("b/1.png"), b"").unwrap();
        let err = ImageFolder::scan(dir.path(), false).unwrap_err();
        assert!(matches!(&err, DataError::EmptyClass { path, .. } if path.ends_with("a")), "{err}");
        let kept = ImageFolder::scan(dir.path(), true).unwrap();
        assert_eq!(kept.samples[0].1, 1);
        let missing = ImageFolder::scan(&dir.path().join("nope"), false).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
        let flat = tempfile::tempdir().unwrap();
        std::fs::write(flat.path().join("1.png"), b"").unwrap();
        assert!(matches!(ImageFolder::scan(flat.path(), false), Err(DataError::NoClasses { .. })));
    }
}
