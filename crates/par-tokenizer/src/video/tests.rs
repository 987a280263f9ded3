//! Tests of the video tokenizer (small sizes: each runs in seconds on `flex`).

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};

use super::*;

fn vec_f32<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

fn vec_i64<const D: usize>(t: Tensor<D, Int>) -> Vec<i64> {
    t.into_data().try_into_vec_as::<i64>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A tokenizer small enough for save/load tests: 2 levels (2× space, 2× time).
fn tiny_config() -> VideoTokenizerConfig {
    VideoTokenizerConfig::new()
        .with_base_channels(8)
        .with_channel_mult(vec![1, 2])
        .with_num_res_blocks(1)
        .with_temporal_downsample(vec![true])
        .with_norm_groups(4)
        .with_frames(5)
        .with_frame_size(8)
}

/// Burn's ndarray backend (deprecated in favour of flex, but still shipped and selectable).
#[allow(deprecated)]
fn ndarray() -> Device {
    Device::ndarray()
}

/// The two CPU presets.
const CPU_PRESETS: [VideoTokenizerPreset; 2] =
    [VideoTokenizerPreset::Magvit2FsqCpu, VideoTokenizerPreset::Magvit2LfqCpu];

fn clip(frames: usize, size: usize, device: &Device) -> Tensor<5> {
    Tensor::random([1, 3, frames, size, size], Distribution::Uniform(-1.0, 1.0), device)
}

// ---- causal 3D convolution and shapes --------------------------------------------------------

#[test]
fn causal_conv_replicates_the_first_frame_in_front() {
    let device = Device::flex();
    // Kernel [3, 1, 1] of ones, 1 → 1 channel, no bias: output t = x[t−2] + x[t−1] + x[t] with
    // x[−1] = x[−2] = x[0].
    let mut conv = CausalConv3d::new([1, 1], [3, 1, 1], [1, 1, 1], &device);
    conv.conv.weight = Param::from_tensor(Tensor::ones([1, 1, 3, 1, 1], &device));
    conv.conv.bias = None;
    let x = Tensor::<5>::from_data(
        TensorData::new(vec![1.0f32, 10.0, 100.0], [1, 1, 3, 1, 1]),
        &device,
    );
    assert_eq!(vec_f32(conv.forward(x.clone())), vec![3.0, 12.0, 111.0]);
    // Stride 2: frames t = 0, 2 of the above → T = 3 → (3 − 1)/2 + 1 = 2.
    let mut strided = CausalConv3d::new([1, 1], [3, 1, 1], [2, 1, 1], &device);
    strided.conv.weight = conv.conv.weight.clone();
    strided.conv.bias = None;
    assert_eq!(vec_f32(strided.forward(x)), vec![3.0, 111.0]);
    // 17 → 9 → 5 frames, 64 → 32 in space with the down-sampling conv.
    let down = CausalConv3d::new([2, 2], [3, 3, 3], [2, 2, 2], &device);
    let y = down.forward(Tensor::zeros([1, 2, 17, 64, 64], &device));
    assert_eq!(y.dims(), [1, 2, 9, 32, 32]);
    assert_eq!(down.forward(y).dims(), [1, 2, 5, 16, 16]);
}

#[test]
fn depth_to_space_doubles_space_and_time_minus_the_first_frame() {
    let device = Device::flex();
    let up = DepthToSpaceUpsample::new(4, 2, true, &device);
    assert_eq!(up.forward(Tensor::zeros([1, 4, 5, 3, 3], &device)).dims(), [1, 2, 9, 6, 6]);
    assert_eq!(up.forward(Tensor::zeros([1, 4, 9, 3, 3], &device)).dims(), [1, 2, 17, 6, 6]);
    let spatial = DepthToSpaceUpsample::new(4, 2, false, &device);
    assert_eq!(spatial.forward(Tensor::zeros([1, 4, 5, 3, 3], &device)).dims(), [1, 2, 5, 6, 6]);
    // Channel (c, s_t, s_h, s_w) lands at (frame 2t + s_t − 1, row 2y + s_h, col 2x + s_w):
    // an identity 1×1×1 conv over 8 channels of one pixel, two frames.
    let mut id = DepthToSpaceUpsample::new(8, 1, true, &device);
    let eye: Vec<f32> = (0..64).map(|i| if i / 8 == i % 8 { 1.0 } else { 0.0 }).collect();
    id.conv.conv.weight =
        Param::from_tensor(Tensor::from_data(TensorData::new(eye, [8, 8, 1, 1, 1]), &device));
    id.conv.conv.bias = None;
    let x: Vec<f32> = (0..16).map(|i| i as f32).collect(); // channel k, frame t = 8t + k... below
    let x = Tensor::<5>::from_data(TensorData::new(x, [1, 8, 2, 1, 1]), &device); // x[k, t] = 2k + t
    let y = vec_f32(id.forward(x)); // [1, 1, 3, 2, 2]
    // Output frame f (after dropping frame 0 of 4): f = 2t + s − 1; value = 2(4s + 2r + c) + t.
    let expect: Vec<f32> = [(0, 1), (1, 0), (1, 1)]
        .iter()
        .flat_map(|&(t, s)| {
            (0..2).flat_map(move |r| (0..2).map(move |c| (2 * (4 * s + 2 * r + c) + t) as f32))
        })
        .collect();
    assert_eq!(y, expect);
    // Samples of a batch stay apart: a batch of two is the two samples up-sampled one by one.
    let (a, b) = (
        Tensor::<5>::random([1, 4, 3, 2, 3], Distribution::Default, &device),
        Tensor::<5>::random([1, 4, 3, 2, 3], Distribution::Default, &device),
    );
    for up in [&up, &spatial] {
        let both = vec_f32(up.forward(Tensor::cat(vec![a.clone(), b.clone()], 0)));
        let one_by_one = [vec_f32(up.forward(a.clone())), vec_f32(up.forward(b.clone()))].concat();
        assert!(max_abs_diff(&both, &one_by_one) < 1e-6);
    }
}

#[test]
fn space_to_depth_patch_layout_and_inverse() {
    let device = Device::flex();
    // One channel, one frame, a 2×4 image with pixel (y, x) = 4y + x:
    //   0 1 2 3
    //   4 5 6 7
    // Patch 2 → 4 channels dy·2 + dx of a 1×2 grid: channel 0 = (0,0),(0,2) = [0, 2];
    // 1 = (0,1),(0,3) = [1, 3]; 2 = (1,0),(1,2) = [4, 6]; 3 = (1,1),(1,3) = [5, 7].
    let x = Tensor::<5>::from_data(
        TensorData::new((0..8).map(|v| v as f32).collect::<Vec<_>>(), [1, 1, 1, 2, 4]),
        &device,
    );
    let y = space_to_depth(x.clone(), 2);
    assert_eq!(y.dims(), [1, 4, 1, 1, 2]);
    assert_eq!(vec_f32(y.clone()), vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
    assert_eq!(vec_f32(depth_to_space(y, 2)), vec_f32(x));
    // Channels stay outermost and frames untouched: [1, 2, 2, 4, 6] with value
    // 1000c + 100t + 10y + x. Output channel 4c + 2dy + dx at frame t, (Y, X) holds input
    // (c, t, 2Y + dy, 2X + dx). E.g. channel 7 = (c 1, dy 1, dx 1) at t 1, (Y 1, X 2):
    // input (1, 1, 3, 5) = 1135; channel 2 = (c 0, dy 1, dx 0) at t 0, (Y 0, X 1): input
    // (0, 0, 1, 2) = 12; channel 4 = (c 1, dy 0, dx 0) at t 1, (0, 0): input (1, 1, 0, 0) = 1100.
    let values: Vec<f32> = (0..2)
        .flat_map(|c| {
            (0..2).flat_map(move |t| {
                (0..4).flat_map(move |y| {
                    (0..6).map(move |x| (1000 * c + 100 * t + 10 * y + x) as f32)
                })
            })
        })
        .collect();
    let x = Tensor::<5>::from_data(TensorData::new(values, [1, 2, 2, 4, 6]), &device);
    let y = space_to_depth(x.clone(), 2);
    assert_eq!(y.dims(), [1, 8, 2, 2, 3]);
    let at = |ch: usize, t: usize, yy: usize, xx: usize| {
        vec_f32(y.clone().slice([0..1, ch..ch + 1, t..t + 1, yy..yy + 1, xx..xx + 1]))[0]
    };
    assert_eq!(at(7, 1, 1, 2), 1135.0);
    assert_eq!(at(2, 0, 0, 1), 12.0);
    assert_eq!(at(4, 1, 0, 0), 1100.0);
    assert_eq!(vec_f32(depth_to_space(y, 2)), vec_f32(x));
    // Both ways identity on random non-square clips, batch 2, patch 2 and 4; patch 1 is a no-op.
    for p in [1, 2, 4] {
        let x = Tensor::<5>::random([2, 3, 5, 8, 12], Distribution::Default, &device);
        let y = space_to_depth(x.clone(), p);
        assert_eq!(y.dims(), [2, 3 * p * p, 5, 8 / p, 12 / p]);
        assert_eq!(vec_f32(depth_to_space(y.clone(), p)), vec_f32(x.clone()));
        assert_eq!(vec_f32(space_to_depth(depth_to_space(y.clone(), p), p)), vec_f32(y));
    }
}

#[test]
fn cpu_presets_map_17x64x64_to_5x8x8_and_back() {
    let device = Device::flex();
    for preset in CPU_PRESETS {
        let config = preset.config();
        assert_eq!(config.latent_shape(17, 64, 64).unwrap(), [5, 8, 8], "{preset}");
        assert_eq!(config.downsample_factors(), [4, 8]);
        let k = config.codebook_size() as i64;
        let model = config.init(&device).unwrap();
        let latent = model.encode_latent(clip(17, 64, &device)).unwrap();
        assert_eq!(latent.dims(), [1, config.quantizer.dim(), 5, 8, 8]);
        let codes = model.encode(clip(17, 64, &device)).unwrap();
        assert_eq!(codes.dims(), [1, 5, 8, 8]);
        let ids = vec_i64(codes.clone());
        assert!(ids.iter().all(|&c| (0..k).contains(&c)));
        let video = model.decode(codes).unwrap();
        assert_eq!(video.dims(), [1, 3, 17, 64, 64]);
        // A single image is a one-frame clip.
        assert_eq!(model.encode(clip(1, 64, &device)).unwrap().dims(), [1, 1, 8, 8]);
        // 8× spatially is patch 2 × two stages: a side of 60 (a multiple of 4, not of 8) is
        // refused.
        let err = model.encode(Tensor::zeros([1, 3, 17, 60, 64], &device)).unwrap_err();
        assert!(err.to_string().contains("`height` = 60"), "{err}");
    }
}

/// A deterministic clip (no random numbers, so both backends see the same input).
fn pattern_clip(batch: usize, frames: usize, size: usize, device: &Device) -> Tensor<5> {
    let n = batch * 3 * frames * size * size;
    let values: Vec<f32> = (0..n).map(|i| ((i as f32) * 0.618_034).sin() * 0.9).collect();
    Tensor::from_data(TensorData::new(values, [batch, 3, frames, size, size]), device)
}

#[test]
fn ndarray_backend_matches_flex() {
    // The same weights on both backends (through a state dict): the continuous latent, the
    // codes and the decoded clip agree within 1e-4 (an 8-dimensional reshape in the
    // depth-to-space up-sampling used to panic on ndarray, which supports 6).
    let (flex, nd) = (Device::flex(), ndarray());
    for preset in CPU_PRESETS {
        let model = preset.config().init(&flex).unwrap();
        let other = VideoTokenizer::from_state_dict(&model.to_state_dict().unwrap(), &nd).unwrap();
        let (xa, xb) = (pattern_clip(1, 17, 64, &flex), pattern_clip(1, 17, 64, &nd));
        let (za, zb) = (model.encode_latent(xa).unwrap(), other.encode_latent(xb).unwrap());
        let (la, lb) = (vec_f32(za.clone()), vec_f32(zb.clone()));
        assert_eq!(la.len(), model.config().quantizer.dim() * 5 * 8 * 8);
        let d = max_abs_diff(&la, &lb);
        assert!(d < 1e-4, "{preset}: latents differ by {d}");
        let ca = model.quantizer().quantize(za, false).indices;
        let (ia, ib) =
            (vec_i64(ca.clone()), vec_i64(other.quantizer().quantize(zb, false).indices));
        // A latent within 1e-4 of a rounding boundary could round the other way: allow 1%.
        let same = ia.iter().zip(&ib).filter(|(a, b)| a == b).count();
        assert!(same * 100 >= ia.len() * 99, "{preset}: {same} of {} codes agree", ia.len());
        // The flex codes decoded on both.
        let cb = Tensor::<4, Int>::from_data(TensorData::new(ia, [1, 5, 8, 8]), &nd);
        let (ya, yb) = (vec_f32(model.decode(ca).unwrap()), vec_f32(other.decode(cb).unwrap()));
        assert_eq!(ya.len(), 3 * 17 * 64 * 64);
        let d = max_abs_diff(&ya, &yb);
        assert!(d < 1e-4, "{preset}: decoded clips differ by {d}");
    }
}

#[test]
fn encoder_and_decoder_are_causal_in_time() {
    for preset in CPU_PRESETS {
        causal_in_time(preset);
    }
}

fn causal_in_time(preset: VideoTokenizerPreset) {
    let device = Device::flex();
    let model = preset.config().init(&device).unwrap();
    let k = model.config().codebook_size() as i64;
    let x = clip(17, 64, &device);
    let frames = |t: Tensor<5>, range: std::ops::Range<usize>| {
        vec_f32(t.narrow(2, range.start, range.end - range.start))
    };
    let base = model.encode_latent(x.clone()).unwrap();
    // Perturb input frame f: latent frames t with 4t < f (inputs ≤ 4t) must not move, latent
    // frame ⌈f/4⌉ (the first that sees frame f) must.
    for f in [1usize, 5, 9, 13, 16] {
        let seen = f.div_ceil(4);
        let noise = Tensor::random([1, 3, 1, 64, 64], Distribution::Uniform(-1.0, 1.0), &device);
        let perturbed = x.clone().slice_assign([0..1, 0..3, f..f + 1, 0..64, 0..64], noise);
        let moved = model.encode_latent(perturbed).unwrap();
        let before = max_abs_diff(&frames(base.clone(), 0..seen), &frames(moved.clone(), 0..seen));
        assert!(before < 1e-6, "{preset}: frame {f} moved latent frames < {seen} by {before}");
        let at =
            max_abs_diff(&frames(base.clone(), seen..seen + 1), &frames(moved, seen..seen + 1));
        assert!(at > 1e-4, "{preset}: frame {f} left latent frame {seen} alone");
    }
    // Perturb frame 0: the first latent frame (which sees frame 0 alone) changes.
    let first =
        x.slice_assign([0..1, 0..3, 0..1, 0..64, 0..64], Tensor::zeros([1, 3, 1, 64, 64], &device));
    let moved = model.encode_latent(first).unwrap();
    assert!(max_abs_diff(&frames(base, 0..1), &frames(moved, 0..1)) > 1e-4, "{preset}");
    // Decoder: changing latent frame 4 leaves output frames 0..=12 alone.
    let codes = Tensor::<4, Int>::from_data(
        TensorData::new((0..320).map(|i| i * 199 % k).collect::<Vec<i64>>(), [1, 5, 8, 8]),
        &device,
    );
    let out = model.decode(codes.clone()).unwrap();
    let other = codes.slice_assign([0..1, 4..5, 0..8, 0..8], Tensor::zeros([1, 1, 8, 8], &device));
    let out2 = model.decode(other).unwrap();
    assert!(
        max_abs_diff(&frames(out.clone(), 0..13), &frames(out2.clone(), 0..13)) < 1e-6,
        "{preset}"
    );
    assert!(max_abs_diff(&frames(out, 13..17), &frames(out2, 13..17)) > 1e-5, "{preset}");
}

#[test]
fn bad_clips_and_codes_are_errors_not_panics() {
    let device = Device::flex();
    let model = tiny_config().init(&device).unwrap();
    let err = model.encode(Tensor::zeros([1, 1, 5, 8, 8], &device)).unwrap_err();
    assert!(matches!(err, VideoTokenizerError::Channels { expected: 3, .. }), "{err}");
    let err = model.encode(Tensor::zeros([1, 3, 4, 8, 8], &device)).unwrap_err();
    assert!(err.to_string().contains("`frames` = 4"), "{err}");
    let err = model.encode(Tensor::zeros([1, 3, 5, 8, 7], &device)).unwrap_err();
    assert!(err.to_string().contains("`width` = 7"), "{err}");
    let err = model.encode(Tensor::zeros([0, 3, 5, 8, 8], &device)).unwrap_err();
    assert!(matches!(err, VideoTokenizerError::EmptyBatch { .. }), "{err}");
    let bad =
        Tensor::<4, Int>::from_data(TensorData::new(vec![0i64, 64_000], [1, 1, 1, 2]), &device);
    let err = model.decode(bad).unwrap_err();
    assert_eq!(err, VideoTokenizerError::CodeRange { code: 64_000, codebook_size: 64_000 });
    let err = model.decode(Tensor::<4, Int>::zeros([1, 0, 2, 2], &device)).unwrap_err();
    assert!(matches!(err, VideoTokenizerError::EmptyCodes { .. }), "{err}");
}

// ---- FSQ -------------------------------------------------------------------------------------

fn default_fsq() -> Fsq {
    Fsq::new(&FsqConfig::new()).unwrap()
}

#[test]
fn fsq_ids_and_codes_round_trip_for_all_64000_codes() {
    let device = Device::flex();
    let fsq = default_fsq();
    assert_eq!(fsq.codebook_size(), 64_000);
    assert_eq!(fsq.basis(), vec![1, 8, 64, 512, 2560, 12_800]);
    let ids: Vec<i64> = (0..64_000).collect();
    let codes = fsq.indices_to_codes_host(&ids).unwrap();
    assert_eq!(fsq.codes_to_indices_host(&codes).unwrap(), ids);
    // Tensor ops agree with the host functions, both ways.
    let id_tensor =
        Tensor::<4, Int>::from_data(TensorData::new(ids.clone(), [1, 1, 1, 64_000]), &device);
    let code_tensor = fsq.indices_to_codes(id_tensor); // [1, 6, 1, 1, 64000]
    let from_tensor = vec_f32(code_tensor.clone().permute([0, 2, 3, 4, 1]));
    assert_eq!(from_tensor, codes);
    assert_eq!(vec_i64(fsq.codes_to_indices(code_tensor)), ids);
    // Every code is distinct and on the grid `(digit − ⌊L/2⌋)/⌊L/2⌋`.
    let mut seen = std::collections::HashSet::new();
    for v in codes.chunks(6) {
        assert!(seen.insert(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()));
    }
}

#[test]
fn fsq_known_ids() {
    let fsq = default_fsq();
    let codes = fsq.indices_to_codes_host(&[0, 63_999, 36_049]).unwrap();
    assert_eq!(codes[0..6], [-1.0; 6]);
    assert_eq!(codes[6..12], [0.75, 0.75, 0.75, 1.0, 1.0, 1.0]);
    // 36049 = 1 + 2·8 + 3·64 + 0·512 + 4·2560 + 2·12800: digits (1, 2, 3, 0, 4, 2), minus
    // (4, 4, 4, 2, 2, 2), over (4, 4, 4, 2, 2, 2).
    assert_eq!(codes[12..18], [-0.75, -0.5, -0.25, -1.0, 1.0, 0.0]);
    assert_eq!(fsq.codes_to_indices_host(&[-0.75, -0.5, -0.25, -1.0, 1.0, 0.0]).unwrap(), [36_049]);
    assert!(matches!(
        fsq.indices_to_codes_host(&[64_000]),
        Err(CodeError::IdRange { id: 64_000, position: 0, codebook_size: 64_000 })
    ));
    assert!(matches!(fsq.codes_to_indices_host(&[0.0; 5]), Err(CodeError::Length { .. })));
    assert!(matches!(
        fsq.codes_to_indices_host(&[0.0, 0.0, 0.0, 0.0, 0.0, 1.5]),
        Err(CodeError::OffGrid { channel: 5, .. })
    ));
}

#[test]
fn fsq_quantizes_onto_the_grid_with_a_straight_through_gradient() {
    let device = Device::flex().autodiff();
    let fsq = Fsq::new(&FsqConfig::new().with_levels(vec![8, 5])).unwrap();
    // Columns (z_0 for L = 8, z_1 for L = 5) at two positions: (0.3, −0.7) and (−1.2, 2.0).
    // L = 8: half_l = 7·1.001/2 = 3.5035, offset 0.5, shift = atanh(0.5/3.5035) = 0.1436954;
    //   z = 0.3: tanh(0.4436954)·3.5035 − 0.5 = 0.95992 → 1 → 1/4 = 0.25
    //   z = −1.2: tanh(−1.0563046)·3.5035 − 0.5 = −3.24760 → −3 → −0.75
    // L = 5: half_l = 2.002, no offset or shift;
    //   z = −0.7: tanh(−0.7)·2.002 = −1.20994 → −1 → −0.5
    //   z = 2.0: tanh(2.0)·2.002 = 1.92998 → 2 → 1.0
    let z = Tensor::<5>::from_data(
        TensorData::new(vec![0.3f32, -1.2, -0.7, 2.0], [1, 2, 1, 1, 2]),
        &device,
    )
    .require_grad();
    let codes = fsq.quantize(z.clone());
    assert_eq!(vec_f32(codes.clone().inner()), vec![0.25, -0.75, -0.5, 1.0]);
    assert_eq!(vec_i64(fsq.codes_to_indices(codes.clone().inner())), vec![5 + 8, 1 + 8 * 4]);
    // d codes / dz = half_l · (1 − tanh²(z + shift)) / ⌊L/2⌋ (the round is skipped).
    let grads = codes.sum().backward();
    let g = vec_f32(z.grad(&grads).unwrap());
    let expect = [0.723_787, 0.337_176, 0.635_374, 0.070_721];
    assert!(max_abs_diff(&g, &expect) < 1e-5, "{g:?}");
}

// ---- LFQ -------------------------------------------------------------------------------------

#[test]
fn lfq_ids_and_signs_round_trip() {
    let device = Device::flex();
    let lfq = Lfq::new(&LfqConfig::new().with_bits(12)).unwrap();
    let ids: Vec<i64> = (0..4096).collect();
    let codes = lfq.indices_to_codes_host(&ids).unwrap();
    assert_eq!(lfq.codes_to_indices_host(&codes).unwrap(), ids);
    // Id 5 = 0b101: bits 0 and 2 set.
    assert_eq!(codes[5 * 12..5 * 12 + 4], [1.0, -1.0, 1.0, -1.0]);
    let t = Tensor::<4, Int>::from_data(TensorData::new(ids.clone(), [1, 1, 64, 64]), &device);
    let code_tensor = lfq.indices_to_codes(t);
    assert_eq!(vec_f32(code_tensor.clone().permute([0, 2, 3, 4, 1])), codes);
    assert_eq!(vec_i64(lfq.codes_to_indices(code_tensor)), ids);
    // Quantizing a continuous latent: id from the signs, straight-through gradient 1.
    let ad = Device::flex().autodiff();
    let lfq2 = Lfq::new(&LfqConfig::new().with_bits(3)).unwrap();
    let z = Tensor::<5>::from_data(TensorData::new(vec![0.2f32, -0.1, 3.0], [1, 3, 1, 1, 1]), &ad)
        .require_grad();
    let (q, aux) = lfq2.quantize(z.clone(), false);
    assert_eq!(vec_f32(q.clone().inner()), vec![1.0, -1.0, 1.0]);
    assert_eq!(vec_i64(lfq2.codes_to_indices(q.clone().inner())), vec![0b101]);
    assert_eq!(aux.inner().into_scalar::<f32>(), 0.0);
    let g = vec_f32(z.grad(&q.sum().backward()).unwrap());
    assert_eq!(g, vec![1.0, 1.0, 1.0]);
}

/// `E_n[H(p_n)] − H(E_n p_n)` by enumerating every code (host, f64).
fn brute_force_entropy(z: &[f32], bits: usize, tau: f64) -> f64 {
    let n = z.len() / bits;
    let k = 1 << bits;
    let mut avg = vec![0.0f64; k];
    let mut sample = 0.0;
    for v in z.chunks(bits) {
        let logits: Vec<f64> = (0..k)
            .map(|c| {
                let d: f64 = (0..bits)
                    .map(|i| {
                        let code = if (c >> i) & 1 == 1 { 1.0 } else { -1.0 };
                        (v[i] as f64 - code).powi(2)
                    })
                    .sum();
                -d / tau
            })
            .collect();
        let max = logits.iter().cloned().fold(f64::MIN, f64::max);
        let total: f64 = logits.iter().map(|l| (l - max).exp()).sum();
        for (c, l) in logits.iter().enumerate() {
            let p = (l - max).exp() / total;
            avg[c] += p / n as f64;
            if p > 0.0 {
                sample -= p * p.ln() / n as f64;
            }
        }
    }
    let h_avg: f64 = avg.iter().filter(|&&p| p > 0.0).map(|p| -p * p.ln()).sum();
    sample - h_avg
}

#[test]
fn lfq_entropy_penalty_matches_hand_computed_and_enumerated_values() {
    let device = Device::flex();
    // bits = 2, τ = 4 ⇒ p_i(+1) = σ(4 z_i / τ) = σ(z_i).
    // n0 = (ln 3, 0): p = (3/4, 1/2); n1 = (−ln 3, ln 3): p = (1/4, 3/4).
    // Sample entropies: H(3/4) + H(1/2) = 1.2554823, 2·H(3/4) = 1.1246702; mean 1.1900763.
    // Average over codes id = b0 + 2·b1: n0 → (1/8, 3/8, 1/8, 3/8), n1 → (3/16, 1/16, 9/16, 3/16),
    // mean (5/32, 7/32, 11/32, 9/32), entropy 1.3463475. Penalty 1.1900763 − 1.3463475.
    let ln3 = 3f32.ln();
    let z = Tensor::<2>::from_data(TensorData::new(vec![ln3, 0.0, -ln3, ln3], [2, 2]), &device);
    let got = entropy_penalty(z, 4.0).into_scalar::<f32>();
    assert!((got - (-0.156_271_16)).abs() < 1e-5, "{got}");
    // Against enumeration of all codes for odd and even bit counts, 1 to 7.
    for bits in 1..=7 {
        let z = Tensor::<2>::random([9, bits], Distribution::Normal(0.0, 0.05), &device);
        let values = vec_f32(z.clone());
        let got = entropy_penalty(z, 0.1).into_scalar::<f32>() as f64;
        let want = brute_force_entropy(&values, bits, 0.1);
        assert!((got - want).abs() < 1e-4, "bits {bits}: {got} vs {want}");
    }
    // Every vector confidently on its own code, all codes used: −ln 4.
    let z = Tensor::<2>::from_data(
        TensorData::new(vec![-1.0f32, -1., 1., -1., -1., 1., 1., 1.], [4, 2]),
        &device,
    );
    let got = entropy_penalty(z, 0.01).into_scalar::<f32>();
    assert!((got + 4f32.ln()).abs() < 1e-4, "{got}");
}

// ---- config, presets, checkpoints ------------------------------------------------------------

#[test]
fn config_validation_names_the_field() {
    let ok = VideoTokenizerConfig::new();
    assert_eq!(ok.validate(), Ok(()));
    let cases = [
        (ok.clone().with_temporal_downsample(vec![true, true]), "temporal_downsample"),
        (ok.clone().with_codebook_size(4096), "codebook_size"),
        (ok.clone().with_norm_groups(24), "norm_groups"),
        (ok.clone().with_num_res_blocks(0), "num_res_blocks"),
        (ok.clone().with_frames(16), "frames"),
        (ok.clone().with_frame_size(100), "frame_size"),
        (ok.clone().with_patch_size(0), "patch_size"),
        // Patch 3 × 2³ = 24 does not divide 128.
        (ok.clone().with_patch_size(3), "frame_size"),
        (
            ok.clone().quantized_with(VideoQuantizerConfig::Fsq(
                FsqConfig::new().with_levels(vec![8, 1]),
            )),
            "quantizer.levels",
        ),
        (
            ok.clone().quantized_with(VideoQuantizerConfig::Lfq(LfqConfig::new().with_bits(0))),
            "quantizer.bits",
        ),
        (
            ok.clone().quantized_with(VideoQuantizerConfig::Lfq(
                LfqConfig::new().with_entropy_temperature(0.0),
            )),
            "quantizer.entropy_temperature",
        ),
    ];
    for (config, field) in cases {
        let err = config.validate().unwrap_err();
        assert_eq!(err.field(), field, "{err}");
        assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
        assert_eq!(config.init(&Device::flex()).unwrap_err(), err);
    }
    for (dims, field) in
        [((16, 64, 64), "frames"), ((17, 60, 64), "height"), ((17, 64, 0), "width")]
    {
        let err = ok.latent_shape(dims.0, dims.1, dims.2).unwrap_err();
        assert_eq!(err.field(), field, "{err}");
    }
    // The patch multiplies the spatial factor: patch 2 on three stages is 16×, so 17×128² clips
    // give 5×8×8 codes and a side of 120 (a multiple of 8, not of 16) is refused, the message
    // naming `patch_size`.
    let patched = ok.clone().with_patch_size(2);
    assert_eq!(patched.validate(), Ok(()));
    assert_eq!(patched.downsample_factors(), [4, 16]);
    assert_eq!(patched.latent_shape(17, 128, 128), Ok([5, 8, 8]));
    assert_eq!(ok.latent_shape(17, 120, 128), Ok([5, 15, 16]));
    let err = patched.latent_shape(17, 120, 128).unwrap_err();
    assert_eq!(err, VideoTokenizerConfigError::Size { field: "height", size: 120, factor: 16 });
    assert!(err.to_string().contains("`patch_size`"), "{err}");
    let err = ok.clone().with_patch_size(3).validate().unwrap_err();
    assert_eq!(err, VideoTokenizerConfigError::Size { field: "frame_size", size: 128, factor: 24 });
    // An absurd patch saturates instead of overflowing.
    let huge = ok.clone().with_patch_size(usize::MAX);
    assert_eq!(huge.downsample_factors(), [4, usize::MAX]);
    assert_eq!(huge.validate().unwrap_err().field(), "frame_size");
}

#[test]
fn configs_stored_without_patch_size_load_with_patch_1() {
    // What `magvit2-fsq-cpu` was before `patch_size` existed, as stored in a checkpoint's
    // metadata or a training state file: no `patch_size` key.
    let old = r#"{"in_channels":3,"base_channels":16,"channel_mult":[1,2,4,4],"num_res_blocks":1,
        "temporal_downsample":[false,true,true],"norm_groups":8,
        "quantizer":{"kind":"fsq","levels":[8,8,8,5,5,5]},"codebook_size":64000,
        "reconstruction_loss":"mse","frames":17,"frame_size":64}"#;
    let expected = VideoTokenizerConfig::new()
        .with_base_channels(16)
        .with_channel_mult(vec![1, 2, 4, 4])
        .with_num_res_blocks(1)
        .with_norm_groups(8)
        .with_frame_size(64);
    // Through plain serde (a config inside another serialized struct) and `from_json`.
    let plain: VideoTokenizerConfig = serde_json::from_str(old).unwrap();
    assert_eq!(plain, expected);
    assert_eq!(plain.patch_size, 1);
    assert_eq!(VideoTokenizerConfig::from_json(old).unwrap(), expected);
    // The old layout's architecture and size are unchanged (no patching: 3 input channels).
    let model = plain.init(&Device::flex()).unwrap();
    assert_eq!(model.num_params(), 1_169_417);
    assert_eq!(model.encoder.conv_in.conv.weight.lazy_shape().to_vec(), vec![16, 3, 3, 3, 3]);
    // Other fields stay required by plain serde, as with Burn's derive.
    let no_frames = old.replace(r#","frames":17"#, "");
    assert!(serde_json::from_str::<VideoTokenizerConfig>(&no_frames).is_err());
    // A patched config round-trips, the field written out.
    let cpu = VideoTokenizerPreset::Magvit2FsqCpu.config();
    let json = serde_json::to_string(&cpu).unwrap();
    assert!(json.contains(r#""patch_size":2"#), "{json}");
    assert_eq!(serde_json::from_str::<VideoTokenizerConfig>(&json).unwrap(), cpu);
    assert_eq!(VideoTokenizerConfig::from_json(&json).unwrap(), cpu);
    assert_eq!(cpu.to_string(), burn::config::config_to_json(&cpu));
}

#[test]
fn presets_parse_and_have_the_documented_sizes() {
    let device = Device::flex();
    for (preset, name) in VideoTokenizerPreset::ALL.into_iter().zip(VideoTokenizerPreset::NAMES) {
        assert_eq!(preset.name(), name);
        assert_eq!(name.parse::<VideoTokenizerPreset>(), Ok(preset));
        assert_eq!(preset.to_string(), preset.name());
        let config = preset.config();
        config.validate().unwrap();
        assert_eq!(config.downsample_factors(), [4, 8]);
        assert_eq!(
            config.latent_shape(config.frames, config.frame_size, config.frame_size).unwrap()[0],
            5
        );
    }
    assert!("magvit2".parse::<VideoTokenizerPreset>().is_err());
    // Paper scale: no patch, three stages, FSQ [8, 8, 8, 5, 5, 5].
    let full = VideoTokenizerPreset::Magvit2Fsq.config();
    assert_eq!(full.patch_size, 1);
    assert_eq!(full.channel_mult, vec![1, 2, 2, 4]);
    assert_eq!(full.codebook_size(), 64_000);
    assert_eq!(full.latent_shape(17, 128, 128).unwrap(), [5, 16, 16]);
    let json: serde_json::Value = serde_json::to_value(&full).unwrap();
    assert_eq!(json["codebook_size"], 64_000);
    assert_eq!(json["patch_size"], 1);
    assert_eq!(json["quantizer"]["kind"], "fsq");
    // CPU scale: patch 2 and two stages, both temporal.
    for preset in CPU_PRESETS {
        let config = preset.config();
        assert_eq!(config.patch_size, 2);
        assert_eq!(config.channel_mult, vec![1, 2, 6]);
        assert_eq!(config.temporal_downsample, vec![true, true]);
        assert_eq!(config.latent_shape(17, 64, 64).unwrap(), [5, 8, 8]);
    }
    let fsq = VideoTokenizerPreset::Magvit2FsqCpu.config();
    assert_eq!(
        fsq.quantizer,
        VideoQuantizerConfig::Fsq(FsqConfig::new().with_levels(vec![8, 5, 5, 5]))
    );
    assert_eq!((fsq.codebook_size, fsq.codebook_size()), (1000, 1000));
    // Counted from shapes (lazy initialisation: nothing is allocated). By hand, conv =
    // cin·cout·k³ + cout, norm = 2c; CPU FSQ (q = 4 latent channels, 12 = 3·2² patch
    // channels, levels of 16, 32, 96 channels):
    //   encoder: conv_in 12·16·27+16 = 5,200; level 0: res 16→16 (norms 32 + 32, convs 6,928
    //   × 2) = 13,920 + down 6,928; level 1: res 16→32 (32 + 13,856 + 64 + 27,680 + shortcut
    //   544) = 42,176 + down 27,680; level 2: res 32→96 (64 + 83,040 + 192 + 248,928 + 3,168)
    //   = 335,392; norm 192; conv_out 96·4+4 = 388 — 431,876;
    //   decoder: conv_in 4·96·27+96 = 10,464; level 2: res 96 (192 + 248,928) × 2 = 498,240
    //   + up 96→32·8 = 24,832; level 1: res 32 (64 + 27,680) × 2 = 55,488 + up 32→16·8 =
    //   4,224; level 0: res 16 = 13,920; norm 32; conv_out 16·12·27+12 = 5,196 — 612,396.
    //   Total 1,044,272. LFQ (10 channels): conv_out 970 (+582), decoder conv_in 10·96·27+96 =
    //   26,016 (+15,552): 1,060,406.
    let params = |p: VideoTokenizerPreset| p.config().init(&device).unwrap().num_params();
    assert_eq!(params(VideoTokenizerPreset::Magvit2Fsq), 178_541_833);
    assert_eq!(params(VideoTokenizerPreset::Magvit2FsqCpu), 1_044_272);
    assert_eq!(params(VideoTokenizerPreset::Magvit2LfqCpu), 1_060_406);
    let lfq = VideoTokenizerPreset::Magvit2LfqCpu.config();
    assert_eq!(lfq.quantizer, VideoQuantizerConfig::Lfq(LfqConfig::new().with_bits(10)));
    assert_eq!(lfq.codebook_size, 1024);
    // A stored config without `codebook_size` derives it from the quantizer.
    let mut value = serde_json::to_value(&lfq).unwrap();
    value.as_object_mut().unwrap().remove("codebook_size");
    assert_eq!(VideoTokenizerConfig::from_json(&value.to_string()).unwrap(), lfq);
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("par-video-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn save_load_round_trip_is_exact() {
    let device = Device::flex();
    let dir = scratch("roundtrip");
    let path = dir.join("video.safetensors");
    for config in [
        tiny_config(),
        tiny_config().quantized_with(VideoQuantizerConfig::Lfq(LfqConfig::new().with_bits(5))),
        tiny_config().with_patch_size(2),
    ] {
        let model = config.init(&device).unwrap();
        model.save(&path).unwrap();
        let loaded = VideoTokenizer::load(&path, &device).unwrap();
        assert_eq!(loaded.config(), &config);
        let (a, b) = (model.to_state_dict().unwrap(), loaded.to_state_dict().unwrap());
        assert_eq!(a.tensors, b.tensors);
        let mut expected: Vec<String> =
            video_expected_keys(&config, &device).unwrap().into_iter().map(|(k, _)| k).collect();
        expected.sort();
        assert_eq!(a.tensors.keys().cloned().collect::<Vec<_>>(), expected);
        let x = clip(5, 8, &device);
        let (ya, yb) = (model.forward(x.clone()).unwrap(), loaded.forward(x).unwrap());
        assert_eq!(vec_f32(ya.reconstruction), vec_f32(yb.reconstruction));
        assert_eq!(vec_i64(ya.codes), vec_i64(yb.codes));
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn files_of_the_other_kind_are_refused_naming_the_path() {
    let device = Device::flex();
    let dir = scratch("kind");
    let image = dir.join("image.safetensors");
    crate::TokenizerPreset::VqTiny16.config().init(&device).unwrap().save(&image).unwrap();
    let err = VideoTokenizer::load(&image, &device).unwrap_err();
    assert!(matches!(err, VideoCheckpointError::WrongKind { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&image.display().to_string()) && msg.contains("image (VQ) tokenizer"),
        "{msg}"
    );
    // And the image tokenizer refuses a video file.
    let video = dir.join("video.safetensors");
    tiny_config().init(&device).unwrap().save(&video).unwrap();
    let err = crate::VqTokenizer::load(&video, None, &device).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&video.display().to_string()) && msg.contains("video tokenizer"), "{msg}");
    // A missing file names the path too.
    let missing = dir.join("missing.safetensors");
    let err = VideoTokenizer::load(&missing, &device).unwrap_err();
    assert!(err.to_string().contains(&missing.display().to_string()), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn forward_trains_through_the_quantizer() {
    let device = Device::flex().autodiff();
    for (config, grid) in [
        (tiny_config(), 4),
        (tiny_config().quantized_with(VideoQuantizerConfig::Lfq(LfqConfig::new().with_bits(4))), 4),
        // Patch 2 × one stage: 8 → 2.
        (tiny_config().with_patch_size(2), 2),
    ] {
        let model = config.init(&device).unwrap();
        let x = clip(5, 8, &device);
        let out = model.forward(x.clone()).unwrap();
        assert_eq!(out.reconstruction.dims(), [1, 3, 5, 8, 8]);
        assert_eq!(out.codes.dims(), [1, 3, grid, grid]);
        let aux = out.aux_loss.clone().into_scalar::<f32>();
        assert!(aux.is_finite());
        // The encoder's stem gets a gradient from the pixel loss alone, through the
        // straight-through quantizer (the auxiliary loss would reach it directly).
        let grads = model.reconstruction_loss(x, out.reconstruction).backward();
        let g = model.encoder.conv_in.conv.weight.grad(&grads).unwrap();
        assert!(vec_f32(g).iter().any(|v| *v != 0.0));
    }
}
