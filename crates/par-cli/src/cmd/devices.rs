//! `par devices`: which backends this binary has, and a check that the selected device computes.

use burn::prelude::*;
use burn::tensor::TensorData;
use par_device::{Backend, DeviceArgs};
use par_order::tensor::permute_codes;
use par_order::{RegionGrid, TokenOrder};

/// Arguments of `par devices`.
#[derive(Debug, clap::Args)]
pub struct DevicesArgs {
    #[command(flatten)]
    device: DeviceArgs,
}

#[derive(serde::Serialize)]
struct DevicesReport {
    compiled: Vec<Backend>,
    backend: Backend,
    dtype: par_device::Dtype,
    device: String,
    /// The device permuted a 4×4 code grid into PAR order and summed floats correctly.
    check_passed: bool,
}

/// Runs `par devices`: builds the device and permutes a 4×4 grid on it (spec §1.2 example).
pub fn run(args: &DevicesArgs) -> anyhow::Result<()> {
    let device = args.device.device()?;
    let order = TokenOrder::new(RegionGrid::image(4, 4)?);
    let raster: Vec<i64> = (0..16).collect();
    let codes = Tensor::<2, Int>::from_data(TensorData::new(raster, [1, 16]), &device);
    let par = permute_codes(codes, &order)?.into_data().convert::<i64>();
    let expected: Vec<i64> = order.par_to_raster().iter().map(|&r| r as i64).collect();
    let permuted = par.try_into_vec::<i64>().map_err(|e| anyhow::anyhow!("{e:?}"))? == expected;
    // A float op in the device's default precision (exact in f32, bf16 and f16).
    let floats = Tensor::<1>::from_data([0.5f32, 1.25, 2.0, 4.25], &device);
    let sum = floats.sum().into_scalar::<f32>();
    let check_passed = permuted && sum == 8.0;
    let report = DevicesReport {
        compiled: Backend::compiled(),
        backend: args.device.backend()?,
        dtype: args.device.dtype,
        device: format!("{device:?}"),
        check_passed,
    };
    println!("{}", serde_json::to_string(&report)?);
    anyhow::ensure!(check_passed, "the device computed a wrong permutation");
    Ok(())
}
