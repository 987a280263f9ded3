//! Shared helpers of the experiment and benchmark binaries in `src/bin/`.
#![warn(missing_docs)]

use std::path::Path;

use anyhow::Context;

/// Writes `contents` to `path` atomically: a temporary file in the same directory, then a rename,
/// so a reader never sees a half-written report. Creates the parent directory.
///
/// # Errors
///
/// Any I/O error, with the path in its context.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    par_store::write_atomic(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// Checks `--per-class` for a job that samples `per_class` images of each of 10 classes and holds
/// them in memory (`bytes_each`): at most [`par_app::limits::MAX_IMAGES`] in all, and in memory.
///
/// # Errors
///
/// [`par_app::InvalidInput`] naming `--per-class`.
pub fn check_per_class(per_class: usize, bytes_each: f64) -> anyhow::Result<()> {
    par_app::limits::check_at_most(
        "per-class",
        per_class,
        par_app::limits::MAX_IMAGES / 10,
        "10 classes, and at most 10,000,000 images per job",
    )?;
    par_app::limits::check_memory(
        "--per-class",
        &format!("{} samples held for scoring", 10 * per_class),
        10.0 * per_class as f64 * bytes_each,
    )?;
    Ok(())
}

/// Ends a multi-stage job binary (the demos, the ablation) whose run folder `out` holds its
/// settings record `config.json`: runs `run`, and when it fails before any stage got anywhere,
/// removes what this run created ([`par_app::remove_unstarted_job`]; a record of an earlier run
/// is left alone). Returns the exit status ([`par_app::finish`]).
pub fn finish_job(out: &Path, run: impl FnOnce() -> anyhow::Result<()>) -> std::process::ExitCode {
    let created = !out.exists();
    let fresh = !out.join("config.json").exists();
    let result = run();
    if result.is_err() && fresh {
        par_app::remove_unstarted_job(out, "config.json", created);
    }
    par_app::finish(result)
}

/// Median of `samples` (seconds); `NaN` for none.
pub fn median(samples: &mut [f64]) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 { samples[mid] } else { 0.5 * (samples[mid - 1] + samples[mid]) }
}

/// Loss curves and heat maps (shared with the `par` command).
pub use par_app::plot;
pub mod train_par;

pub use par_app::{BarMonitor, bar as progress_bar, stop_flag};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = std::env::temp_dir().join(format!("par-exp-test-{}", std::process::id()));
        let path = dir.join("sub/report.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
