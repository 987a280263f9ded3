//! The only Burn glue of the ordering: permuting code batches on a device, and the single
//! conversion of an [`AttendMask`] into Burn's mask polarity.

use burn::prelude::*;
use burn::tensor::TensorData;

use crate::{AttendMask, OrderError, ParSchedule, TokenOrder};

fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let data: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(data, [indices.len()]), device)
}

/// Reorders a batch of raster-order code grids into PAR order (`out[:, p] = codes[:, order[p]]`).
///
/// # Shapes
///
/// - codes: `[batch_size, num_image_tokens]` (raster order, any int dtype)
/// - output: `[batch_size, num_image_tokens]` (PAR order)
///
/// # Errors
///
/// [`OrderError::TokenCount`] if the second dimension is not the grid's `N`.
pub fn permute_codes(
    codes: Tensor<2, Int>,
    order: &TokenOrder,
) -> Result<Tensor<2, Int>, OrderError> {
    order.check_len(codes.dims()[1])?;
    let indices = index_tensor(order.par_to_raster(), &codes.device());
    Ok(codes.select(1, indices))
}

/// Reorders a batch of PAR-order code sequences back into raster order
/// (`out[:, r] = codes[:, inverse[r]]`).
///
/// # Shapes
///
/// - codes: `[batch_size, num_image_tokens]` (PAR order)
/// - output: `[batch_size, num_image_tokens]` (raster order)
///
/// # Errors
///
/// [`OrderError::TokenCount`] if the second dimension is not the grid's `N`.
pub fn unpermute_codes(
    codes: Tensor<2, Int>,
    order: &TokenOrder,
) -> Result<Tensor<2, Int>, OrderError> {
    order.check_len(codes.dims()[1])?;
    let indices = index_tensor(order.raster_to_par(), &codes.device());
    Ok(codes.select(1, indices))
}

/// The mask as Burn's attention wants it: **true = masked out** (the negation of
/// [`AttendMask`]'s "true = may attend"). This is the one place the polarity flips
/// (`burn::tensor::module::attention` masks where the mask is true).
///
/// # Shapes
///
/// - output: `[len, len]` (query, key)
pub fn masked_tensor(mask: &AttendMask, device: &Device) -> Tensor<2, Bool> {
    let masked: Vec<bool> = mask.as_slice().iter().map(|&attend| !attend).collect();
    Tensor::from_data(TensorData::new(masked, [mask.len(), mask.len()]), device)
}

/// The mask of one KV-cached decode step in Burn's polarity (**true = masked out**): query slots
/// `slots`, key slots `0 … slots.end`, masked where [`ParSchedule::attends`] says no. Only
/// needed for causal group attention ([`ParSchedule::step_is_causal`]); a PAR step attends to
/// everything.
///
/// # Shapes
///
/// - output: `[slots.len(), slots.end]` (query, key)
pub fn step_mask(
    schedule: &ParSchedule,
    slots: std::ops::Range<usize>,
    device: &Device,
) -> Tensor<2, Bool> {
    let end = slots.end;
    let masked: Vec<bool> =
        slots.clone().flat_map(|q| (0..end).map(move |k| !schedule.attends(q, k))).collect();
    Tensor::from_data(TensorData::new(masked, [slots.len(), end]), device)
}
