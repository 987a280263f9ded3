//! `.npy` reading and (atomic) writing for the commands that exchange arrays with Python.

use std::path::Path;

use par_app::{InputResult, OutputFile};

pub use par_data::npy::IntArray;

/// Reads an integer `.npy` (any signed or unsigned width up to 64 bits, either byte order) as
/// i64 (`par_data::npy::read_ints`).
///
/// # Errors
///
/// A [`par_data::DataError`] naming the file, as bad input (exit status 2): a missing or
/// unreadable file, a non-`.npy` file, a float or other non-integer dtype, a Fortran-ordered
/// array or a u64 value beyond i64.
pub fn read_ints(path: &Path) -> anyhow::Result<IntArray> {
    par_data::npy::read_ints(path).input()
}

/// Writes an f32 array atomically.
///
/// # Errors
///
/// The I/O error, naming the file.
pub fn write_f32(out: &OutputFile, shape: &[usize], values: &[f32]) -> anyhow::Result<()> {
    out.write(&par_data::npy::encode(shape, values))
}

/// Writes an i64 array atomically.
///
/// # Errors
///
/// The I/O error, naming the file.
pub fn write_i64(out: &OutputFile, shape: &[usize], values: &[i64]) -> anyhow::Result<()> {
    out.write(&par_data::npy::encode(shape, values))
}
