//! One module per subcommand.

pub mod devices;
pub mod generate;
pub mod model;
pub mod model_info;
pub mod order;
pub mod score;

/// Exit status of a failed command: 2 for invalid input (bad grid, backend, checkpoint, config or
/// sampling settings; as clap's usage errors), 1 otherwise (I/O, malformed `.npy`, ...).
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let invalid_input = error.chain().any(|cause| {
        cause.is::<par_order::OrderError>()
            || cause.is::<par_device::DeviceError>()
            || cause.is::<par_model::CheckpointError>()
            || cause.is::<par_model::ConfigError>()
            || cause.is::<par_sample::SampleError>()
    });
    if invalid_input { 2 } else { 1 }
}
