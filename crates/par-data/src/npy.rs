//! Integer `.npy` reading and writing (shared by the code stores and the `par` commands).

use std::path::Path;

use npyz::{DType, NpyFile, TypeChar, WriterBuilder};

use crate::DataError;

/// An integer array: shape and values, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntArray {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Values in C order.
    pub values: Vec<i64>,
}

fn widen<T: Into<i64>>(v: Vec<T>) -> Vec<i64> {
    v.into_iter().map(Into::into).collect()
}

/// Parses `.npy` bytes of any signed or unsigned integer dtype up to 64 bits (either byte order)
/// as i64.
///
/// # Errors
///
/// [`DataError::Store`] naming `path` for a non-`.npy` file, a float or other non-integer dtype, a
/// Fortran-ordered array, truncated data or a u64 value beyond i64.
pub fn parse_ints(path: &Path, bytes: &[u8]) -> Result<IntArray, DataError> {
    let npy = NpyFile::new(bytes)
        .map_err(|e| DataError::store(path, format!("not a .npy file ({e})")))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    if npy.order() == npyz::Order::Fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
        return Err(DataError::store(
            path,
            "Fortran-ordered array; save it C-ordered (numpy.ascontiguousarray)",
        ));
    }
    let truncated = |_| DataError::store(path, "truncated or corrupt .npy data");
    let values = match npy.dtype() {
        DType::Plain(t) => match (t.type_char(), t.size_field()) {
            (TypeChar::Int, 8) => npy.into_vec::<i64>().map_err(truncated)?,
            (TypeChar::Int, 4) => widen(npy.into_vec::<i32>().map_err(truncated)?),
            (TypeChar::Int, 2) => widen(npy.into_vec::<i16>().map_err(truncated)?),
            (TypeChar::Int, 1) => widen(npy.into_vec::<i8>().map_err(truncated)?),
            (TypeChar::Uint, 8) => {
                let raw = npy.into_vec::<u64>().map_err(truncated)?;
                if let Some(v) = raw.iter().find(|&&v| i64::try_from(v).is_err()) {
                    return Err(DataError::store(path, format!("value {v} does not fit in int64")));
                }
                raw.into_iter().map(|v| v as i64).collect()
            }
            (TypeChar::Uint, 4) => widen(npy.into_vec::<u32>().map_err(truncated)?),
            (TypeChar::Uint, 2) => widen(npy.into_vec::<u16>().map_err(truncated)?),
            (TypeChar::Uint, 1) => widen(npy.into_vec::<u8>().map_err(truncated)?),
            _ => {
                return Err(DataError::store(
                    path,
                    format!("expected an integer array, found dtype {t}"),
                ));
            }
        },
        other => {
            return Err(DataError::store(
                path,
                format!("expected an integer array, found dtype {other:?}"),
            ));
        }
    };
    Ok(IntArray { shape, values })
}

/// Reads an integer `.npy` file (see [`parse_ints`]).
///
/// # Errors
///
/// [`DataError::Io`] if it cannot be read, otherwise as [`parse_ints`].
pub fn read_ints(path: &Path) -> Result<IntArray, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    parse_ints(path, &bytes)
}

/// `.npy` bytes of a C-ordered array.
pub fn encode<T: npyz::Serialize + npyz::AutoSerialize + Copy>(
    shape: &[usize],
    values: &[T],
) -> Vec<u8> {
    let mut bytes = Vec::new();
    let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    let mut writer = npyz::WriteOptions::<T>::new()
        .default_dtype()
        .shape(&shape)
        .writer(&mut bytes)
        .begin_nd()
        .expect("writing to memory cannot fail");
    writer.extend(values.iter().copied()).expect("writing to memory cannot fail");
    writer.finish().expect("writing to memory cannot fail");
    bytes
}
