//! The ordering adapters give identical results on every backend compiled into this test binary
//! (flex and ndarray by default; wgpu with `--features wgpu`, run on lavapipe in CI).

use burn::prelude::*;
use burn::tensor::TensorData;
use par_device::{Backend, DeviceArgs};
use par_order::tensor::{masked_tensor, permute_codes, unpermute_codes};
use par_order::{ParSchedule, RegionGrid};

fn devices() -> Vec<(Backend, Device)> {
    Backend::compiled()
        .into_iter()
        .map(|b| {
            let args = DeviceArgs { backend: Some(b), ..Default::default() };
            (b, args.device().unwrap_or_else(|e| panic!("{b} should give a device: {e}")))
        })
        .collect()
}

#[test]
fn permutation_and_mask_agree_across_backends() {
    let grid = RegionGrid::image(24, 16).unwrap();
    let schedule = ParSchedule::new(grid);
    let batch = 3;
    let n_tokens = grid.num_image_tokens();
    let raster: Vec<i64> = (0..batch * n_tokens).map(|i| (i * 7919 % 16384) as i64).collect();
    let mask = schedule.attend_mask(schedule.train_seq_length()).unwrap();
    let len = mask.len();
    for (backend, device) in devices() {
        let codes = Tensor::<2, Int>::from_data(
            TensorData::new(raster.clone(), [batch, n_tokens]),
            &device,
        );
        let par = permute_codes(codes, schedule.order()).unwrap();
        let par_values = par.clone().into_data().try_into_vec_as::<i64>().unwrap();
        for b in 0..batch {
            let row = &raster[b * n_tokens..(b + 1) * n_tokens];
            let expected = schedule.order().permute(row).unwrap();
            assert_eq!(
                &par_values[b * n_tokens..(b + 1) * n_tokens],
                expected.as_slice(),
                "{backend}"
            );
        }
        let back = unpermute_codes(par, schedule.order()).unwrap();
        assert_eq!(back.into_data().try_into_vec_as::<i64>().unwrap(), raster, "{backend}");

        let masked = masked_tensor(&mask, &device).into_data().try_into_vec_as::<bool>().unwrap();
        assert_eq!(masked.len(), len * len);
        assert!(masked.iter().zip(mask.as_slice()).all(|(&m, &a)| m != a), "{backend}");
    }
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_is_compiled_in_and_runs() {
    assert!(Backend::compiled().contains(&Backend::Wgpu));
    let device =
        DeviceArgs { backend: Some(Backend::Wgpu), ..Default::default() }.device().unwrap();
    let x = Tensor::<1>::from_data([1.0f32, 2.0, 3.0], &device);
    let sum = x.sum().into_scalar::<f32>();
    assert_eq!(sum, 6.0);
}
