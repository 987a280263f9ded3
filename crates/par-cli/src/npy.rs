//! `.npy` reading and (atomic) writing for the commands that exchange arrays with Python.

use std::path::Path;

use anyhow::Context;

use crate::invalid;

pub use par_data::npy::IntArray;

/// Reads an integer `.npy` (any signed or unsigned width up to 64 bits, either byte order) as
/// i64 (`par_data::npy::read_ints`).
///
/// # Errors
///
/// A [`par_data::DataError`] naming the file: exit status 2 for a non-`.npy` file, a float or
/// other non-integer dtype, a Fortran-ordered array or a u64 value beyond i64; 1 for I/O errors.
pub fn read_ints(path: &Path) -> anyhow::Result<IntArray> {
    Ok(par_data::npy::read_ints(path)?)
}

/// Creates the parent directory of an output path up front, so a bad `--out` fails before any
/// compute.
pub fn prepare_output(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        invalid!("{}: is a directory; --out needs a file name", path.display());
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn write_atomic(path: &Path, bytes: Vec<u8>) -> anyhow::Result<()> {
    par_store::write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))
}

fn encode<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    shape: &[usize],
    values: &[T],
) -> anyhow::Result<Vec<u8>> {
    Ok(par_data::npy::encode(shape, values))
}

/// Writes arbitrary bytes (e.g. a PNG) atomically.
pub fn write_bytes(path: &Path, bytes: Vec<u8>) -> anyhow::Result<()> {
    write_atomic(path, bytes)
}

/// Writes an f32 array atomically.
pub fn write_f32(path: &Path, shape: &[usize], values: &[f32]) -> anyhow::Result<()> {
    write_atomic(path, encode(shape, values)?)
}

/// Writes an i64 array atomically.
pub fn write_i64(path: &Path, shape: &[usize], values: &[i64]) -> anyhow::Result<()> {
    write_atomic(path, encode(shape, values)?)
}
