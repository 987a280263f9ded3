//! One module per subcommand.

pub mod devices;
pub mod order;

/// Exit status of a failed command: 2 for invalid input (as clap's usage errors), 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    let invalid_input = error
        .chain()
        .any(|cause| cause.is::<par_order::OrderError>() || cause.is::<par_device::DeviceError>());
    if invalid_input { 2 } else { 1 }
}
