//! The sampler on every compiled backend: the same model and seed give the same tokens as flex
//! (random draws are shared: they happen on the host), guidance scale 1 equals conditional
//! sampling, and tokens come back in raster order.

use std::path::Path;

use burn::prelude::*;
use par_device::{Backend, DeviceArgs};
use par_model::{ParTransformer, Preset};
use par_sample::{SampleConfig, SampleError, generate};

fn load(device: &Device) -> ParTransformer {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/transformer/n4.pt");
    ParTransformer::load(&path, Some(&Preset::GptTiny.config(4, 4)), device).unwrap()
}

#[test]
fn every_backend_samples_the_same_tokens_as_flex() {
    let config = SampleConfig {
        cfg_scale: 1.5,
        top_k: 20,
        top_p: 0.95,
        seed: 11,
        ..SampleConfig::default()
    };
    let classes = [1, 3, 10, 7];
    let reference = generate(&load(&Device::flex()), &classes, &config).unwrap();
    assert_eq!(reference.len(), 4);
    assert!(reference.iter().all(|codes| codes.len() == 16 && codes.iter().all(|&c| c < 64)));
    for backend in Backend::compiled() {
        let device = DeviceArgs { backend: Some(backend), ..Default::default() }.device().unwrap();
        let tokens = par_app::sample_codes(backend, &load(&device), &classes, &config).unwrap();
        assert_eq!(tokens, reference, "{backend}");
    }
}

#[test]
fn greedy_decoding_gives_the_same_tokens_on_every_backend() {
    // n = 1, 4 and 16 fixtures; greedy, with and without guidance.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/transformer");
    for (name, grid, n) in [("n1", 4, 1), ("n4", 4, 4), ("n16", 8, 16)] {
        let config = Preset::GptTiny.config(grid, n);
        for cfg_scale in [1.0, 2.0] {
            let sample = SampleConfig { greedy: true, cfg_scale, ..SampleConfig::default() };
            let mut seen: Option<Vec<Vec<u32>>> = None;
            for backend in Backend::compiled() {
                let device =
                    DeviceArgs { backend: Some(backend), ..Default::default() }.device().unwrap();
                let model = ParTransformer::load(
                    &fixtures.join(format!("{name}.pt")),
                    Some(&config),
                    &device,
                )
                .unwrap();
                let tokens = par_app::sample_codes(backend, &model, &[0, 4, 9], &sample).unwrap();
                match &seen {
                    None => seen = Some(tokens),
                    Some(first) => {
                        assert_eq!(&tokens, first, "{name} cfg {cfg_scale} on {backend}")
                    }
                }
            }
        }
    }
}

#[test]
fn a_sample_does_not_depend_on_the_rest_of_the_batch() {
    let device = Device::flex();
    let model = load(&device);
    let config = SampleConfig { seed: 9, ..SampleConfig::default() };
    let a = generate(&model, &[3, 7], &config).unwrap();
    let b = generate(&model, &[3, 5, 1], &config).unwrap();
    assert_eq!(a[0], b[0]);
}

#[test]
fn guidance_scale_one_is_conditional_sampling() {
    let device = Device::flex();
    let model = load(&device);
    let plain = SampleConfig { cfg_scale: 1.0, seed: 3, ..SampleConfig::default() };
    // cfg_interval = 0: guidance never applies, so the batch is never doubled.
    let doubled_off =
        SampleConfig { cfg_scale: 4.0, cfg_interval: Some(0), seed: 3, ..SampleConfig::default() };
    assert_eq!(
        generate(&model, &[2, 5], &plain).unwrap(),
        generate(&model, &[2, 5], &doubled_off).unwrap()
    );
    // Guidance on the first 5 steps only: the same as full guidance up to there, then the
    // null half is dropped; the result differs from both extremes.
    let partial =
        SampleConfig { cfg_scale: 4.0, cfg_interval: Some(5), seed: 3, ..SampleConfig::default() };
    let partial_tokens = generate(&model, &[2, 5], &partial).unwrap();
    let guided = SampleConfig { cfg_scale: 4.0, seed: 3, ..SampleConfig::default() };
    let full_tokens = generate(&model, &[2, 5], &guided).unwrap();
    let order = model.schedule().order();
    // Steps 0–4 (prefill, 3 sequential, transition) generate PAR positions 0..8.
    for (p, f) in partial_tokens.iter().zip(&full_tokens) {
        assert_eq!(order.permute(p).unwrap()[..8], order.permute(f).unwrap()[..8]);
    }
    assert_ne!(partial_tokens, full_tokens);
    assert_ne!(
        generate(&model, &[2, 5], &plain).unwrap(),
        generate(&model, &[2, 5], &guided).unwrap()
    );
}

#[test]
fn greedy_decoding_is_the_argmax_chain() {
    // Greedy decode must equal re-scoring its own output: every generated token is the argmax
    // of the teacher-forced logits at its position.
    use burn::tensor::TensorData;
    use par_model::TransformerInput;
    use par_order::tensor::permute_codes;
    let device = Device::flex();
    let model = load(&device);
    let config = SampleConfig { cfg_scale: 1.0, greedy: true, ..SampleConfig::default() };
    let raster = generate(&model, &[4], &config).unwrap().remove(0);
    let codes = Tensor::<2, Int>::from_data(
        TensorData::new(raster.iter().map(|&c| c as i64).collect::<Vec<_>>(), [1, 16]),
        &device,
    );
    let par = permute_codes(codes, model.schedule().order()).unwrap();
    let par_values = par.clone().into_data().try_into_vec_as::<i64>().unwrap();
    let logits = model
        .forward(TransformerInput {
            tokens: par,
            classes: Tensor::from_data(TensorData::new(vec![4i64], [1]), &device),
        })
        .unwrap()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap();
    for p in 0..16 {
        let row = &logits[p * 64..(p + 1) * 64];
        let best = (0..64).fold(0, |b, i| if row[i] > row[b] { i } else { b });
        assert_eq!(par_values[p] as usize, best, "PAR position {p}");
    }
}

#[test]
fn bad_requests_are_errors() {
    let device = Device::flex();
    let model = load(&device);
    let config = SampleConfig::default();
    assert!(matches!(generate(&model, &[], &config), Err(SampleError::Empty)));
    assert!(matches!(
        generate(&model, &[11], &config),
        Err(SampleError::ClassOutOfRange { class: 11, num_classes: 10 })
    ));
    let bad = SampleConfig { top_p: 0.0, ..SampleConfig::default() };
    assert!(matches!(generate(&model, &[1], &bad), Err(SampleError::Config(_))));
}

#[test]
fn parallel_token_picks_equal_drawing_token_by_token() {
    // `generate` takes each sample's uniform numbers in token order and then picks a step's
    // tokens in parallel. Reference: the plain loop, one `Sampler::sample` per token, sample by
    // sample, token by token. The 16× fixture has steps of 16 tokens per sample.
    use par_order::Slot;
    use par_sample::{Sampler, StepModel, guided_logits};
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/transformer");
    let device = Device::flex();
    for (name, grid, n) in [("n4", 4, 4), ("n16", 8, 16)] {
        let model = ParTransformer::load(
            &fixtures.join(format!("{name}.pt")),
            Some(&Preset::GptTiny.config(grid, n)),
            &device,
        )
        .unwrap();
        let config = SampleConfig { cfg_scale: 1.5, top_k: 30, seed: 5, ..SampleConfig::default() };
        let classes = [2usize, 8, 0];
        let batch = classes.len();
        let schedule = model.schedule().clone();
        let mut class_ids: Vec<i64> = classes.iter().map(|&c| c as i64).collect();
        class_ids.extend(std::iter::repeat_n(10, batch));
        let mut samplers: Vec<Sampler> =
            (0..batch).map(|b| Sampler::new(&config, b as u64)).collect();
        let mut par = vec![vec![0u32; schedule.decode_seq_length()]; batch];
        let (mut cache, mut logits) = (model.new_cache(), Vec::new());
        for step in schedule.steps() {
            let fed: Vec<usize> = step
                .slots
                .clone()
                .filter_map(|s| match schedule.slot(s) {
                    Some(Slot::Token(k)) => Some(k),
                    _ => None,
                })
                .collect();
            let tokens: Vec<i64> = (0..2 * batch)
                .flat_map(|r| fed.iter().map(move |&k| (r, k)))
                .map(|(r, k)| par[r % batch][k] as i64)
                .collect();
            model.step(&step, &class_ids, &tokens, &mut cache, &mut logits).unwrap();
            let (len, vocab) = (step.slots.len(), 64);
            for b in 0..batch {
                for j in 0..len {
                    let at = |r: usize| &logits[(r * len + j) * vocab..][..vocab];
                    let mut row = guided_logits(at(b), at(b + batch), config.cfg_scale);
                    par[b][step.slots.start + j] = samplers[b].sample(&mut row).unwrap() as u32;
                }
            }
        }
        let expected: Vec<Vec<u32>> =
            par.iter().map(|t| schedule.order().unpermute(t).unwrap()).collect();
        assert_eq!(generate(&model, &classes, &config).unwrap(), expected, "{name}");
    }
}
