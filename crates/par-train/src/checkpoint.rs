//! Run-directory checkpoints written as a whole: a complete folder (burn-train's checkpointers
//! fill `checkpoint.epoch-K/`, see [`crate::learner`]) replaces `checkpoint/` by renames
//! ([`promote`]), so a crash leaves either the old or the new checkpoint, never a mix; and the
//! resume checks (same settings, step budget, run state).

use std::path::{Path, PathBuf};

use burn::prelude::Device;

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

/// Moves the complete checkpoint folder `ready` to `checkpoint/` by renames (the previous one
/// goes to `checkpoint.old/` first and is removed last), so a crash leaves one whole checkpoint.
///
/// # Errors
///
/// [`TrainError::Io`] naming the folder a rename or removal failed on.
pub fn promote(run: &Path, ready: &Path) -> Result<(), TrainError> {
    let old = run.join("checkpoint.old");
    let dir = checkpoint_dir(run);
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
        }
        std::fs::rename(&dir, &old).map_err(|e| TrainError::io(&dir, e))?;
    }
    std::fs::rename(ready, &dir).map_err(|e| TrainError::io(ready, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| TrainError::io(&old, e))?;
    }
    Ok(())
}

/// A setting as JSON (for [`SameRun`]).
pub(crate) fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("serialisable")
}

/// What a resumed run's checkpoint must agree with.
pub(crate) struct SameRun<'a> {
    /// The data fingerprint(s) now and in the checkpoint, and what the data is (for the error).
    pub data: (bool, &'a str),
    /// The float dtype in the checkpoint and now.
    pub dtype: (&'a str, &'a str),
    /// The model's config in the checkpoint and now, under its name (`model`, `tokenizer`).
    pub model: (&'a str, serde_json::Value, serde_json::Value),
    /// The training config in the checkpoint (with the step budget taken from now) and now.
    pub train: (serde_json::Value, serde_json::Value),
    /// Steps done in the checkpoint, steps asked for now, and the field that asks.
    pub steps: (usize, usize, &'static str),
}

/// The checks of a resume, in the order a user fixes them: the data, the dtype, the model's and
/// the training's settings, the step budget. `Ok(Some(report))`: the run is finished at the
/// asked step count and has its report (nothing to do).
///
/// # Errors
///
/// [`TrainError::Config`] for other data, [`TrainError::ResumeMismatch`] naming the first
/// setting that differs, [`TrainError::StepsBehind`], or reading the report.
pub(crate) fn check_resume<R: serde::de::DeserializeOwned>(
    run: &Path,
    dir: &Path,
    same: SameRun<'_>,
) -> Result<Option<R>, TrainError> {
    if !same.data.0 {
        return Err(TrainError::Config(format!(
            "{}: the checkpoint was trained on other {}",
            dir.display(),
            same.data.1
        )));
    }
    same_settings(dir, "dtype", &same.dtype.0, &same.dtype.1)?;
    same_settings(dir, same.model.0, &same.model.1, &same.model.2)?;
    same_settings(dir, "", &same.train.0, &same.train.1)?;
    let (done, asked, field) = same.steps;
    if asked < done {
        return Err(TrainError::StepsBehind { path: run.into(), done, asked, field });
    }
    let report = run.join("report.json");
    if asked == done && report.is_file() {
        return Ok(Some(read_json(&report)?));
    }
    Ok(None)
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

/// The checkpoint to continue from, by the resume rule every trainer follows: no checkpoint and
/// no `resume` starts afresh; `resume` without a checkpoint is [`TrainError::NothingToResume`]
/// (a mistyped directory must not silently start a new run); a checkpoint without `resume` is
/// [`TrainError::Exists`]. Returns the checkpoint folder and its state.
///
/// # Errors
///
/// As above, or an unreadable `state.json`.
pub fn resume_state<S: serde::de::DeserializeOwned>(
    run: &Path,
    resume: bool,
    step_of: impl Fn(&S) -> usize,
) -> Result<Option<(PathBuf, S)>, TrainError> {
    match (latest(run), resume) {
        (None, false) => Ok(None),
        (None, true) => Err(TrainError::NothingToResume { path: run.into() }),
        (Some(dir), resume) => {
            let state: S = read_json(&dir.join("state.json"))?;
            if !resume {
                return Err(TrainError::Exists { path: run.into(), step: step_of(&state) });
            }
            Ok(Some((dir, state)))
        }
    }
}

/// Checks that a resumed run asks for the settings its checkpoint was made with, naming the
/// first one that differs: `name` for a bare value, `name.field…` (or `field…` when `name` is
/// empty) for a struct.
///
/// # Errors
///
/// [`TrainError::ResumeMismatch`].
pub fn same_settings<T: serde::Serialize>(
    dir: &Path,
    name: &str,
    checkpoint: &T,
    now: &T,
) -> Result<(), TrainError> {
    let (a, b) = (
        serde_json::to_value(checkpoint).expect("serialisable"),
        serde_json::to_value(now).expect("serialisable"),
    );
    match first_difference(&a, &b, name.to_string()) {
        None => Ok(()),
        Some((field, checkpoint, now)) => {
            Err(TrainError::ResumeMismatch { path: dir.into(), field, checkpoint, now })
        }
    }
}

fn first_difference(
    a: &serde_json::Value,
    b: &serde_json::Value,
    path: String,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let field = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                first_difference(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    field,
                )
            })
        }
        _ if a == b => None,
        _ => Some((path, a.to_string(), b.to_string())),
    }
}

/// The default float dtype of `device` as the `--dtype` names it (`f32`, `bf16`, `f16`): part of
/// a run's resume check, since it changes the weights a run produces.
pub fn device_dtype(device: &Device) -> String {
    format!("{:?}", device.settings().float_dtype).to_lowercase()
}

/// Refuses to save weights holding NaN or ±∞ (an update that overflowed).
///
/// # Errors
///
/// [`TrainError::NonFinite`] naming the first such weight and the last checkpoint (if any).
pub fn finite_weights(
    weights: &par_store::StateDict,
    step: usize,
    last_checkpoint: Option<usize>,
) -> Result<(), TrainError> {
    match weights.check_finite() {
        Err(par_store::CheckpointError::NonFinite { key, first, .. }) => {
            Err(TrainError::NonFinite {
                step,
                quantity: format!("weight `{key}`"),
                value: first as f64,
                last_checkpoint,
            })
        }
        _ => Ok(()),
    }
}

/// After a failed run: if no checkpoint was written, removes the `config.json` the run wrote and,
/// when this run `created` the folder, the folder itself once empty, so a run that never got
/// anywhere leaves nothing behind (a stage folder of a larger job included).
pub fn discard_unstarted(run: &Path, created: bool) {
    if latest(run).is_none() {
        let _ = std::fs::remove_file(run.join("config.json"));
        if created {
            let _ = std::fs::remove_dir(run);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_names_the_setting() {
        let a = serde_json::json!({"lr": 1e-3, "model": {"d_model": 32, "n_heads": 2}});
        let b = serde_json::json!({"lr": 1e-3, "model": {"d_model": 64, "n_heads": 2}});
        assert_eq!(
            first_difference(&a, &b, String::new()),
            Some(("model.d_model".into(), "32".into(), "64".into()))
        );
        assert_eq!(first_difference(&a, &a, String::new()), None);
    }
}
