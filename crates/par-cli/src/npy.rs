//! `.npy` reading and (atomic) writing for the commands that exchange arrays with Python.

use std::path::Path;

use anyhow::{Context, bail};
use npyz::{DType, NpyFile, TypeChar, WriterBuilder};

/// An integer array: shape and values, row-major.
pub struct IntArray {
    pub shape: Vec<usize>,
    pub values: Vec<i64>,
}

/// Reads an integer `.npy` (any signed or unsigned width up to 64 bits) as i64.
pub fn read_ints(path: &Path) -> anyhow::Result<IntArray> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let npy =
        NpyFile::new(&bytes[..]).with_context(|| format!("{}: not a .npy file", path.display()))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let values: Vec<i64> = match npy.dtype() {
        DType::Plain(t) => match (t.type_char(), t.size_field()) {
            (TypeChar::Int, 8) => npy.into_vec::<i64>()?,
            (TypeChar::Int, 4) => npy.into_vec::<i32>()?.into_iter().map(i64::from).collect(),
            (TypeChar::Int, 2) => npy.into_vec::<i16>()?.into_iter().map(i64::from).collect(),
            (TypeChar::Int, 1) => npy.into_vec::<i8>()?.into_iter().map(i64::from).collect(),
            (TypeChar::Uint, 8) => npy
                .into_vec::<u64>()?
                .into_iter()
                .map(|v| i64::try_from(v).unwrap_or(i64::MAX))
                .collect(),
            (TypeChar::Uint, 4) => npy.into_vec::<u32>()?.into_iter().map(i64::from).collect(),
            (TypeChar::Uint, 2) => npy.into_vec::<u16>()?.into_iter().map(i64::from).collect(),
            (TypeChar::Uint, 1) => npy.into_vec::<u8>()?.into_iter().map(i64::from).collect(),
            _ => bail!("{}: expected an integer array, found dtype {}", path.display(), t),
        },
        other => bail!("{}: expected an integer array, found dtype {:?}", path.display(), other),
    };
    Ok(IntArray { shape, values })
}

fn write_atomic(path: &Path, bytes: Vec<u8>) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().with_context(|| format!("{} has no file name", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp{}", name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
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

/// Writes an f32 array atomically.
pub fn write_f32(path: &Path, shape: &[usize], values: &[f32]) -> anyhow::Result<()> {
    write_atomic(path, encode(shape, values)?)
}

/// Writes an i64 array atomically.
pub fn write_i64(path: &Path, shape: &[usize], values: &[i64]) -> anyhow::Result<()> {
    write_atomic(path, encode(shape, values)?)
}
