//! Backend selection in one place: `--backend {flex,ndarray,host,wgpu,cuda}`, `--device-index` and
//! `--dtype {f32,bf16,f16}` become a Burn [`Device`] (`host`, the CPU decode engine of
//! `par-cpu`, runs everything but sampling's decode steps on flex).
//!
//! Burn 0.22 picks the backend at run time from a [`Device`] value; which constructors exist
//! depends on the cargo features Burn was built with. This crate forwards one feature per backend
//! (`flex`, `ndarray`, `host`, `wgpu`, `cuda`; `wgpu-bare` / `cuda-bare` build the GPU backends
//! without Burn's kernel fusion and autotune) and is the only place in the project that names a
//! backend:
//! library crates take `&Device`, binaries flatten [`DeviceArgs`] into their clap arguments and call
//! [`DeviceArgs::device`].
//!
//! Asking for a backend that is not compiled in is an error that lists the ones that are
//! ([`DeviceError::NotCompiled`]), not a clap parse error: the names of all backends are always
//! accepted on the command line.
#![warn(missing_docs)]

use burn::tensor::{Device, DeviceConfig, FloatDType};

/// A Burn backend that a binary can run on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Burn's pure-Rust CPU backend (default; what the tests use).
    Flex,
    /// The ndarray CPU backend (deprecated upstream, kept for users who name it).
    Ndarray,
    /// The project's CPU decode engine (`par-cpu`): sampling's decode steps on host memory with
    /// the gemm crate's kernels; everything else (training, scoring, the tokenizer) runs on flex.
    /// The default for sampling when compiled in.
    Host,
    /// WebGPU through wgpu: Vulkan, Metal, DX12 (lavapipe in CI).
    Wgpu,
    /// NVIDIA CUDA through CubeCL.
    Cuda,
}

impl Backend {
    /// Every backend, compiled in or not.
    pub const ALL: [Backend; 5] =
        [Backend::Flex, Backend::Ndarray, Backend::Host, Backend::Wgpu, Backend::Cuda];

    /// Whether training on this backend defaults to bf16 compute with f32 master weights (the
    /// paper's mixed precision; docs/training.md): on CUDA only. CPU backends and wgpu train in
    /// f32 (flex's and wgpu's bf16 matmuls are not faster there, and lavapipe lacks them).
    pub fn trains_in_bf16(self) -> bool {
        self == Backend::Cuda
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Host => "host",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// Whether this binary was built with the backend's feature.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Ndarray => cfg!(feature = "ndarray"),
            Backend::Host => cfg!(feature = "host"),
            Backend::Wgpu => cfg!(feature = "wgpu-bare"),
            Backend::Cuda => cfg!(feature = "cuda-bare"),
        }
    }

    /// Whether the backend runs with Burn's kernel fusion and autotune (the GPU backends in a
    /// default build; `wgpu-bare` / `cuda-bare` builds turn both off for the ablation).
    pub fn fusion(self) -> bool {
        matches!(self, Backend::Wgpu | Backend::Cuda) && cfg!(feature = "fusion")
    }

    /// The backends compiled into this binary, in [`Backend::ALL`] order.
    pub fn compiled() -> Vec<Backend> {
        Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The backend used when none is asked for: the first compiled one (flex in a default build).
    pub fn default_compiled() -> Option<Backend> {
        Self::compiled().into_iter().next()
    }

    /// Whether the backend's tensors live in host memory (the CPU backends), so that the size
    /// checks weigh a job's activations against the machine's free memory; a GPU's own memory
    /// cannot be read through Burn 0.22.
    pub fn uses_host_memory(self) -> bool {
        matches!(self, Backend::Flex | Backend::Ndarray | Backend::Host)
    }

    /// Whether sampling on this backend uses the CPU decode engine instead of the Burn model.
    pub fn decodes_on_host(self) -> bool {
        self == Backend::Host
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Default floating-point precision of the device's tensors.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// 32-bit IEEE float.
    #[default]
    F32,
    /// bfloat16 (8-bit exponent, 7-bit mantissa).
    Bf16,
    /// IEEE half precision.
    F16,
}

impl Dtype {
    fn float_dtype(self) -> FloatDType {
        match self {
            Dtype::F32 => FloatDType::F32,
            Dtype::Bf16 => FloatDType::BF16,
            Dtype::F16 => FloatDType::F16,
        }
    }

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "f32",
            Dtype::Bf16 => "bf16",
            Dtype::F16 => "f16",
        }
    }
}

/// Why no device could be made.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The backend's cargo feature was off when this binary was built.
    #[error(
        "backend `{requested}` is not compiled into this binary (compiled: {}); rebuild with `--features {requested}`",
        list(available)
    )]
    NotCompiled {
        /// What was asked for.
        requested: Backend,
        /// What this binary has.
        available: Vec<Backend>,
    },
    /// The binary was built with no backend feature at all.
    #[error(
        "no backend is compiled into this binary; build it with one of the features flex, ndarray, host, wgpu, cuda"
    )]
    NoBackend,
    /// A CPU backend has one device.
    #[error("backend `{backend}` has a single device (index 0), got --device-index {index}")]
    NoSuchDevice {
        /// The backend.
        backend: Backend,
        /// The index asked for.
        index: usize,
    },
    /// A GPU backend has no such device on this machine (the adapters Burn enumerates).
    #[error(
        "backend `{backend}` has no device {} on this machine ({available} found); `par devices --backend {backend}` lists what runs",
        index.map_or("at all".to_string(), |i| format!("--device-index {i}"))
    )]
    NoGpu {
        /// The backend.
        backend: Backend,
        /// The index asked for (`None`: the default device).
        index: Option<usize>,
        /// Devices of this backend found.
        available: usize,
    },
    /// The device refused the precision.
    #[error("backend `{backend}` cannot use --dtype {}: {source}", dtype.name())]
    Dtype {
        /// The backend.
        backend: Backend,
        /// The precision asked for.
        dtype: Dtype,
        /// Burn's reason.
        #[source]
        source: burn::tensor::DeviceError,
    },
}

fn list(backends: &[Backend]) -> String {
    if backends.is_empty() {
        return "none".into();
    }
    backends.iter().map(|b| b.name()).collect::<Vec<_>>().join(", ")
}

/// The device flags every binary takes (`#[command(flatten)]`).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, clap::Args, serde::Serialize, serde::Deserialize,
)]
pub struct DeviceArgs {
    /// Backend to run on [default: flex; for sampling, host (the CPU decode engine) when compiled
    /// in]. `host` runs everything but sampling's decode steps on flex.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Device index: the GPU ordinal for cuda, the discrete-GPU ordinal for wgpu (omitted: wgpu's
    /// preferred adapter); CPU backends only have index 0.
    #[arg(long)]
    pub device_index: Option<usize>,
    /// Default float precision of tensors on the device.
    #[arg(long, value_enum, default_value_t = Dtype::F32)]
    pub dtype: Dtype,
}

impl DeviceArgs {
    /// The backend these arguments resolve to.
    ///
    /// # Errors
    ///
    /// [`DeviceError::NoBackend`] if nothing was asked for and nothing is compiled in.
    pub fn backend(&self) -> Result<Backend, DeviceError> {
        self.backend.or_else(Backend::default_compiled).ok_or(DeviceError::NoBackend)
    }

    /// The backend sampling runs on: the one asked for, else the CPU decode engine (`host`)
    /// when it is compiled in, else [`DeviceArgs::backend`].
    ///
    /// # Errors
    ///
    /// [`DeviceError::NoBackend`] if nothing was asked for and nothing is compiled in.
    pub fn sampling_backend(&self) -> Result<Backend, DeviceError> {
        match self.backend {
            Some(b) => Ok(b),
            None if Backend::Host.is_compiled() => Ok(Backend::Host),
            None => self.backend(),
        }
    }

    /// These arguments with the backend fixed (e.g. to [`DeviceArgs::sampling_backend`]).
    pub fn with_backend(&self, backend: Backend) -> Self {
        Self { backend: Some(backend), ..self.clone() }
    }

    /// Builds and configures the device. Call it once, before creating any tensor: the float
    /// precision locks on a device's first tensor.
    ///
    /// # Errors
    ///
    /// [`DeviceError`] if the backend is not compiled in, the index does not exist for a CPU
    /// backend, or the backend refuses the precision.
    pub fn device(&self) -> Result<Device, DeviceError> {
        let backend = self.backend()?;
        let mut device = make_device(backend, self.device_index)?;
        if self.dtype != Dtype::F32 {
            device
                .configure(DeviceConfig::default().float_dtype(self.dtype.float_dtype()))
                .map_err(|source| DeviceError::Dtype { backend, dtype: self.dtype, source })?;
        }
        Ok(device)
    }
}

#[cfg(any(feature = "flex", feature = "ndarray", feature = "host"))]
fn cpu_only_index(backend: Backend, index: Option<usize>) -> Result<(), DeviceError> {
    match index {
        None | Some(0) => Ok(()),
        Some(index) => Err(DeviceError::NoSuchDevice { backend, index }),
    }
}

/// `device` if Burn enumerates it among `kind`'s devices on this machine (any of them for the
/// default device), so that a GPU that is not there is an error naming the flag instead of a
/// panic inside the runtime's first kernel launch.
#[cfg(any(feature = "wgpu-bare", feature = "cuda-bare"))]
fn gpu_present(
    backend: Backend,
    index: Option<usize>,
    device: Device,
    kind: burn::tensor::DeviceType,
) -> Result<Device, DeviceError> {
    let available = Device::enumerate(kind);
    let found = match index {
        None => !available.is_empty(),
        Some(_) => available.contains(&device),
    };
    if found {
        Ok(device)
    } else {
        Err(DeviceError::NoGpu { backend, index, available: available.len() })
    }
}

#[allow(unused_variables)] // `index` is unused when only CPU backends are compiled in
fn make_device(backend: Backend, index: Option<usize>) -> Result<Device, DeviceError> {
    let not_compiled =
        || DeviceError::NotCompiled { requested: backend, available: Backend::compiled() };
    match backend {
        #[cfg(feature = "flex")]
        Backend::Flex => cpu_only_index(backend, index).map(|()| Device::flex()),
        #[cfg(feature = "ndarray")]
        #[allow(deprecated)]
        // deprecated upstream in favour of flex; our users still name it
        Backend::Ndarray => cpu_only_index(backend, index).map(|()| Device::ndarray()),
        // The engine's own work is on the host; the rest runs on flex.
        #[cfg(feature = "host")]
        Backend::Host => cpu_only_index(backend, index).map(|()| Device::flex()),
        #[cfg(feature = "wgpu-bare")]
        Backend::Wgpu => gpu_present(
            backend,
            index,
            Device::wgpu(match index {
                None => burn::tensor::DeviceKind::DefaultDevice,
                Some(i) => burn::tensor::DeviceKind::DiscreteGpu(i),
            }),
            burn::tensor::DeviceType::Wgpu,
        ),
        #[cfg(feature = "cuda-bare")]
        Backend::Cuda => gpu_present(
            backend,
            index,
            Device::cuda(index.unwrap_or(0)),
            burn::tensor::DeviceType::Cuda,
        ),
        #[allow(unreachable_patterns)] // every backend compiled in
        _ => Err(not_compiled()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        device: DeviceArgs,
    }

    #[test]
    fn every_backend_name_parses_even_when_not_compiled() {
        for b in Backend::ALL {
            let cli = Cli::try_parse_from(["x", "--backend", b.name()]).unwrap();
            assert_eq!(cli.device.backend, Some(b));
        }
        assert!(Cli::try_parse_from(["x", "--backend", "tpu"]).is_err());
    }

    #[test]
    fn dtype_flag_parses() {
        let cli = Cli::try_parse_from(["x", "--dtype", "bf16", "--device-index", "1"]).unwrap();
        assert_eq!(cli.device.dtype, Dtype::Bf16);
        assert_eq!(cli.device.device_index, Some(1));
        assert_eq!(Cli::try_parse_from(["x"]).unwrap().device.dtype, Dtype::F32);
    }

    #[test]
    fn not_compiled_error_is_one_line_and_lists_what_is() {
        let e = DeviceError::NotCompiled {
            requested: Backend::Cuda,
            available: vec![Backend::Flex, Backend::Ndarray],
        };
        assert_eq!(
            e.to_string(),
            "backend `cuda` is not compiled into this binary (compiled: flex, ndarray); rebuild with `--features cuda`"
        );
    }

    #[test]
    fn uncompiled_backends_are_refused() {
        for b in Backend::ALL.into_iter().filter(|b| !b.is_compiled()) {
            let args = DeviceArgs { backend: Some(b), ..Default::default() };
            match args.device() {
                Err(DeviceError::NotCompiled { requested, available }) => {
                    assert_eq!(requested, b);
                    assert_eq!(available, Backend::compiled());
                }
                other => panic!("expected NotCompiled for {b}, got {other:?}"),
            }
        }
    }

    #[cfg(feature = "flex")]
    #[test]
    fn flex_has_one_device() {
        let args = DeviceArgs {
            backend: Some(Backend::Flex),
            device_index: Some(1),
            ..Default::default()
        };
        assert!(matches!(args.device(), Err(DeviceError::NoSuchDevice { index: 1, .. })));
        let args = DeviceArgs { backend: Some(Backend::Flex), ..Default::default() };
        assert_eq!(args.device().unwrap(), Device::flex());
    }
}
