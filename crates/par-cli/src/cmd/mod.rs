//! One module per subcommand.

pub mod convert;
pub mod decode;
pub mod devices;
pub mod generate;
pub mod model;
pub mod model_info;
pub mod order;
pub mod score;
pub mod tokenize;
pub mod tokenizer_info;
pub mod tokenizer_train;

/// Exit status of a failed command: 2 for invalid input (bad grid, backend, checkpoint, config or
/// sampling settings; as clap's usage errors), 1 otherwise (I/O, malformed `.npy`, ...).
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let invalid_input = error.chain().any(|cause| {
        cause.is::<par_order::OrderError>()
            || cause.is::<par_device::DeviceError>()
            || cause.is::<par_model::CheckpointError>()
            || cause.is::<par_model::ConfigError>()
            || cause.is::<par_sample::SampleError>()
            || cause.is::<InvalidInput>()
            || cause.is::<par_tokenizer::TokenizerConfigError>()
            || cause
                .downcast_ref::<par_data::DataError>()
                .is_some_and(|e| !matches!(e, par_data::DataError::Io { .. }))
            || cause.downcast_ref::<par_train::TrainError>().is_some_and(|e| {
                matches!(e, par_train::TrainError::Config(_) | par_train::TrainError::Exists { .. })
            })
    });
    if invalid_input { 2 } else { 1 }
}

/// A user-supplied file or value that cannot be used (wrong dtype, shape, range); exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);

/// Returns early with an [`InvalidInput`] error.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::cmd::InvalidInput(format!($($arg)*)).into())
    };
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
