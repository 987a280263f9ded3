//! The Burn adapters on flex: permuting code batches and the mask polarity.

use burn::prelude::*;
use burn::tensor::TensorData;
use par_order::tensor::{masked_tensor, permute_codes, unpermute_codes};
use par_order::{OrderError, ParSchedule, RegionGrid, TokenOrder};

fn codes(batch: &[Vec<i64>], device: &Device) -> Tensor<2, Int> {
    let width = batch[0].len();
    let flat: Vec<i64> = batch.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [batch.len(), width]), device)
}

fn rows(t: Tensor<2, Int>) -> Vec<i64> {
    t.into_data().try_into_vec_as::<i64>().unwrap()
}

#[test]
fn permute_batch_matches_worked_example() {
    let device = Device::flex();
    let order = TokenOrder::new(RegionGrid::image(4, 4).unwrap());
    let raster: Vec<i64> = (0..16).map(|r| 100 + r).collect();
    let reversed: Vec<i64> = (0..16).rev().collect();
    let batch = codes(&[raster.clone(), reversed.clone()], &device);
    let par = permute_codes(batch, &order).unwrap();
    let expected_order = [0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15];
    let mut expected: Vec<i64> = expected_order.iter().map(|&r| raster[r]).collect();
    expected.extend(expected_order.iter().map(|&r| reversed[r]));
    assert_eq!(rows(par.clone()), expected);
    let back = unpermute_codes(par, &order).unwrap();
    let mut original = raster;
    original.extend(reversed);
    assert_eq!(rows(back), original);
}

#[test]
fn permute_rejects_wrong_token_count() {
    let device = Device::flex();
    let order = TokenOrder::new(RegionGrid::image(4, 4).unwrap());
    let batch = codes(&[vec![0; 15]], &device);
    assert_eq!(
        permute_codes(batch.clone(), &order).unwrap_err(),
        OrderError::TokenCount { expected: 16, actual: 15 }
    );
    assert!(unpermute_codes(batch, &order).is_err());
}

#[test]
fn masked_tensor_is_the_negated_attend_mask() {
    let device = Device::flex();
    let mask = ParSchedule::new(RegionGrid::image(4, 4).unwrap()).attend_mask(19).unwrap();
    let masked = masked_tensor(&mask, &device);
    assert_eq!(masked.dims(), [19, 19]);
    let values = masked.into_data().try_into_vec_as::<bool>().unwrap();
    for (i, &m) in values.iter().enumerate() {
        assert_eq!(m, !mask.get(i / 19, i % 19));
    }
}
