//! The paper's Table 4 on Fashion-MNIST codes: PAR against its ablations, every variant with the
//! same model size, training budget and sampling settings.
//!
//! `cargo run --release -p experiments --bin ablation_parallel [-- --from runs/demo --out runs/ablation]`
//!
//! The variants (schedule options of `par_order::ScheduleVariant`, docs/spec.md §1), with their
//! decode steps on the demo's default 8×8 grid and on `demo --grid 16`:
//! - `raster-1x`: LlamaGen's raster order, one token per step (64 / 256 steps);
//! - `par-4x`, `par-16x`: PAR (19 / 67 and 19 / 31 steps: on an 8×8 grid 16 regions of 2×2
//!   need as many steps as 4 regions of 4×4, `n + (N − n)/n`, so only `--grid 16` shows 16×'s
//!   latency gain; the quality comparison holds on either);
//! - `raster-multi-4x`: raster order with 4 adjacent tokens at a time (Table 4(d));
//! - `causal-group-4x`: causal instead of bidirectional attention inside a group (Table 4(c));
//! - `no-seq-start-4x`: the first 4 tokens generated at once too (Table 4(a), 16 / 64 steps).
//!
//! It reuses a demo run (`--from`, the README's first command): its tokenizer, its pre-tokenized
//! codes, its model and training settings (`config.json`) and its sampling settings; the demo's
//! own PAR-4× model serves as `par-4x` when the budget is the demo's. Every variant trains in
//! `--out/<variant>/` (resumable: Ctrl-C, then `--resume`), samples `--per-class` images of every
//! class with the same seeds, and is scored by the embedded Fashion-MNIST classifier: class
//! fidelity, FD-FMNIST, precision and recall (`par_eval`) against the same real images as the
//! demo's report (the test split less the tokenizer's held-out images). Writes `ablation.json`, `ablation.md`
//! (steps, seconds per image, the scores, the final validation loss) and `ablation.png` (one
//! labelled row of samples per variant, the first of each class).
#![recursion_limit = "256"]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use experiments::{BarMonitor, stop_flag, write_atomic};
use par_app::{InputResult, OutputDir};
use par_data::{CodeStore, ImageSet, PixelImage};
use par_device::DeviceArgs;
use par_eval::classifier::Classifier;
use par_model::{ParTransformer, ParTransformerConfig};
use par_order::{Arrangement, GroupAttention, ScheduleVariant};
use par_sample::SampleConfig;
use par_tokenizer::VqTokenizer;
use par_train::par::{CodeDataset, ParData, ParReport, ParTrainConfig, train_par};
use serde::{Deserialize, Serialize};

/// The variants in table order: name, parallel degree, schedule variant.
fn variants() -> Vec<(&'static str, usize, ScheduleVariant)> {
    let par = ScheduleVariant::par();
    vec![
        ("raster-1x", 1, par),
        ("par-4x", 4, par),
        ("par-16x", 16, par),
        ("raster-multi-4x", 4, ScheduleVariant { arrangement: Arrangement::Raster, ..par }),
        ("causal-group-4x", 4, ScheduleVariant { group_attention: GroupAttention::Causal, ..par }),
        ("no-seq-start-4x", 4, ScheduleVariant { sequential_start: false, ..par }),
    ]
}

#[derive(Parser)]
#[command(
    allow_negative_numbers = true,
    about = "Table 4 on Fashion-MNIST codes: PAR-1×/4×/16× and the ablations, same budget"
)]
struct Args {
    /// A demo run folder (`experiments --bin demo`): its tokenizer, codes and settings are used.
    #[arg(long, default_value = "runs/demo")]
    from: PathBuf,
    /// Run directory.
    #[arg(long, default_value = "runs/ablation")]
    out: PathBuf,
    /// Continue an interrupted run in --out.
    #[arg(long)]
    resume: bool,
    /// Variants to run, comma-separated [default: all six].
    #[arg(long, value_delimiter = ',')]
    variants: Vec<String>,
    /// Training steps of every variant [default: the demo's]. The demo's learning-rate schedule
    /// is kept (fewer steps stop before its cosine reaches 0); more than the demo's are capped
    /// at its epochs.
    #[arg(long)]
    par_steps: Option<usize>,
    /// Samples per class and variant [default: the demo's; 2 with --smoke].
    #[arg(long)]
    per_class: Option<usize>,
    /// Two training steps and 2 samples per class (CI; the scores mean nothing).
    #[arg(long)]
    smoke: bool,
    /// Data-parallel workers on the one device [default: the demo's].
    #[arg(long)]
    workers: Option<usize>,
    #[command(flatten)]
    device: DeviceArgs,
}

/// The demo settings the ablation reuses (a subset of the demo's `config.json`).
#[derive(Debug, Clone, Deserialize)]
struct DemoSettings {
    /// The IDX directory the demo read (its test split, less the held-out images, is the
    /// reference set of the scores, as in the demo's report).
    data: PathBuf,
    val_images: usize,
    model: ParTransformerConfig,
    par_train: ParTrainConfig,
    per_class: usize,
    cfg_scale: f32,
    temperature: f32,
    top_k: usize,
    workers: usize,
    seed: u64,
}

/// Everything the ablation was made with (`config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AblationConfig {
    from: PathBuf,
    variants: Vec<String>,
    model: ParTransformerConfig,
    par_train: ParTrainConfig,
    per_class: usize,
    cfg_scale: f32,
    temperature: f32,
    top_k: usize,
    workers: usize,
    seed: u64,
    device: DeviceArgs,
    /// Fingerprints of the demo files the ablation reads (its config, codes, tokenizer, model
    /// and test images): a resumed ablation refuses a demo changed since (par_store::fingerprint).
    #[serde(default)]
    inputs: par_store::InputFingerprints,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    variant: String,
    parallel: usize,
    schedule: ScheduleVariant,
    steps_per_image: usize,
    seconds_per_image: f64,
    class_fidelity: f64,
    fd_fmnist: f64,
    precision: f64,
    recall: f64,
    final_val_loss: Option<f64>,
    training_steps: usize,
    /// The run folder whose model was sampled.
    run: PathBuf,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    experiments::finish_job(&args.out.clone(), || run(args))
}

fn run(args: Args) -> anyhow::Result<()> {
    for (flag, value) in [("par-steps", args.par_steps), ("per-class", args.per_class)] {
        if let Some(v) = value {
            par_app::check_positive(flag, v)?;
        }
    }
    let all = variants();
    let chosen: Vec<String> = if args.variants.is_empty() {
        all.iter().map(|v| v.0.to_string()).collect()
    } else {
        args.variants.clone()
    };
    for name in &chosen {
        if !all.iter().any(|v| v.0 == name) {
            let known: Vec<_> = all.iter().map(|v| v.0).collect();
            par_app::invalid!("--variants: unknown variant {name:?} (known: {})", known.join(", "));
        }
    }

    // ---- the demo run it builds on
    let from = &args.from;
    let missing = |what: &str| {
        format!(
            "--from {}: no {what}; run the demo first (cargo run --release -p experiments --bin demo -- --out {})",
            from.display(),
            from.display()
        )
    };
    let demo_config = from.join("config.json");
    if !demo_config.is_file() {
        par_app::invalid!("{}", missing("config.json"));
    }
    let demo: DemoSettings = read_json(&demo_config).input()?;
    for dir in ["codes", "codes_val"] {
        if !from.join(dir).join(par_data::REPORT_FILE).is_file() {
            par_app::invalid!("{}", missing(&format!("pre-tokenized {dir}/")));
        }
    }
    let tok_path = from.join("tokenizer/tokenizer.safetensors");
    if !tok_path.is_file() {
        par_app::invalid!("{}", missing("tokenizer/tokenizer.safetensors"));
    }

    let smoke = args.smoke;
    let par_steps = args.par_steps.unwrap_or(if smoke {
        2
    } else {
        demo.par_train.max_steps.unwrap_or(usize::MAX)
    });
    let mut par_train = demo.par_train.clone().with_max_steps(Some(par_steps));
    if smoke {
        par_train = par_train.with_val_every(1).with_log_every(1);
    }
    let config = AblationConfig {
        from: from.clone(),
        variants: chosen.clone(),
        model: demo.model.clone(),
        par_train: par_train.clone(),
        per_class: {
            let per_class = args.per_class.unwrap_or(if smoke { 2 } else { demo.per_class });
            experiments::check_per_class(per_class, 32.0 * 32.0 * 8.0)?;
            per_class
        },
        cfg_scale: demo.cfg_scale,
        temperature: demo.temperature,
        top_k: demo.top_k,
        workers: args.workers.unwrap_or(demo.workers),
        seed: demo.seed,
        device: args.device.clone(),
        inputs: {
            let [test_images, test_labels] =
                par_data::IdxImages::files(&demo.data, par_data::IdxSplit::Test).input()?;
            let model = from.join("par/model.safetensors");
            par_store::InputFingerprints::of([
                ("--from config.json", Some(demo_config.as_path())),
                ("--from codes", Some(from.join("codes/codes.parc").as_path())),
                ("--from validation codes", Some(from.join("codes_val/codes.parc").as_path())),
                ("--from tokenizer", Some(tok_path.as_path())),
                ("--from model", model.is_file().then_some(model.as_path())),
                ("the demo's test images", Some(test_images.as_path())),
                ("the demo's test labels", Some(test_labels.as_path())),
            ])
            .input()?
        },
    };
    if config.workers == 0 || config.workers > par_train.batch_size {
        par_app::invalid!(
            "--workers must be between 1 and the batch size {} (got {})",
            par_train.batch_size,
            config.workers
        );
    }
    par_train.validate().map_err(anyhow::Error::from).input()?;
    let device = args.device.device()?;
    let sampling_backend = args.device.sampling_backend()?;

    // ---- the run folder: refused when it holds another ablation, resumed with --resume
    let out = &args.out;
    let output = OutputDir::check(
        out,
        "--out",
        &[("--from", Some(from.as_path())), ("the demo's --data", Some(demo.data.as_path()))],
    )?;
    let config_path = out.join("config.json");
    match (config_path.is_file(), args.resume) {
        (false, true) => {
            return Err(anyhow::Error::from(par_train::TrainError::NothingToResume {
                path: out.clone(),
            })
            .context("--resume"));
        }
        (true, false) => par_app::invalid!(
            "{} holds an ablation; continue it with --resume or choose another --out",
            out.display()
        ),
        (true, true) => {
            let previous: AblationConfig = read_json(&config_path).input()?;
            // The demo's files by content (its folder spelled otherwise, or moved, is the same
            // input).
            let comparable = if previous.inputs.is_recorded() {
                previous.inputs.check_unchanged(&config.inputs, out).input()?;
                AblationConfig { from: previous.from.clone(), ..config.clone() }
            } else {
                eprintln!(
                    "warning: {} was started by an earlier version that recorded no input fingerprints; its inputs are compared by path only",
                    out.display()
                );
                AblationConfig { inputs: previous.inputs.clone(), ..config.clone() }
            };
            let flags = par_app::long_flags::<Args>();
            par_train::checkpoint::same_settings(out, "", &previous, &comparable)
                .map_err(|e| par_app::name_flag(e.into(), &flags))?;
            if out.join("ablation.json").is_file() {
                // Finished with these settings and inputs: nothing is re-sampled or rewritten.
                output.keep();
                eprintln!(
                    "the ablation in {} is already finished ({}); nothing to do",
                    out.display(),
                    out.join("ablation.md").display()
                );
                return Ok(());
            }
        }
        (false, false) => {}
    }
    write_atomic(&config_path, serde_json::to_string_pretty(&config)?.as_bytes())?;
    output.keep();

    stop_flag(); // Ctrl-C now checkpoints the running training
    let load = |dir: &str| -> anyhow::Result<CodeDataset> {
        let store = CodeStore::open(&from.join(dir))?;
        Ok(CodeDataset::load(&store, 0..store.info().num_images)?)
    };
    let par_data = ParData::new(load("codes")?, load("codes_val")?);
    let tok = VqTokenizer::load(&tok_path, None, &device)?;
    let classifier = Classifier::embedded(&device);
    // The demo's reference: the real test images it did not hold out for the tokenizer.
    let test = par_data::IdxImages::open(&demo.data, par_data::IdxSplit::Test)
        .with_context(|| format!("reading the test images of {}", demo.data.display()))
        .input()?;
    let reference = ImageSet::from_idx(&test, 32).skip(demo.val_images);
    let classes: Vec<usize> =
        (0..10).flat_map(|c| std::iter::repeat_n(c, config.per_class)).collect();
    let sample = SampleConfig {
        cfg_scale: config.cfg_scale,
        temperature: config.temperature,
        top_k: config.top_k,
        seed: config.seed,
        ..SampleConfig::default()
    };
    sample.validate()?;
    let grid = demo.model.grid_size;
    eprintln!(
        "ablation on the codes of {} ({} variants, {} training steps each, {} samples each) → {}",
        from.display(),
        chosen.len(),
        par_steps,
        classes.len(),
        out.display()
    );

    let mut rows = Vec::new();
    let mut picture = Vec::new();
    for (name, parallel, variant) in all.into_iter().filter(|v| chosen.iter().any(|c| c == v.0)) {
        eprintln!("\n== {name}");
        let dir = out.join(name);
        let result_path = dir.join("result.json");
        let model_cfg = demo.model.clone().with_parallel(parallel).with_variant(variant);
        model_cfg.validate().with_context(|| format!("the {name} model"))?;
        // The demo's own PAR-4× model is this variant when the budget is the demo's.
        let reuse = model_cfg == demo.model
            && par_train == demo.par_train
            && from.join("par/report.json").is_file();
        let run = if reuse { from.join("par") } else { dir.join("train") };
        let report: ParReport = if run.join("report.json").is_file() {
            read_json(&run.join("report.json"))?
        } else {
            let monitor = BarMonitor::new(name);
            let resume = par_train::checkpoint::latest(&run).is_some();
            let r = train_par(
                &run,
                &model_cfg,
                &par_train,
                &par_data,
                &vec![device.clone(); config.workers],
                resume,
                Arc::new(monitor.clone()),
            )?
            .report();
            monitor.bar().finish();
            r
        };
        let model = ParTransformer::load(&run.join("model.safetensors"), None, &device)?;
        let steps_per_image = model.schedule().num_steps();
        // Sampling always runs (it is quick and gives the picture); its scores are cached.
        let t0 = std::time::Instant::now();
        let grids = par_app::sample_codes(sampling_backend, &model, &classes, &sample)?;
        let seconds = t0.elapsed().as_secs_f64();
        let raster: Vec<i64> = grids.iter().flatten().map(|&c| c as i64).collect();
        let tiles = tok.decode_images(&raster, classes.len(), grid, grid, 64, None)?;
        picture.push((
            format!("{name} ({steps_per_image} steps)"),
            (0..10).map(|c| tiles[c * config.per_class].clone()).collect::<Vec<PixelImage>>(),
        ));
        let row = if result_path.is_file() {
            let mut cached: Row = read_json(&result_path)?;
            cached.seconds_per_image = seconds / classes.len() as f64;
            cached
        } else {
            let sampled =
                ImageSet::from_images(&tiles, classes.iter().map(|&c| c as u32).collect());
            let quality = par_eval::evaluate(&classifier, &sampled, true, &reference, &device)?;
            let row = Row {
                variant: name.into(),
                parallel,
                schedule: variant,
                steps_per_image,
                seconds_per_image: seconds / classes.len() as f64,
                class_fidelity: quality.class_accuracy.unwrap_or(f64::NAN),
                fd_fmnist: quality.fd_fmnist,
                precision: quality.precision,
                recall: quality.recall,
                final_val_loss: report.validation.last().map(|v| v.loss),
                training_steps: report.steps,
                run: run.clone(),
            };
            write_atomic(&result_path, serde_json::to_string_pretty(&row)?.as_bytes())?;
            row
        };
        eprintln!(
            "{name}: {} steps, {:.3} s per image, class fidelity {:.1} %, FD-FMNIST {:.2}, precision {:.3}, recall {:.3}",
            row.steps_per_image,
            row.seconds_per_image,
            100.0 * row.class_fidelity,
            row.fd_fmnist,
            row.precision,
            row.recall
        );
        rows.push(row);
    }

    // ---- the table and the picture
    let json = serde_json::json!({
        "from": from,
        "training_steps": par_steps,
        "samples_per_variant": classes.len(),
        "sampling": { "cfg_scale": config.cfg_scale, "temperature": config.temperature, "top_k": config.top_k, "seed": config.seed, "backend": format!("{sampling_backend:?}") },
        "rows": rows,
    });
    write_atomic(&out.join("ablation.json"), serde_json::to_string_pretty(&json)?.as_bytes())?;
    write_atomic(
        &out.join("ablation.md"),
        markdown(&rows, grid, par_steps, classes.len()).as_bytes(),
    )?;
    par_app::plot::labelled_grid_png(
        &out.join("ablation.png"),
        "one sample per class (columns) for every variant (rows)",
        &picture,
        3,
    )?;
    eprintln!("\n{}", markdown(&rows, grid, par_steps, classes.len()));
    eprintln!("→ {}: ablation.json, ablation.md, ablation.png", out.display());
    Ok(())
}

/// The markdown table of the rows.
fn markdown(rows: &[Row], grid: usize, steps: usize, samples: usize) -> String {
    let mut s = format!(
        "Fashion-MNIST codes ({grid}×{grid}), {steps} training steps per variant, {samples} samples each\n\n\
         | variant | n | steps / image | s / image | class fidelity | FD-FMNIST | precision | recall | val loss |\n\
         |---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.4} | {:.1} % | {:.2} | {:.3} | {:.3} | {} |\n",
            r.variant,
            r.parallel,
            r.steps_per_image,
            r.seconds_per_image,
            100.0 * r.class_fidelity,
            r.fd_fmnist,
            r.precision,
            r.recall,
            r.final_val_loss.map_or("–".into(), |l| format!("{l:.4}"))
        );
    }
    s
}
