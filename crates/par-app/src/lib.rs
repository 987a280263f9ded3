//! What every binary of the project shares (the `par` command and the experiment binaries), so
//! they fail the same way:
//!
//! - **One exit-status rule** ([`exit_code`], [`finish`]): 0 success, **2 bad input** (a flag, a
//!   file or a setting the user gave: unreadable, malformed, out of range, an output location that
//!   cannot be written, a resume that does not match), **1 a failure at run time** (I/O during
//!   the job, a diverged training, non-finite logits from finite weights), 130 interrupted
//!   (Ctrl-C, progress saved). clap's own usage errors are 2 as well.
//! - **One-line errors** ([`one_line`]): the whole cause chain on one line.
//! - **Outputs checked before any compute** ([`OutputFile`], [`OutputDir`]): a location that
//!   cannot be written is refused before the first tensor op, and a failed command leaves no
//!   folders it created.
//! - **Flags named in errors** ([`name_flag`]): a library error naming a config field (`lr`)
//!   is shown with the flag that sets it (`--lr`).
//! - **Video outputs** ([`video_out`]): clips as looping GIFs and frame strips (PNG).
#![warn(missing_docs)]

pub mod limits;
mod output;
pub mod plot;
pub mod progress;
pub mod video_out;

use std::error::Error as StdError;
use std::process::ExitCode;

pub use output::{Inputs, OutputDir, OutputFile, check_inputs_exist, remove_unstarted_job};
pub use progress::{BarMonitor, bar, stop_flag};

/// A user-supplied file or value that cannot be used (wrong dtype, shape, range): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// Returns early with an [`InvalidInput`] error.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::InvalidInput(format!($($arg)*)).into())
    };
}

/// Marks any error as caused by the user's input (a file that cannot be read, a checkpoint that
/// does not fit): exit status 2. Its message and causes are the wrapped error's.
pub struct BadInput(anyhow::Error);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::fmt::Debug for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl StdError for BadInput {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

/// `.input()?` on the reading of a user's file or value: its failure is the input's fault.
pub trait InputResult<T> {
    /// Tags the error as [`BadInput`].
    ///
    /// # Errors
    ///
    /// The original error, tagged.
    fn input(self) -> anyhow::Result<T>;
}

impl<T, E: Into<anyhow::Error>> InputResult<T> for Result<T, E> {
    fn input(self) -> anyhow::Result<T> {
        self.map_err(|e| BadInput(e.into()).into())
    }
}

fn is_invalid_input(cause: &(dyn StdError + 'static)) -> bool {
    use par_store::CheckpointError;
    cause.is::<InvalidInput>()
        || cause.is::<BadInput>()
        || cause.is::<par_order::OrderError>()
        || cause.is::<par_store::InputChanged>()
        || cause.is::<par_device::DeviceError>()
        || cause.is::<par_model::ConfigError>()
        || cause.is::<par_tokenizer::TokenizerConfigError>()
        || cause.is::<par_tokenizer::video::VideoTokenizerConfigError>()
        || cause
            .downcast_ref::<par_tokenizer::video::VideoTokenizerError>()
            .is_some_and(|e| !matches!(e, par_tokenizer::video::VideoTokenizerError::Readback(_)))
        || cause.downcast_ref::<par_tokenizer::video::VideoCheckpointError>().is_some_and(|e| {
            !matches!(
                e,
                par_tokenizer::video::VideoCheckpointError::Checkpoint(CheckpointError::Io { .. })
            )
        })
        || cause.is::<par_sample::SampleConfigError>()
        || cause.is::<par_entropy::EntropyError>()
        || cause.downcast_ref::<par_sample::SampleError>().is_some_and(|e| e.is_invalid_input())
        || cause.downcast_ref::<par_train::TrainError>().is_some_and(|e| e.is_invalid_input())
        || cause
            .downcast_ref::<CheckpointError>()
            .is_some_and(|e| !matches!(e, CheckpointError::Io { .. }))
        || cause
            .downcast_ref::<par_data::DataError>()
            .is_some_and(|e| !matches!(e, par_data::DataError::Io { .. }))
}

/// The exit status of a failed command (module docs): 130 for an interruption with progress
/// saved, 2 when the error lies in the user's input, 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.chain().any(|c| {
        matches!(
            c.downcast_ref(),
            Some(
                par_train::TrainError::Interrupted { .. }
                    | par_train::TrainError::StoppedUnsaved { .. }
            )
        )
    }) {
        return 130;
    }
    if error.chain().any(is_invalid_input) { 2 } else { 1 }
}

/// One line for the whole error chain, skipping causes whose text the line already contains
/// (typed errors often embed their source in their own message).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// Ends a binary: prints `error: <one line>` on stderr for a failure and returns its status.
pub fn finish(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(exit_code(&error))
        }
    }
}

/// The long flags (without `--`) of a clap argument struct, for [`name_flag`].
pub fn long_flags<A: clap::Args>() -> Vec<String> {
    A::augment_args(clap::Command::new("flags"))
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect()
}

/// The config field an error is about (`lr`, `tokenizer.codebook_size`, `dtype`), if any.
fn field_of(error: &anyhow::Error) -> Option<String> {
    error.chain().find_map(|c| {
        if let Some(e) = c.downcast_ref::<par_train::TrainError>() {
            return e.field().map(str::to_string);
        }
        if let Some(e) = c.downcast_ref::<par_sample::SampleConfigError>() {
            return Some(e.field().into());
        }
        if let Some(e) = c.downcast_ref::<par_model::ConfigError>() {
            return Some(e.field().into());
        }
        if let Some(e) = c.downcast_ref::<par_tokenizer::video::VideoTokenizerConfigError>() {
            return Some(e.field().into());
        }
        c.downcast_ref::<par_tokenizer::TokenizerConfigError>().map(|e| e.field().into())
    })
}

/// Puts the flag that sets the erring config field in front of the message (`--lr: training
/// setting `lr` must be …`), when `flags` (see [`long_flags`]) has one: the field's last
/// dotted segment with `_` as `-`. Other errors pass unchanged.
pub fn name_flag(error: anyhow::Error, flags: &[String]) -> anyhow::Error {
    let Some(field) = field_of(&error) else { return error };
    let flag = field.rsplit('.').next().unwrap_or(&field).replace('_', "-");
    if flags.contains(&flag) { error.context(format!("--{flag}")) } else { error }
}

/// Checks a float flag before any work: finite and within `[min, max]` (`None`: unbounded).
///
/// # Errors
///
/// [`InvalidInput`] naming the flag.
pub fn check_float(
    flag: &str,
    value: f64,
    min: Option<f64>,
    max: Option<f64>,
) -> anyhow::Result<()> {
    let ok = value.is_finite() && min.is_none_or(|m| value >= m) && max.is_none_or(|m| value <= m);
    if !ok {
        let range = match (min, max) {
            (Some(a), Some(b)) => format!("in [{a}, {b}]"),
            (Some(a), None) => format!("≥ {a}"),
            (None, Some(b)) => format!("≤ {b}"),
            (None, None) => "finite".into(),
        };
        invalid!("--{flag} must be a finite number {range}, got {value}");
    }
    Ok(())
}

/// Checks a count flag before any work: at least 1.
///
/// # Errors
///
/// [`InvalidInput`] naming the flag.
pub fn check_positive(flag: &str, value: usize) -> anyhow::Result<()> {
    if value == 0 {
        invalid!("--{flag} must be at least 1, got 0");
    }
    Ok(())
}

/// Samples code grids (raster order) on `backend`: with the CPU decode engine (`par-cpu`) for
/// `host`, with the Burn model on its own device otherwise. The draws are the same either way
/// (they happen on the host), so only the speed differs.
///
/// # Errors
///
/// [`par_sample::SampleError`], as [`par_sample::generate`].
pub fn sample_codes(
    backend: par_device::Backend,
    model: &par_model::ParTransformer,
    classes: &[usize],
    config: &par_sample::SampleConfig,
) -> Result<Vec<Vec<u32>>, par_sample::SampleError> {
    let streams: Vec<u64> = (0..classes.len() as u64).collect();
    Sampler::for_backend(backend, model).sample(classes, &streams, config)
}

/// A model ready to sample on one backend: the CPU decode engine (its weights copied once) for
/// `host`, the Burn model otherwise. Long jobs build it once and call [`Sampler::sample`] per
/// batch.
pub enum Sampler<'a> {
    /// The CPU decode engine (boxed: it holds the weights' panels inline).
    Host(Box<par_cpu::CpuDecoder>),
    /// The Burn model on its device.
    Burn(&'a par_model::ParTransformer),
}

impl<'a> Sampler<'a> {
    /// The sampler of `backend` for `model`.
    pub fn for_backend(backend: par_device::Backend, model: &'a par_model::ParTransformer) -> Self {
        if backend.decodes_on_host() {
            Sampler::Host(Box::new(par_cpu::CpuDecoder::new(model)))
        } else {
            Sampler::Burn(model)
        }
    }

    /// Code grids (raster order) for `classes`, sample `b` drawing from random stream
    /// `streams[b]` ([`par_sample::generate_streams`]).
    ///
    /// # Errors
    ///
    /// [`par_sample::SampleError`].
    pub fn sample(
        &self,
        classes: &[usize],
        streams: &[u64],
        config: &par_sample::SampleConfig,
    ) -> Result<Vec<Vec<u32>>, par_sample::SampleError> {
        match self {
            Sampler::Host(engine) => {
                par_sample::generate_streams(engine.as_ref(), classes, streams, config)
            }
            Sampler::Burn(model) => par_sample::generate_streams(*model, classes, streams, config),
        }
    }
}

/// A clap value parser for a library enum that names its values (`NAMES`, `FromStr`): the
/// library crates carry no clap derives, and `--help` still lists the accepted names.
///
/// # Panics
///
/// Never for a `names` list that `T::from_str` accepts entirely (each library enum's `NAMES`).
pub fn choice<T>(names: &'static [&'static str]) -> impl clap::builder::TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Debug,
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(names)
        .map(|s| s.parse::<T>().expect("every listed name parses"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_rule() {
        let bad: anyhow::Error = InvalidInput("x".into()).into();
        assert_eq!(exit_code(&bad), 2);
        let io: anyhow::Error = std::io::Error::other("disk").into();
        assert_eq!(exit_code(&io), 1);
        let tagged: anyhow::Result<()> = Err(std::io::Error::other("missing")).input();
        let tagged = tagged.unwrap_err();
        assert_eq!(exit_code(&tagged), 2);
        assert_eq!(one_line(&tagged), "missing");
        let diverged: anyhow::Error = par_train::TrainError::NonFinite {
            step: 3,
            quantity: "loss".into(),
            value: f64::NAN,
            last_checkpoint: None,
        }
        .into();
        assert_eq!(exit_code(&diverged), 1);
        let stopped: anyhow::Error = par_train::TrainError::Interrupted { step: 3 }.into();
        assert_eq!(exit_code(&stopped.context("demo")), 130);
    }

    #[test]
    fn flags_are_named_when_the_command_has_them() {
        let e = || -> anyhow::Error {
            par_train::TrainError::Setting { field: "disc_weight", reason: "bad".into() }.into()
        };
        let flags = vec!["disc-weight".to_string()];
        assert_eq!(
            one_line(&name_flag(e(), &flags)),
            "--disc-weight: training setting `disc_weight` bad"
        );
        assert_eq!(one_line(&name_flag(e(), &[])), "training setting `disc_weight` bad");
        assert!(check_float("lr", f64::NAN, Some(0.0), None).is_err());
        assert!(check_float("lr", 1.0, Some(0.0), Some(1.0)).is_ok());
        assert!(check_float("top-p", 1.5, Some(0.0), Some(1.0)).is_err());
    }
}
