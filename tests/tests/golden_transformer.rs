//! Golden test: our PyTorch fixture script (`tests/golden/gen_transformer_fixtures.py`, written
//! from docs/spec.md) saved tiny PAR/LlamaGen GPTs under the upstream keys with their
//! teacher-forced and KV-cached step logits. The Rust import must reproduce them (≤ 1e-4), on
//! every backend compiled in, and the CPU decode engine (`par-cpu`) its step logits.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::TensorData;
use par_cpu::CpuDecoder;
use par_device::{Backend, DeviceArgs};
use par_model::{ParTransformer, ParTransformerConfig, Preset, StateDict, TransformerInput};
use par_order::Slot;
use par_order::tensor::permute_codes;
use par_sample::StepModel;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/transformer")
}

fn npy_i64(name: &str) -> (Vec<usize>, Vec<i64>) {
    let bytes = std::fs::read(fixtures().join(name)).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<i64>().unwrap())
}

fn npy_f32(name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(fixtures().join(name)).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<f32>().unwrap())
}

fn config(name: &str) -> ParTransformerConfig {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join(format!("{name}_config.json"))).unwrap(),
    )
    .unwrap();
    let get = |k: &str| json[k].as_u64().unwrap() as usize;
    let config = Preset::GptTiny.config(get("grid_size"), get("parallel"));
    assert_eq!(
        (
            config.vocab_size,
            config.num_classes,
            config.d_model,
            config.n_layers,
            config.n_heads,
            config.ffn_hidden()
        ),
        (
            get("vocab_size"),
            get("num_classes"),
            get("dim"),
            get("n_layer"),
            get("n_head"),
            get("ffn_hidden")
        )
    );
    config
}

fn devices() -> Vec<(Backend, Device)> {
    Backend::compiled()
        .into_iter()
        .map(|b| (b, DeviceArgs { backend: Some(b), ..Default::default() }.device().unwrap()))
        .collect()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) })
}

fn check(name: &str) {
    let config = config(name);
    let (_, classes) = npy_i64(&format!("{name}_classes.npy"));
    let (shape, codes) = npy_i64(&format!("{name}_codes.npy"));
    let (_, expected) = npy_f32(&format!("{name}_logits.npy"));
    let (_, expected_steps) = npy_f32(&format!("{name}_step_logits.npy"));
    let [batch, n] = shape[..] else { panic!("codes shape {shape:?}") };
    for (backend, device) in devices() {
        let model =
            ParTransformer::load(&fixtures().join(format!("{name}.pt")), Some(&config), &device)
                .unwrap();
        let raster =
            Tensor::<2, Int>::from_data(TensorData::new(codes.clone(), [batch, n]), &device);
        let par = permute_codes(raster, model.schedule().order()).unwrap();
        let class_tensor =
            Tensor::<1, Int>::from_data(TensorData::new(classes.clone(), [batch]), &device);
        let logits = model
            .forward(TransformerInput { tokens: par.clone(), classes: class_tensor.clone() })
            .unwrap();
        let got = logits.into_data().try_into_vec_as::<f32>().unwrap();
        let diff = max_abs_diff(&got, &expected);
        assert!(diff <= 1e-4, "{name} on {backend}: teacher-forced max |Δ| = {diff}");

        // KV-cached decode feeding the same tokens, step by step: the Burn model on this
        // device, or for `host` the CPU decode engine built from it.
        let par_values = par.into_data().try_into_vec_as::<i64>().unwrap();
        let stepped = if backend.decodes_on_host() {
            stepped_logits(&CpuDecoder::new(&model), &classes, &par_values, batch)
        } else {
            stepped_logits(&model, &classes, &par_values, batch)
        };
        let diff = max_abs_diff(&stepped, &expected_steps);
        assert!(diff <= 1e-4, "{name} on {backend}: per-step max |Δ| = {diff}");
    }
    assert!(devices().iter().any(|(b, _)| b.decodes_on_host()), "the CPU engine is compiled in");
}

/// Feeds the given PAR tokens through every decode step of `model` and concatenates the step
/// logits per sample: `[batch, N, vocab]`.
fn stepped_logits<M: StepModel>(model: &M, classes: &[i64], par: &[i64], batch: usize) -> Vec<f32> {
    let schedule = model.schedule();
    let n = schedule.decode_seq_length();
    let mut cache = model.new_cache();
    let mut stepped = vec![Vec::new(); batch];
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
        let mut host = Vec::new();
        model.step(&step, classes, &values, &mut cache, &mut host).unwrap();
        let per = host.len() / batch;
        for (b, row) in stepped.iter_mut().enumerate() {
            row.extend_from_slice(&host[b * per..(b + 1) * per]);
        }
    }
    stepped.concat()
}

#[test]
fn llamagen_raster_model_bare_state_dict() {
    check("n1");
}

#[test]
fn par_4x_model_wrapped_under_model_with_pickled_args() {
    check("n4");
}

#[test]
fn par_16x_model_wrapped_under_state_dict() {
    check("n16");
}

#[test]
fn rope_table_matches_fixture() {
    let model = Preset::GptTiny.config(4, 4).init(&Device::flex()).unwrap();
    let (shape, cos) = npy_f32("n4_rope_cos.npy");
    let (_, sin) = npy_f32("n4_rope_sin.npy");
    assert_eq!(shape, [20, 8]);
    let rope = model.rope();
    assert_eq!(rope.len(), 20);
    for slot in 0..20 {
        let (c, s) = rope.row(slot);
        assert!(max_abs_diff(c, &cos[slot * 8..(slot + 1) * 8]) < 1e-6, "cos row {slot}");
        assert!(max_abs_diff(s, &sin[slot * 8..(slot + 1) * 8]) < 1e-6, "sin row {slot}");
    }
}

#[test]
fn state_dict_round_trips_through_our_safetensors() {
    let device = Device::flex();
    let config = config("n4");
    let model = ParTransformer::load(&fixtures().join("n4.pt"), Some(&config), &device).unwrap();
    let dir = std::env::temp_dir().join(format!("par-golden-{}", std::process::id()));
    let path = dir.join("n4.safetensors");
    model.save(&path).unwrap();
    // Config comes from the file itself.
    let reloaded = ParTransformer::load(&path, None, &device).unwrap();
    assert_eq!(reloaded.config(), model.config());
    let original = StateDict::read(&fixtures().join("n4.pt")).unwrap();
    let saved = StateDict::read(&path).unwrap();
    assert_eq!(original.tensors, saved.tensors);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn cpu_engine_steps_equal_the_model_for_every_variant() {
    use burn::nn::{Initializer, LinearConfig};
    use par_order::{Arrangement, GroupAttention, ScheduleVariant};
    let par = ScheduleVariant::par();
    let causal = ScheduleVariant { group_attention: GroupAttention::Causal, ..par };
    // At 16× the later steps' attention is large enough for the engine's one-task-per-(sequence,
    // head) branch (`PARALLEL_ATTENTION_MIN`); at 4× it runs the heads one after another.
    for (variant, parallel) in [
        (par, 4),
        (ScheduleVariant { arrangement: Arrangement::Raster, ..par }, 4),
        (causal, 4),
        (ScheduleVariant { sequential_start: false, ..par }, 4),
        (par, 16),
        (causal, 16),
    ] {
        let device = Device::flex();
        device.seed(3);
        let config =
            Preset::GptTiny.config(8, parallel).with_initializer_range(0.3).with_variant(variant);
        let mut model = config.init(&device).unwrap();
        model.output = LinearConfig::new(config.d_model, config.vocab_size)
            .with_bias(false)
            .with_initializer(Initializer::Normal { mean: 0.0, std: 0.3 })
            .init(&device);
        let (batch, n) = (2, 64);
        let par_tokens: Vec<i64> = (0..batch * n).map(|i| (i * 29 % 64) as i64).collect();
        let classes = [4, 10];
        let burn = stepped_logits(&model, &classes, &par_tokens, batch);
        let engine = stepped_logits(&CpuDecoder::new(&model), &classes, &par_tokens, batch);
        let diff = max_abs_diff(&burn, &engine);
        let scale = burn.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(
            scale > 0.5 && diff <= 1e-4,
            "{variant:?} at {parallel}×: max |Δ| = {diff} (scale {scale})"
        );
    }
}

#[test]
fn cpu_engine_empty_step_feeds_and_predicts_nothing() {
    // `Step`'s fields are public: a caller-built step with no slots is a no-op, not a panic.
    use par_order::Step;
    let device = Device::flex();
    let model = Preset::GptTiny.config(8, 4).init(&device).unwrap();
    let engine = CpuDecoder::new(&model);
    let mut cache = engine.new_cache();
    let first = engine.schedule().steps()[0].clone();
    let mut logits = vec![1.0f32; 3];
    let empty = Step { kind: first.kind, slots: 0..0 };
    engine.step(&empty, &[4, 10], &[], &mut cache, &mut logits).unwrap();
    assert!(logits.is_empty());
    assert_eq!(cache.len(), 0);
    // The cache still takes the real first step afterwards.
    engine.step(&first, &[4, 10], &[], &mut cache, &mut logits).unwrap();
    assert_eq!(logits.len(), 2 * first.slots.len() * model.config().vocab_size);
}

#[test]
fn cpu_engine_steps_equal_the_model_on_video_models() {
    // docs/spec.md §8: 3D RoPE and learned 3D positions reach the host engine unchanged.
    use burn::nn::{Initializer, LinearConfig};
    use par_model::PositionEmbedding;
    for positions in PositionEmbedding::ALL {
        let device = Device::flex();
        device.seed(5);
        let config = Preset::GptTiny
            .video_config(3, 4, 4)
            .with_attn_dropout(0.0)
            .with_initializer_range(0.3)
            .with_position_embedding(positions);
        let mut model = config.init(&device).unwrap();
        model.output = LinearConfig::new(config.d_model, config.vocab_size)
            .with_bias(false)
            .with_initializer(Initializer::Normal { mean: 0.0, std: 0.3 })
            .init(&device);
        let (batch, n) = (2, 48);
        let par_tokens: Vec<i64> = (0..batch * n).map(|i| (i * 29 % 64) as i64).collect();
        let classes = [4, 10];
        let burn = stepped_logits(&model, &classes, &par_tokens, batch);
        let engine = stepped_logits(&CpuDecoder::new(&model), &classes, &par_tokens, batch);
        let diff = max_abs_diff(&burn, &engine);
        let scale = burn.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(scale > 0.5 && diff <= 1e-4, "{positions:?}: max |Δ| = {diff} (scale {scale})");
    }
}
