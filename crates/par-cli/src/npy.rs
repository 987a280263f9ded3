//! `.npy` reading and (atomic) writing for the commands that exchange arrays with Python.

use std::path::Path;

use anyhow::Context;
use npyz::{DType, NpyFile, TypeChar, WriterBuilder};

use crate::invalid;

/// An integer array: shape and values, row-major.
pub struct IntArray {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in C order.
    pub values: Vec<i64>,
}

/// Reads an integer `.npy` (any signed or unsigned width up to 64 bits, either byte order) as
/// i64.
///
/// # Errors
///
/// An [`crate::cmd::InvalidInput`] naming the file for a non-`.npy` file, a float or other
/// non-integer dtype, a Fortran-ordered array or a u64 value beyond i64; I/O errors otherwise.
pub fn read_ints(path: &Path) -> anyhow::Result<IntArray> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let npy = match NpyFile::new(&bytes[..]) {
        Ok(npy) => npy,
        Err(e) => invalid!("{}: not a .npy file ({e})", path.display()),
    };
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if npy.order() == npyz::Order::Fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        invalid!(
            "{}: Fortran-ordered array; save it C-ordered (numpy.ascontiguousarray)",
            path.display()
        );
    }
    let truncated = || format!("{}: truncated or corrupt .npy data", path.display());
    let values: Vec<i64> = match npy.dtype() {
        DType::Plain(t) => match (t.type_char(), t.size_field()) {
            (TypeChar::Int, 8) => npy.into_vec::<i64>().with_context(truncated)?,
            (TypeChar::Int, 4) => {
                npy.into_vec::<i32>().with_context(truncated)?.into_iter().map(i64::from).collect()
            }
            (TypeChar::Int, 2) => {
                npy.into_vec::<i16>().with_context(truncated)?.into_iter().map(i64::from).collect()
            }
            (TypeChar::Int, 1) => {
                npy.into_vec::<i8>().with_context(truncated)?.into_iter().map(i64::from).collect()
            }
            (TypeChar::Uint, 8) => {
                let raw = npy.into_vec::<u64>().with_context(truncated)?;
                match raw.iter().find(|&&v| i64::try_from(v).is_err()) {
                    Some(v) => invalid!("{}: value {v} does not fit in int64", path.display()),
                    None => raw.into_iter().map(|v| v as i64).collect(),
                }
            }
            (TypeChar::Uint, 4) => {
                npy.into_vec::<u32>().with_context(truncated)?.into_iter().map(i64::from).collect()
            }
            (TypeChar::Uint, 2) => {
                npy.into_vec::<u16>().with_context(truncated)?.into_iter().map(i64::from).collect()
            }
            (TypeChar::Uint, 1) => {
                npy.into_vec::<u8>().with_context(truncated)?.into_iter().map(i64::from).collect()
            }
            _ => invalid!("{}: expected an integer array, found dtype {t}", path.display()),
        },
        other => invalid!("{}: expected an integer array, found dtype {other:?}", path.display()),
    };
    Ok(IntArray { shape, values })
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
    let mut bytes = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()?;
    writer.extend(values.iter().copied())?;
    writer.finish()?;
    Ok(bytes)
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
