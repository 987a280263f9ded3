//! Run-directory checkpoints written as a whole: files go to `checkpoint.tmp/`, then the folder
//! replaces `checkpoint/` by renames, so a crash leaves either the old or the new checkpoint,
//! never a mix.

use std::path::{Path, PathBuf};

use burn::optim::{ModuleOptimizer, OptimizerRecord};

use crate::TrainError;

/// The checkpoint folder of a run.
pub fn checkpoint_dir(run: &Path) -> PathBuf {
    run.join("checkpoint")
}

/// The complete checkpoint of a run, if any (`checkpoint/`, or `checkpoint.old/` after a crash
/// between the two renames).
pub fn latest(run: &Path) -> Option<PathBuf> {
    [checkpoint_dir(run), run.join("checkpoint.old")]
        .into_iter()
        .find(|d| d.join("state.json").is_file())
}

/// Writes a checkpoint: `fill` writes the files into the given (empty) folder; `state.json`
/// must be among them and is what marks a checkpoint complete.
///
/// # Errors
///
/// [`TrainError`] from `fill` or the renames.
pub fn write(
    run: &Path,
    fill: impl FnOnce(&Path) -> Result<(), TrainError>,
) -> Result<(), TrainError> {
    let tmp = run.join("checkpoint.tmp");
    let old = run.join("checkpoint.old");
    let dir = checkpoint_dir(run);
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    fill(&tmp)?;
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        std::fs::rename(&dir, &old).map_err(|e| TrainError::io(&dir, e))?;
    }
    std::fs::rename(&tmp, &dir).map_err(|e| TrainError::io(&tmp, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    }
    Ok(())
}

/// Saves an optimizer's state (Burn's burnpack format).
///
/// # Errors
///
/// [`TrainError::Optimizer`] naming the file.
pub fn save_optimizer(optim: &ModuleOptimizer, path: &Path) -> Result<(), TrainError> {
    optim
        .to_record()
        .save(path)
        .map_err(|e| TrainError::Optimizer { path: path.into(), reason: format!("{e:?}") })
}

/// Loads an optimizer's state saved by [`save_optimizer`] into `optim`.
///
/// # Errors
///
/// [`TrainError::Optimizer`] naming the file.
pub fn load_optimizer(optim: ModuleOptimizer, path: &Path) -> Result<ModuleOptimizer, TrainError> {
    let record = OptimizerRecord::load(path)
        .map_err(|e| TrainError::Optimizer { path: path.into(), reason: format!("{e:?}") })?;
    Ok(optim.load_record(record))
}

/// Writes JSON atomically.
///
/// # Errors
///
/// [`TrainError::Io`].
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), TrainError> {
    let bytes = serde_json::to_vec_pretty(value).expect("serialisable");
    par_store::write_atomic(path, &bytes).map_err(|e| TrainError::io(path, e))
}

/// Reads JSON.
///
/// # Errors
///
/// [`TrainError::Io`] or [`TrainError::Config`] naming the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrainError> {
    let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| TrainError::Config(format!("{}: {e}", path.display())))
}
