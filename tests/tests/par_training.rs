//! PAR training against independent values: the loss at step 0 is ln(vocab) (zero-initialised
//! head), a few hundred steps on a learnable toy code set drive it far below, the Table 5
//! optimizer decays only ≥ 2-D weights, a stopped-and-resumed run reproduces the per-step losses
//! and weights of an uninterrupted one exactly, bf16 (f32 masters) matches f32 within a stated
//! tolerance, and two data-parallel devices match one.

use burn::prelude::*;
use std::sync::Arc;

use par_model::{ParTransformerConfig, Preset};
use par_train::par::{
    CodeDataset, ParData, ParTrainConfig, Precision, train_par, weight_decay_split,
};
use par_train::{Silent, StopAt, TrainError};

fn data(train: usize, val: usize) -> ParData {
    ParData::new(toy(train), toy(val))
}

/// Burn's generator is per backend and shared by the test threads: every test that draws from
/// it (initialises a model, trains) holds this, so that seeded runs see only their own draws.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn model() -> ParTransformerConfig {
    Preset::GptTiny
        .config(4, 4)
        .with_token_dropout(0.1)
        .with_resid_dropout(0.1)
        .with_ffn_dropout(0.1)
}

/// 40 samples of 2 views of a 4×4 grid: class c draws codes from a class-specific pattern, so a
/// model can learn them (tokens of view v: (7c + 3t + v) mod 64).
fn toy(n: usize) -> CodeDataset {
    let mut codes = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let c = (i % 5) as u32;
        for v in 0..2 {
            codes.extend((0..16).map(|t| (7 * c + 3 * t + v) % 64));
        }
        labels.push(c);
    }
    CodeDataset { codes, labels, views: 2, tokens: 16 }
}

fn cfg() -> ParTrainConfig {
    ParTrainConfig::new()
        .with_epochs(100)
        .with_warmup_epochs(1)
        .with_batch_size(8)
        .with_lr(3e-3)
        .with_log_every(1)
        .with_checkpoint_every(4)
        .with_val_every(5)
        .with_seed(11)
}

#[test]
fn loss_starts_at_ln_vocab_and_falls_well_below() {
    let dir = tempfile::tempdir().unwrap();
    let _g = lock();
    let c = cfg().with_max_steps(Some(300)).with_checkpoint_every(1000).with_val_every(100);
    let r = train_par(
        dir.path(),
        &model(),
        &c,
        &data(40, 10),
        &[Device::flex()],
        false,
        Arc::new(Silent),
    )
    .unwrap()
    .report();
    let ln_v = 64f64.ln();
    assert!(
        (r.history[0].loss - ln_v).abs() < 1e-3,
        "step 0: {} vs ln 64 = {ln_v}",
        r.history[0].loss
    );
    let last: f64 = r.history[290..].iter().map(|h| h.loss).sum::<f64>() / 10.0;
    assert!(last < 0.3 * ln_v, "after 300 steps: {last}");
    let val = r.validation.last().unwrap().loss;
    assert!(val < 0.3 * ln_v, "validation: {val}");
}

#[test]
fn a_tiny_video_model_learns_clip_codes() {
    // docs/spec.md §8: 3 latent frames of 4×4 codes, spatial PAR-4×, 3D RoPE. The codes of a
    // clip change with the frame ((7c + 3t + 5f) mod 64 at cell t of frame f); the loss falls
    // far below ln 64 once the model predicts them (that the RoPE uses the frame at all is
    // video_rope_rotates_by_frame_row_and_column's job).
    let dir = tempfile::tempdir().unwrap();
    let _g = lock();
    let clips = |n: usize| {
        let mut codes = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let c = (i % 5) as u32;
            for f in 0..3 {
                codes.extend((0..16).map(|t| (7 * c + 3 * t + 5 * f) % 64));
            }
            labels.push(c);
        }
        CodeDataset { codes, labels, views: 1, tokens: 48 }
    };
    let model = Preset::GptTiny.video_config(3, 4, 4).with_token_dropout(0.0);
    let c = cfg().with_max_steps(Some(150)).with_checkpoint_every(1000).with_val_every(150);
    let r = train_par(
        dir.path(),
        &model,
        &c,
        &ParData::new(clips(40), clips(10)),
        &[Device::flex()],
        false,
        Arc::new(Silent),
    )
    .unwrap()
    .report();
    let ln_v = 64f64.ln();
    assert!((r.history[0].loss - ln_v).abs() < 1e-3, "step 0: {}", r.history[0].loss);
    let last: f64 = r.history[140..].iter().map(|h| h.loss).sum::<f64>() / 10.0;
    assert!(last < 0.3 * ln_v, "after 150 steps: {last}");
    // The exported model is the video model (frames kept in its stored config).
    let saved = par_model::ParTransformer::load(
        &dir.path().join("model.safetensors"),
        None,
        &Device::flex(),
    )
    .unwrap();
    assert_eq!(saved.config().frames, 3);
    // Image codes (16 tokens per view) do not fit a video model: refused, naming the grid.
    let err = train_par(
        &dir.path().join("img"),
        &model,
        &c,
        &data(40, 0),
        &[Device::flex()],
        false,
        Arc::new(Silent),
    )
    .unwrap_err();
    assert!(err.to_string().contains("3×4×4"), "{err}");
}

#[test]
fn weight_decay_only_on_matrices() {
    // Initialising draws from the shared generator: without the lock it could land between
    // another test's seeding and its initialisation.
    let _g = lock();
    let m = model().init(&Device::flex()).unwrap();
    let (decay, none) = weight_decay_split(&m);
    assert!(
        decay.iter().any(|p| p.contains("wqkv"))
            && decay.iter().any(|p| p.contains("tok_embeddings"))
    );
    assert!(
        decay.iter().any(|p| p.starts_with("output"))
            && decay.iter().any(|p| p.contains("spe_tok_embeddings"))
    );
    assert!(!none.is_empty() && none.iter().all(|p| p.contains("norm")), "{none:?}");
    assert!(decay.iter().all(|p| !p.contains("norm")), "{decay:?}");
}

#[test]
fn config_round_trips_through_json() {
    let c =
        cfg().with_ema_decay(Some(0.999)).with_precision(Precision::Bf16).with_max_steps(Some(7));
    let json = serde_json::to_string(&c).unwrap();
    let back: ParTrainConfig =
        par_store::from_json_with_defaults(&ParTrainConfig::new(), &json).unwrap();
    assert_eq!(back, c);
    // Fields left out take the Table 5 defaults.
    let partial: ParTrainConfig = par_store::from_json_with_defaults(
        &ParTrainConfig::new(),
        r#"{"lr": 2e-4, "batch_size": 512}"#,
    )
    .unwrap();
    assert_eq!(
        (
            partial.lr,
            partial.batch_size,
            partial.epochs,
            partial.warmup_epochs,
            partial.weight_decay
        ),
        (2e-4, 512, 300, 15, 0.05)
    );
}

#[test]
fn resumed_run_reproduces_losses_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    // Logging windows of 4 steps, checkpoints every 10 and validation every 5 (so Learner epochs
    // of 5 steps), stopped mid-window and mid-epoch at step 6.
    let c = cfg()
        .with_max_steps(Some(10))
        .with_ema_decay(Some(0.9))
        .with_log_every(4)
        .with_checkpoint_every(10);
    let d = data(40, 10);
    let _g = lock();
    let a = dir.path().join("a");
    let full = train_par(&a, &model(), &c, &d, &[Device::flex()], false, Arc::new(Silent))
        .unwrap()
        .report();
    let b = dir.path().join("b");
    let err =
        train_par(&b, &model(), &c, &d, &[Device::flex()], false, Arc::new(StopAt(6))).unwrap_err();
    assert!(matches!(err, TrainError::Interrupted { step: 6 }), "{err}");
    let other = c.clone().with_lr(1e-3);
    match train_par(&b, &model(), &other, &d, &[Device::flex()], true, Arc::new(Silent)) {
        Err(TrainError::ResumeMismatch { field, .. }) => assert_eq!(field, "lr"),
        other => panic!("expected a resume mismatch on lr, got {other:?}"),
    }
    let resumed = train_par(&b, &model(), &c, &d, &[Device::flex()], true, Arc::new(Silent))
        .unwrap()
        .report();
    assert_eq!(resumed.history, full.history, "logged losses");
    assert_eq!(resumed.validation, full.validation);
    // Validation at every multiple of val_every (5) and the last step, whatever the checkpoint
    // interval.
    assert_eq!(full.validation.iter().map(|v| v.step).collect::<Vec<_>>(), [5, 10]);
    for f in ["model.safetensors", "model_ema.safetensors"] {
        let wa = par_store::StateDict::read(&a.join(f)).unwrap();
        let wb = par_store::StateDict::read(&b.join(f)).unwrap();
        assert_eq!(wa.tensors, wb.tensors, "{f}");
    }
    assert!(a.join("config.json").is_file() && a.join("report.json").is_file());
}

/// Settings under which one AdamW update reads out the gradient: ε = 1e3 ≫ |g| and lr = 1e6 make
/// the update `lr·ĝ/(|ĝ| + ε) ≈ 1e3·g` element-wise (large against f32 rounding of the weights) (Adam's usual sign-like step is scale-free and
/// would hide a gradient scaled or dropped); no decay, no clipping, no warm-up, no dropout.
fn readout(precision: Precision) -> ParTrainConfig {
    cfg()
        .with_precision(precision)
        .with_class_dropout(0.0)
        .with_lr(1e6)
        .with_epsilon(1e3)
        .with_weight_decay(0.0)
        .with_grad_clip(1e12)
        .with_warmup_epochs(0)
        .with_checkpoint_every(1)
}

fn no_dropout() -> ParTransformerConfig {
    Preset::GptTiny
        .config(4, 4)
        .with_token_dropout(0.0)
        .with_resid_dropout(0.0)
        .with_ffn_dropout(0.0)
}

/// One resumed second step of [`second_step_weights`]: the final weights, EMA weights (when
/// on) and report.
struct Second {
    weights: par_store::StateDict,
    ema: Option<par_store::StateDict>,
    report: par_train::par::ParReport,
}

/// The zero-initialised output head gives every body weight a zero gradient at the first step.
/// So: one step of `c` (which moves only the head), then a random head planted in that
/// checkpoint, then the second step — resumed in a copy per device set — whose update reads out
/// the gradient of every parameter (see [`readout`]). Returns the checkpoint's model (and EMA)
/// weights and each copy's second step.
fn second_step_weights(
    c: ParTrainConfig,
    device_sets: &[&[Device]],
    dir: &std::path::Path,
) -> ((par_store::StateDict, Option<par_store::StateDict>), Vec<Second>) {
    let base = dir.join("base");
    let d = data(40, 0);
    train_par(
        &base,
        &no_dropout(),
        &c.clone().with_max_steps(Some(1)),
        &d,
        &[Device::flex()],
        false,
        Arc::new(Silent),
    )
    .unwrap();
    plant_random_head(&base.join("checkpoint/model.bpk"));
    let start = checkpoint_weights(&base.join("checkpoint/model.bpk"));
    let after = device_sets
        .iter()
        .enumerate()
        .map(|(k, devices)| {
            let run = dir.join(format!("run{k}"));
            copy_dir(&base, &run);
            let report = train_par(
                &run,
                &no_dropout(),
                &c.clone().with_max_steps(Some(2)),
                &d,
                devices,
                true,
                Arc::new(Silent),
            )
            .unwrap()
            .report();
            let ema = run.join("model_ema.safetensors");
            Second {
                weights: par_store::StateDict::read(&run.join("model.safetensors")).unwrap(),
                ema: ema.is_file().then(|| par_store::StateDict::read(&ema).unwrap()),
                report,
            }
        })
        .collect();
    (start, after)
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The model weights (upstream keys) of a checkpoint's model record, and its EMA weights.
fn checkpoint_weights(
    path: &std::path::Path,
) -> (par_store::StateDict, Option<par_store::StateDict>) {
    let step = load_step(path);
    (step.model.to_state_dict().unwrap(), step.ema.map(|e| e.to_state_dict().unwrap()))
}

/// A checkpoint's model record loaded into a `ParStep` (with an EMA when the record has one).
fn load_step(path: &std::path::Path) -> par_train::par::ParStep {
    let record = burn::store::ModuleRecord::load(path).unwrap();
    let init = || no_dropout().init(&Device::flex()).unwrap();
    let mut step = par_train::par::ParStep::new(init());
    if record.len() > step.clone().into_record().len() {
        step.ema = Some(init());
    }
    step.load_record(record)
}

/// Replaces the checkpoint's (zero-initialised, then one step old) output head by N(0, 0.02²).
fn plant_random_head(path: &std::path::Path) {
    map_checkpoint_params(path, |p, t| {
        (p == "model.output.weight").then(|| {
            t.device().seed(5);
            t.random_like(burn::tensor::Distribution::Normal(0.0, 0.02))
        })
    });
}

/// Per parameter: `‖Δa − Δb‖ / ‖Δa‖` of two updates from the same `start` (Δ = after − start),
/// and `‖Δa‖`.
fn update_differences(
    start: &par_store::StateDict,
    a: &par_store::StateDict,
    b: &par_store::StateDict,
) -> Vec<(String, f64, f64)> {
    start
        .tensors
        .iter()
        .map(|(k, t0)| {
            let (ta, tb) = (&a.tensors[k].values, &b.tensors[k].values);
            let (mut da, mut dd) = (0f64, 0f64);
            for ((w0, wa), wb) in t0.values.iter().zip(ta).zip(tb) {
                da += ((wa - w0) as f64).powi(2);
                dd += ((wa - wb) as f64).powi(2);
            }
            (k.clone(), dd.sqrt() / da.sqrt(), da.sqrt())
        })
        .collect()
}

#[test]
fn bf16_gradients_match_f32_parameter_by_parameter() {
    // Stated tolerance: every parameter's bf16 gradient within 5 % (relative L2) of the f32 one
    // (bf16 keeps 8 mantissa bits, ≈ 0.4 % per rounding, through two layers and the loss).
    let dir = tempfile::tempdir().unwrap();
    let _g = lock();
    let one = [Device::flex()];
    let ((s32, _), w32) =
        second_step_weights(readout(Precision::F32), &[&one], &dir.path().join("f32"));
    let ((s16, _), w16) =
        second_step_weights(readout(Precision::Bf16), &[&one], &dir.path().join("bf16"));
    assert_eq!(
        s32.tensors, s16.tensors,
        "both precisions start the second step from the same weights"
    );
    let diffs = update_differences(&s32, &w32[0].weights, &w16[0].weights);
    assert_eq!(
        diffs.len(),
        no_dropout().init(&Device::flex()).unwrap().to_state_dict().unwrap().tensors.len()
    );
    for (k, rel, norm) in &diffs {
        assert!(*norm > 1e-3, "{k}: no gradient reached it ({norm})");
        assert!(*rel < 0.05, "{k}: bf16 update differs by {rel:.4} (relative)");
    }
}

#[test]
fn two_devices_match_one_parameter_by_parameter() {
    // Batch 7 over two devices: parts of 3 and 4 samples, weighted 3/7 and 4/7 (a weighting by
    // 1/devices would give 1/2 and 1/2 and fail).
    let dir = tempfile::tempdir().unwrap();
    let _g = lock();
    let two = [Device::flex(), Device::flex()];
    let c = readout(Precision::F32).with_batch_size(7);
    let ((start, _), w) = second_step_weights(c, &[&[Device::flex()], &two], dir.path());
    for (k, rel, norm) in update_differences(&start, &w[0].weights, &w[1].weights) {
        assert!(norm > 1e-3, "{k}: no gradient reached it ({norm})");
        assert!(rel < 1e-5, "{k}: the two-device update differs by {rel:e} (relative)");
    }
}

#[test]
fn the_learner_step_clips_the_global_gradient_norm() {
    // The same second step with the clip at 1e12 (off) and at 0.05: every body parameter's
    // update (linear in its gradient here, see `readout`) shrinks by 0.05 / ‖g‖, where ‖g‖ is
    // the reported norm before clipping. (The head's update also carries its first step's
    // moment, which clipping changed, so it is left out.)
    let dir = tempfile::tempdir().unwrap();
    let _g = lock();
    let one = [Device::flex()];
    let ((start, _), free) =
        second_step_weights(readout(Precision::F32), &[&one], &dir.path().join("free"));
    let clip = 0.05;
    let ((start_c, _), clipped) = second_step_weights(
        readout(Precision::F32).with_grad_clip(clip),
        &[&one],
        &dir.path().join("clipped"),
    );
    let norm = free[0].report.history[1].grad_norm;
    assert_eq!(norm, clipped[0].report.history[1].grad_norm, "the same gradient, before clipping");
    let scale = clip / (norm + 1e-6);
    assert!(scale < 0.2, "the clip must bite: ‖g‖ = {norm}");
    let mut compared = 0;
    for (k, t0) in &start.tensors {
        if k == "output.weight" {
            continue;
        }
        let (mut err, mut size) = (0f64, 0f64);
        for (((w0, wf), w0c), wc) in t0
            .values
            .iter()
            .zip(&free[0].weights.tensors[k].values)
            .zip(&start_c.tensors[k].values)
            .zip(&clipped[0].weights.tensors[k].values)
        {
            let expected = scale * (wf - w0) as f64;
            err += ((wc - w0c) as f64 - expected).powi(2);
            size += expected.powi(2);
        }
        assert!(size > 0.0, "{k}: no update");
        let rel = (err / size).sqrt();
        assert!(rel < 1e-3, "{k}: the clipped update is off by {rel:e} (relative)");
        compared += 1;
    }
    assert!(compared >= 10, "{compared} parameters compared");
}

#[test]
fn the_ema_blends_after_every_update() {
    // ema ← d·ema + (1 − d)·w after the update, every parameter, d = 0.5.
    let dir = tempfile::tempdir().unwrap();
    let _g = lock();
    let c = readout(Precision::F32).with_ema_decay(Some(0.5));
    let ((_, ema1), after) = second_step_weights(c, &[&[Device::flex()]], dir.path());
    let ema1 = ema1.expect("the checkpoint holds the EMA");
    let ema2 = after[0].ema.as_ref().expect("model_ema.safetensors");
    let w2 = &after[0].weights;
    for (k, e1) in &ema1.tensors {
        let (mut err, mut moved) = (0f64, 0f64);
        for ((a, w), e) in e1.values.iter().zip(&w2.tensors[k].values).zip(&ema2.tensors[k].values)
        {
            let expected = 0.5 * *a as f64 + 0.5 * *w as f64;
            err = err.max((*e as f64 - expected).abs() / expected.abs().max(1e-3));
            moved = moved.max((*e - *a).abs() as f64);
        }
        assert!(err < 1e-5, "{k}: EMA off by {err:e} (relative)");
        assert!(moved > 0.0, "{k}: the EMA did not move");
    }
}

#[test]
fn training_stops_at_the_first_non_finite_loss_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let _g = lock();
    // lr 1e30 with no warm-up: the first update blows the weights up, a later loss is NaN.
    let c = cfg().with_max_steps(Some(20)).with_warmup_epochs(0).with_lr(1e30);
    let fresh = dir.path().join("fresh");
    let err =
        train_par(&fresh, &model(), &c, &data(40, 0), &[Device::flex()], false, Arc::new(Silent))
            .unwrap_err();
    match err {
        TrainError::NonFinite { step, last_checkpoint: None, .. } => assert!(step >= 2, "{step}"),
        other => panic!("expected divergence before any checkpoint, got {other:?}"),
    }
    assert!(!fresh.join("model.safetensors").exists(), "no weights from a diverged run");
    assert!(!fresh.join("config.json").exists(), "a run without a checkpoint leaves nothing");
    // With a checkpoint after step 1 (taken before the blow-up shows), that checkpoint stays.
    let kept = dir.path().join("kept");
    let c1 = c.clone().with_checkpoint_every(1).with_lr(3e-3);
    train_par(
        &kept,
        &model(),
        &c1.clone().with_max_steps(Some(1)),
        &data(40, 0),
        &[Device::flex()],
        false,
        Arc::new(Silent),
    )
    .unwrap();
    let before = std::fs::read(kept.join("checkpoint/state.json")).unwrap();
    let c2 = c1.with_max_steps(Some(20));
    // Same settings but max_steps: resume, then diverge only because of the weights we plant.
    plant_huge_head(&kept.join("checkpoint/model.bpk"));
    let err =
        train_par(&kept, &model(), &c2, &data(40, 0), &[Device::flex()], true, Arc::new(Silent))
            .unwrap_err();
    assert!(
        matches!(err, TrainError::NonFinite { step: 2, last_checkpoint: Some(1), .. }),
        "{err:?}"
    );
    assert_eq!(std::fs::read(kept.join("checkpoint/state.json")).unwrap(), before);
}

/// Sets the final norm and output weights of a checkpoint's model record to 1e30.
fn plant_huge_head(path: &std::path::Path) {
    map_checkpoint_params(path, |p, t| {
        (p == "model.norm.weight" || p == "model.output.weight").then(|| t.ones_like() * 1e30)
    });
}

/// Rewrites a checkpoint's model record: `f(path, value)` gives a parameter's new value.
fn map_checkpoint_params(path: &std::path::Path, f: impl Fn(&str, Tensor<2>) -> Option<Tensor<2>>) {
    use burn::module::{Module, ModuleMapper, Param};
    struct Map<F>(Vec<String>, F);
    impl<F: Fn(&str, Tensor<2>) -> Option<Tensor<2>>> ModuleMapper for Map<F> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.0.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.0.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let path = self.0.join(".");
            let (id, value, mapper) = param.consume();
            let dims = value.dims();
            let flat: Tensor<2> = value.clone().reshape([1, dims.iter().product::<usize>()]);
            let new = match (self.1)(&path, flat) {
                Some(t) => t.reshape(dims),
                None => value,
            };
            Param::from_mapped_value(id, new, mapper)
        }
    }
    let step = load_step(path).map(&mut Map(Vec::new(), f));
    step.into_record().save(path).unwrap();
}

#[test]
fn resume_edge_cases_are_errors_or_no_ops() {
    let dir = tempfile::tempdir().unwrap();
    let _g = lock();
    let run = dir.path().join("run");
    let c = cfg().with_max_steps(Some(6));
    let go = |c: &ParTrainConfig, resume: bool| {
        train_par(&run, &model(), c, &data(40, 10), &[Device::flex()], resume, Arc::new(Silent))
    };
    assert!(matches!(go(&c, true), Err(TrainError::NothingToResume { .. })));
    assert!(!run.exists(), "a refused resume creates nothing");
    assert!(matches!(go(&c, false), Ok(par_train::Trained::Done(_))));
    let report = std::fs::read(run.join("report.json")).unwrap();
    assert!(matches!(go(&c, false), Err(TrainError::Exists { step: 6, .. })));
    match go(&c.clone().with_max_steps(Some(4)), true) {
        Err(TrainError::StepsBehind { done: 6, asked: 4, field: "max_steps", .. }) => {}
        other => panic!("expected steps behind, got {other:?}"),
    }
    match go(&c, true) {
        Ok(par_train::Trained::AlreadyFinished(r)) => assert_eq!(r.steps, 6),
        other => panic!("expected an already finished run, got {other:?}"),
    }
    assert_eq!(std::fs::read(run.join("report.json")).unwrap(), report, "nothing rewritten");
    match go(&c.clone().with_seed(12), true) {
        Err(TrainError::ResumeMismatch { field, checkpoint, now, .. }) => {
            assert_eq!((field.as_str(), checkpoint.as_str(), now.as_str()), ("seed", "11", "12"))
        }
        other => panic!("expected a mismatch on seed, got {other:?}"),
    }
    for bad in [
        c.clone().with_lr(f64::NAN),
        c.clone().with_lr(0.0),
        c.clone().with_class_dropout(1.0),
        c.clone().with_ema_decay(Some(f64::INFINITY)),
        c.clone().with_batch_size(0),
        c.clone().with_epochs(0),
    ] {
        assert!(matches!(bad.validate(), Err(TrainError::Setting { .. })), "{bad:?}");
        let fresh = dir.path().join("never");
        assert!(matches!(
            train_par(
                &fresh,
                &model(),
                &bad,
                &data(40, 0),
                &[Device::flex()],
                false,
                Arc::new(Silent),
            ),
            Err(TrainError::Setting { .. })
        ));
        assert!(!fresh.exists());
    }
}

#[test]
fn library_enum_names_round_trip() {
    // The libraries name their enums for the binaries' parsers (`par_app::choice`): every
    // name parses back to its value, and every value has a listed name.
    fn check<T: Copy + PartialEq + std::fmt::Debug + std::str::FromStr + std::fmt::Display>(
        all: &[T],
        names: &[&str],
    ) where
        T::Err: std::fmt::Debug,
    {
        assert_eq!(all.len(), names.len());
        for (v, n) in all.iter().zip(names) {
            assert_eq!(v.to_string(), *n);
            assert_eq!(n.parse::<T>().unwrap(), *v, "{n}");
        }
        assert!("no-such-name".parse::<T>().is_err());
    }
    check(&Preset::ALL, &Preset::NAMES);
    check(&par_tokenizer::TokenizerPreset::ALL, &par_tokenizer::TokenizerPreset::NAMES);
    check(&Precision::ALL, &Precision::NAMES);
    check(&par_tokenize::OutputFormat::ALL, &par_tokenize::OutputFormat::NAMES);
}
