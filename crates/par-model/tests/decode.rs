//! KV-cached decoding reproduces teacher forcing, and later groups never change earlier logits.

use burn::nn::{Initializer, LinearConfig};
use burn::prelude::*;
use burn::tensor::TensorData;
use par_model::{ParTransformer, ParTransformerConfig, Preset, StepInput, TransformerInput};
use par_order::{Arrangement, GroupAttention, ScheduleVariant, Slot};

fn device() -> Device {
    Device::flex()
}

/// The tiny preset with a random (not zero) output head so that logits are informative.
fn model(grid: usize, parallel: usize) -> ParTransformer {
    model_variant(grid, parallel, ScheduleVariant::par())
}

fn model_variant(grid: usize, parallel: usize, variant: ScheduleVariant) -> ParTransformer {
    let device = device();
    device.seed(17);
    let config: ParTransformerConfig =
        Preset::GptTiny.config(grid, parallel).with_initializer_range(0.3).with_variant(variant);
    let mut model = config.init(&device).unwrap();
    model.output = LinearConfig::new(config.d_model, config.vocab_size)
        .with_bias(false)
        .with_initializer(Initializer::Normal { mean: 0.0, std: 0.3 })
        .init(&device);
    model
}

fn ints2(values: Vec<i64>, shape: [usize; 2]) -> Tensor<2, Int> {
    Tensor::from_data(TensorData::new(values, shape), &device())
}

fn ints1(values: Vec<i64>) -> Tensor<1, Int> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), &device())
}

fn tokens(batch: usize, n: usize, vocab: usize, salt: usize) -> Vec<i64> {
    (0..batch * n).map(|i| ((i * 37 + salt * 11 + 5) % vocab) as i64).collect()
}

fn to_vec(t: Tensor<3>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

/// Runs every decode step feeding the given PAR tokens; returns the concatenated step logits.
fn decode_all(
    model: &ParTransformer,
    par: &[i64],
    classes: &[i64],
    batch: usize,
) -> Vec<Tensor<3>> {
    let schedule = model.schedule();
    let n = schedule.decode_seq_length();
    let mut cache = model.new_cache();
    let mut out = Vec::new();
    for step in schedule.steps() {
        let fed: Vec<usize> = step
            .slots
            .clone()
            .filter_map(
                |s| if let Some(Slot::Token(k)) = schedule.slot(s) { Some(k) } else { None },
            )
            .collect();
        let values: Vec<i64> =
            (0..batch).flat_map(|b| fed.iter().map(move |&k| par[b * n + k])).collect();
        let input = StepInput {
            step: step.clone(),
            classes: ints1(classes.to_vec()),
            tokens: ints2(values, [batch, fed.len()]),
        };
        out.push(model.forward_step(input, &mut cache).unwrap());
    }
    out
}

/// PAR and the paper's Table 4 ablations.
fn variants() -> Vec<ScheduleVariant> {
    let par = ScheduleVariant::par();
    vec![
        par,
        ScheduleVariant { arrangement: Arrangement::Raster, ..par },
        ScheduleVariant { group_attention: GroupAttention::Causal, ..par },
        ScheduleVariant { sequential_start: false, ..par },
    ]
}

#[test]
fn kv_cached_steps_equal_teacher_forced_logits() {
    let cases = [(4, 1), (4, 4), (8, 4), (8, 16)].into_iter().flat_map(|(g, n)| {
        variants().into_iter().filter(move |v| n > 1 || v.is_par()).map(move |v| (g, n, v))
    });
    for (grid, parallel, variant) in cases {
        let model = model_variant(grid, parallel, variant);
        let n = grid * grid;
        let batch = 2;
        let par = tokens(batch, n, 64, parallel);
        let classes = vec![3, 10];
        let full = model
            .forward(TransformerInput {
                tokens: ints2(par.clone(), [batch, n]),
                classes: ints1(classes.clone()),
            })
            .unwrap();
        assert_eq!(full.dims(), [batch, n, 64]);
        let steps = decode_all(&model, &par, &classes, batch);
        assert_eq!(steps.len(), model.schedule().num_steps());
        let stepped = Tensor::cat(steps, 1);
        let (a, b) = (to_vec(full), to_vec(stepped));
        let max = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) });
        let scale = a.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
        assert!(scale > 0.5, "logits should be informative, max |logit| = {scale}");
        assert!(max <= 1e-4, "grid {grid} n {parallel} {variant:?}: max |Δ| = {max}");
    }
}

#[test]
fn later_groups_do_not_change_earlier_logits() {
    for (grid, parallel) in [(4, 1), (4, 4), (8, 16)] {
        let model = model(grid, parallel);
        let schedule = model.schedule().clone();
        let n = grid * grid;
        let par = tokens(1, n, 64, 1);
        let logits = |tokens: Vec<i64>| {
            to_vec(
                model
                    .forward(TransformerInput {
                        tokens: ints2(tokens, [1, n]),
                        classes: ints1(vec![2]),
                    })
                    .unwrap(),
            )
        };
        let base = logits(par.clone());
        for step in schedule.steps() {
            // Change every token generated at or after this step.
            let mut changed = par.clone();
            for c in &mut changed[step.slots.start..n] {
                *c = (*c + 13) % 64;
            }
            let other = logits(changed);
            let upto = step.slots.end * 64; // logits of slots < end predict tokens of this step or earlier
            assert_eq!(
                &base[..upto],
                &other[..upto],
                "grid {grid} n {parallel} step {:?}",
                step.slots
            );
            if step.slots.end < n {
                assert_ne!(&base[upto..], &other[upto..], "later logits should see the change");
            }
        }
    }
}

#[test]
fn zero_initialised_head_gives_uniform_logits() {
    let device = device();
    let model = Preset::GptTiny.config(4, 4).init(&device).unwrap();
    let out = model
        .forward(TransformerInput {
            tokens: ints2(tokens(1, 16, 64, 0), [1, 16]),
            classes: ints1(vec![1]),
        })
        .unwrap();
    assert!(to_vec(out).iter().all(|&x| x == 0.0));
    let loss = model
        .loss(TransformerInput {
            tokens: ints2(tokens(1, 16, 64, 0), [1, 16]),
            classes: ints1(vec![1]),
        })
        .unwrap();
    let value = loss.into_scalar::<f64>();
    assert!((value - (64f64).ln()).abs() < 1e-5, "{value}");
}

#[test]
fn bad_inputs_are_errors() {
    let model = model(4, 4);
    let wrong = TransformerInput { tokens: ints2(vec![0; 15], [1, 15]), classes: ints1(vec![0]) };
    assert!(matches!(
        model.forward(wrong),
        Err(par_model::ForwardError::TokenCount { expected: 16, actual: 15 })
    ));
    let mismatch =
        TransformerInput { tokens: ints2(vec![0; 32], [2, 16]), classes: ints1(vec![0]) };
    assert!(matches!(model.forward(mismatch), Err(par_model::ForwardError::BatchSize(1, 2))));
    // A step out of order.
    let steps = model.schedule().steps();
    let mut cache = model.new_cache();
    let input = StepInput {
        step: steps[1].clone(),
        classes: ints1(vec![0]),
        tokens: ints2(vec![0], [1, 1]),
    };
    assert!(matches!(
        model.forward_step(input, &mut cache),
        Err(par_model::ForwardError::CacheMismatch { .. })
    ));
}

/// Zero-shot higher resolution (docs/spec.md §2.3, paper Supp. C): a checkpoint trained at grid
/// 24 (384 px) builds at grid 32 (512 px) with the same weights; only the schedule, masks and RoPE
/// table follow the new grid — 259 steps at 4× and 79 at 16×, `1 + 1024 + (n − 1)` rotary rows.
/// A cell the training grid has keeps exactly its trained rotary row; cells beyond row or column
/// 23 get new (extrapolated) rows; decoding the larger grid runs to its last step.
#[test]
fn zero_shot_larger_grid_reuses_weights_and_extends_rope() {
    for (parallel, steps, rows) in [(4, 259, 1028), (16, 79, 1040)] {
        let small = model(24, parallel);
        let state = small.to_state_dict().unwrap();
        let config = small.config().clone().with_grid_size(32);
        let large = ParTransformer::from_state_dict(&config, &state, &device()).unwrap();
        assert_eq!(large.schedule().num_steps(), steps, "PAR-{parallel}x steps at grid 32");
        assert_eq!(large.rope().len(), rows, "PAR-{parallel}x rotary rows at grid 32");
        assert_eq!(large.to_state_dict().unwrap().tensors, state.tensors, "weights changed");

        let slot_of_cell: std::collections::HashMap<_, _> = (0..large.rope().len())
            .filter_map(|s| large.schedule().rope_cell(s).map(|c| (c, s)))
            .collect();
        assert_eq!(slot_of_cell.len(), 1024, "every cell of the 32×32 grid has a rotary row");
        let mut trained = 0;
        for slot in 0..small.rope().len() {
            let Some(cell) = small.schedule().rope_cell(slot) else { continue };
            assert_eq!(small.rope().row(slot), large.rope().row(slot_of_cell[&cell]), "{cell:?}");
            trained += 1;
        }
        assert_eq!(trained, 576);
        // An extrapolated position: (31, 31) is new and unlike the trained corner (23, 23).
        let at = |row, col| slot_of_cell[&par_order::CellPosition { frame: 0, row, col }];
        assert_ne!(large.rope().row(at(31, 31)), large.rope().row(at(23, 23)));

        // The KV-cached decode on the larger grid equals the teacher-forced forward on it (mask,
        // RoPE table and schedule built consistently for grid 32), and its first step (the class
        // token alone) equals the trained model's.
        let vocab = large.config().vocab_size;
        let codes = tokens(1, 1024, vocab, 3);
        let logits = decode_all(&large, &codes, &[1], 1);
        assert_eq!(logits.len(), steps);
        let full = large
            .forward(TransformerInput {
                tokens: ints2(codes.clone(), [1, 1024]),
                classes: ints1(vec![1]),
            })
            .unwrap();
        let (a, b) = (to_vec(full), to_vec(Tensor::cat(logits.clone(), 1)));
        let max = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) });
        assert!(max <= 1e-4, "PAR-{parallel}x at grid 32: decode vs forward max |Δ| = {max}");
        let first_small = to_vec(decode_all(&small, &tokens(1, 576, vocab, 3), &[1], 1).remove(0));
        assert_eq!(to_vec(logits[0].clone()), first_small, "the class token's logits changed");
    }
}

/// A tiny video model (docs/spec.md §8): `frames` latent frames of `grid²` tokens, spatial
/// regions, with random (not zero) head and, for learned positions, random position tables.
fn video_model(
    frames: usize,
    grid: usize,
    parallel: usize,
    positions: par_model::PositionEmbedding,
) -> ParTransformer {
    let device = device();
    device.seed(23);
    let config = Preset::GptTiny
        .video_config(frames, grid, parallel)
        .with_initializer_range(0.3)
        .with_attn_dropout(0.0)
        .with_position_embedding(positions);
    let mut model = config.init(&device).unwrap();
    model.output = LinearConfig::new(config.d_model, config.vocab_size)
        .with_bias(false)
        .with_initializer(Initializer::Normal { mean: 0.0, std: 0.3 })
        .init(&device);
    model
}

#[test]
fn video_step_counts_are_the_papers() {
    // docs/spec.md §8 / paper Table 3: 5×16×16 = 1280 tokens, 1280 / 323 / 95 steps.
    for (n, steps) in [(1, 1280), (4, 323), (16, 95)] {
        let config = Preset::GptB.video_config(5, 16, n);
        let schedule = config.schedule().unwrap();
        assert_eq!(schedule.decode_seq_length(), 1280);
        assert_eq!(schedule.num_steps(), steps, "n = {n}");
        assert_eq!(config.vocab_size, par_model::UCF101_CODEBOOK_SIZE);
        assert_eq!(config.num_classes, 101);
    }
}

#[test]
fn kv_cached_video_steps_equal_teacher_forced_logits() {
    use par_model::PositionEmbedding::{Learned, Rope};
    for (frames, grid, parallel, positions) in
        [(3, 4, 1, Rope), (3, 4, 4, Rope), (2, 8, 16, Rope), (3, 4, 4, Learned)]
    {
        let model = video_model(frames, grid, parallel, positions);
        let n = frames * grid * grid;
        let batch = 2;
        let par = tokens(batch, n, 64, parallel);
        let classes = vec![3, 10];
        let full = model
            .forward(TransformerInput {
                tokens: ints2(par.clone(), [batch, n]),
                classes: ints1(classes.clone()),
            })
            .unwrap();
        assert_eq!(full.dims(), [batch, n, 64]);
        let steps = decode_all(&model, &par, &classes, batch);
        assert_eq!(steps.len(), parallel + (n - parallel) / parallel);
        let (a, b) = (to_vec(full), to_vec(Tensor::cat(steps, 1)));
        let max = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) });
        let scale = a.iter().map(|x| x.abs()).fold(0.0f32, f32::max);
        assert!(scale > 0.5, "logits should be informative, max |logit| = {scale}");
        assert!(max <= 1e-4, "{frames}×{grid}² n {parallel} {positions:?}: max |Δ| = {max}");
    }
}

#[test]
fn video_rope_rotates_by_frame_row_and_column() {
    // gpt-tiny: head_dim 16 → 8 pairs: 2 by the frame, 3 by the row, 3 by the column, each axis
    // with θ_m = 10000^(−m/p) (written out here, not taken from the crate).
    let model = video_model(3, 4, 4, par_model::PositionEmbedding::Rope);
    let schedule = model.schedule();
    let mut seen_frames = std::collections::BTreeSet::new();
    for slot in 0..schedule.max_seq_length() {
        let (cos, sin) = model.rope().row(slot);
        let Some(cell) = schedule.rope_cell(slot) else {
            assert!(cos.iter().chain(sin).all(|&v| v == 0.0), "slot {slot}: class/transition");
            continue;
        };
        seen_frames.insert(cell.frame);
        let mut expected = Vec::new();
        for (pos, p) in [(cell.frame, 2), (cell.row, 3), (cell.col, 3)] {
            for m in 0..p {
                expected.push(pos as f64 * 10000f64.powf(-(m as f64) / p as f64));
            }
        }
        for (pair, angle) in expected.iter().enumerate() {
            assert!((cos[pair] as f64 - angle.cos()).abs() < 1e-6, "slot {slot} pair {pair}");
            assert!((sin[pair] as f64 - angle.sin()).abs() < 1e-6, "slot {slot} pair {pair}");
        }
    }
    assert_eq!(seen_frames.len(), 3);
}

#[test]
fn video_config_is_refused_by_image_only_paths_and_checked() {
    let video = Preset::GptTiny.video_config(5, 4, 4);
    let err = video.expect_image("the image sampler").unwrap_err();
    assert_eq!(err.field(), "frames");
    assert!(err.to_string().contains("video model"), "{err}");
    Preset::GptTiny.config(4, 4).expect_image("the image sampler").unwrap();
    // 3D RoPE needs a pair per axis: head_dim 4 has 2 pairs.
    let narrow = video.clone().with_d_model(8).with_n_heads(2);
    assert_eq!(narrow.validate().unwrap_err().field(), "n_heads");
    assert_eq!(video.clone().with_frames(0).validate().unwrap_err().field(), "frames");
    assert_eq!(video.with_frames(65).validate().unwrap_err().field(), "frames");
}

#[test]
fn learned_positions_round_trip_through_a_checkpoint() {
    let model = video_model(3, 4, 4, par_model::PositionEmbedding::Learned);
    let keys: Vec<String> =
        par_model::expected_keys(model.config()).into_iter().map(|(k, _)| k).collect();
    for k in
        ["pos_embeddings.frame.weight", "pos_embeddings.row.weight", "pos_embeddings.col.weight"]
    {
        assert!(keys.contains(&k.to_string()), "{k} missing from {keys:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video.safetensors");
    model.save(&path).unwrap();
    let loaded = ParTransformer::load(&path, None, &device()).unwrap();
    assert_eq!(loaded.config(), model.config());
    let n = 3 * 16;
    let input =
        || TransformerInput { tokens: ints2(tokens(1, n, 64, 1), [1, n]), classes: ints1(vec![4]) };
    let (a, b) =
        (to_vec(model.forward(input()).unwrap()), to_vec(loaded.forward(input()).unwrap()));
    assert_eq!(a, b);
    // The positions matter: zeroing the frame table changes the logits.
    let mut moved = loaded.clone();
    let pos = moved.pos_embeddings.as_mut().unwrap();
    pos.frame.weight = burn::module::Param::from_tensor(pos.frame.weight.val().zeros_like());
    assert_ne!(to_vec(moved.forward(input()).unwrap()), a);
}
