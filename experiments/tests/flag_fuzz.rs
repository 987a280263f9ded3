//! The flag fuzzer over every experiment binary (tests/support/flag_fuzz.rs): each value-taking
//! flag with 0, −1, 2⁶⁴−1, 1e308, NaN, inf and an empty string, and `--out` with each input
//! spelled four ways, on tiny fixtures, under `ulimit -v` 4 GiB: never a panic or an abort, one
//! `error:` line naming the flag, bounded time (a long job is asked to stop with Ctrl-C after 20 s
//! and must), an input given as the output refused and left as it was, and every finished job
//! run again with `--resume` changing nothing.

#[path = "../../tests/support/flag_fuzz.rs"]
mod flag_fuzz;

use std::path::{Path, PathBuf};
use std::time::Duration;

use burn::prelude::*;
use flag_fuzz::Target;
use par_data::{CodeStore, IdxImages, IdxSplit};
use par_tokenize::{ClipSource, ClipTokenizeSettings, OutputFormat, Source, TokenizeSettings};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Quiet;

impl par_train::Monitor for Quiet {}

/// The fixtures the base command lines read (`{fx}`): image and clip codes with tiny model
/// configs for the training binaries, an IDX set, and a smoke demo for the ablation.
fn fixtures(fx: &Path) {
    let device = Device::flex();
    let data = repo().join("data/fashion-mnist");
    // 12×12 crops of 16 Fashion-MNIST images in an IDX folder.
    let idx = fx.join("idx");
    std::fs::create_dir_all(&idx).unwrap();
    for (split, prefix, n) in [(IdxSplit::Train, "train", 64), (IdxSplit::Test, "t10k", 16)] {
        let set = IdxImages::open(&data, split).unwrap().take(n);
        let mut images = vec![0, 0, 8, 3];
        for d in [n as u32, 28, 28] {
            images.extend(d.to_be_bytes());
        }
        images.extend(&set.pixels);
        std::fs::write(idx.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
        let mut labels = vec![0, 0, 8, 1];
        labels.extend((n as u32).to_be_bytes());
        labels.extend(&set.labels);
        std::fs::write(idx.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
    }
    // Image codes (the tiny LlamaGen-layout fixture tokenizer: 8 px → 4×4 codes of 32 entries).
    let t = repo().join("tests/fixtures/tokenizer");
    let config = par_tokenizer::VqTokenizerConfig::from_json(
        &std::fs::read_to_string(t.join("config.json")).unwrap(),
    )
    .unwrap();
    let tok =
        par_tokenizer::VqTokenizer::load(&t.join("tiny_vq.pt"), Some(&config), &device).unwrap();
    let images = IdxImages::open(&idx, IdxSplit::Train).unwrap();
    let settings = TokenizeSettings {
        image_size: 8,
        augmentation: par_data::Augmentation::CenterFlip,
        format: OutputFormat::Compact,
        name: "codes".into(),
        chunk_size: 64,
        source: idx.display().to_string(),
        source_images: images.len(),
        tokenizer: t.join("tiny_vq.pt"),
        tokenizer_fingerprint: 0,
        inputs: Default::default(),
        source_listing: String::new(),
    };
    let classes = par_data::FASHION_MNIST_CLASSES.map(String::from).to_vec();
    let source = Source::Idx { dir: idx.clone(), images, classes };
    par_tokenize::tokenize(&source, &tok, &settings, &fx.join("codes"), 8, true, &device, &Quiet)
        .unwrap();
    assert_eq!(CodeStore::open(&fx.join("codes")).unwrap().info().num_images, 64);
    std::fs::write(
        fx.join("model.json"),
        r#"{"vocab_size": 32, "num_classes": 10, "d_model": 32, "n_layers": 1, "n_heads": 2, "grid_size": 4, "parallel": 4}"#,
    )
    .unwrap();
    // Clip codes: moving garments through a tiny video tokenizer (17 frames of 32² → 5×4×4).
    let video = par_tokenizer::video::VideoTokenizerPreset::Magvit2FsqCpu
        .config()
        .with_base_channels(4)
        .with_norm_groups(2);
    let vtok = video.init(&device).unwrap();
    let clips =
        par_data::moving_clips(&IdxImages::open(&idx, IdxSplit::Train).unwrap(), 8, 17, 32, 0)
            .unwrap();
    let settings = ClipTokenizeSettings {
        frames: 17,
        fps: 0.0,
        size: 32,
        seed: 0,
        chunk_size: 8,
        source: "moving".into(),
        source_clips: clips.len(),
        tokenizer: fx.join("vtok"),
        tokenizer_fingerprint: 0,
        inputs: Default::default(),
        source_listing: String::new(),
    };
    let source = ClipSource::Memory {
        name: "moving".into(),
        clips,
        classes: par_data::FASHION_MNIST_CLASSES.map(String::from).to_vec(),
    };
    par_tokenize::tokenize_clips(
        &source,
        &vtok,
        &settings,
        &fx.join("clips"),
        4,
        true,
        &device,
        &Quiet,
    )
    .unwrap();
    let codebook = CodeStore::open(&fx.join("clips")).unwrap().info().codebook_size.unwrap();
    std::fs::write(
        fx.join("video_model.json"),
        format!(
            r#"{{"vocab_size": {codebook}, "num_classes": 10, "d_model": 32, "n_layers": 1, "n_heads": 2, "grid_size": 4, "frames": 5, "parallel": 4}}"#
        ),
    )
    .unwrap();
    // A finished smoke demo for the ablation.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--smoke", "--out"])
        .arg(fx.join("demo"))
        .output()
        .unwrap();
    assert!(o.status.success(), "demo --smoke: {}", String::from_utf8_lossy(&o.stderr));
}

fn target(name: &str, exe: &str, base: &[&str]) -> Target {
    Target {
        name: name.into(),
        exe: PathBuf::from(exe),
        sub: vec![],
        base: base.iter().map(|s| s.to_string()).collect(),
        skip: vec![],
        // The experiments' jobs are long at mid-sized counts (every such run would wait for the
        // Ctrl-C bound); their sizes are fuzzed through `par`'s commands, which share the checks.
        mid_values: false,
        // Every experiment job but the benchmarks and the classifier continues with --resume.
        rerun: (name.starts_with("train_par")
            || name.contains("demo")
            || name.starts_with("ablation"))
        .then(|| vec!["--resume".to_string()]),
    }
}

#[test]
fn every_flag_of_every_experiment_binary_survives_extreme_values() {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    std::fs::create_dir_all(&fx).unwrap();
    fixtures(&fx);
    let train = [
        "--codes",
        "{fx}/codes",
        "--model-config",
        "{fx}/model.json",
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--out",
        "{out}/r",
    ];
    let video = [
        "--codes",
        "{fx}/clips",
        "--model-config",
        "{fx}/video_model.json",
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--out",
        "{out}/r",
    ];
    let targets = vec![
        target(
            "ablation_parallel",
            env!("CARGO_BIN_EXE_ablation_parallel"),
            &["--smoke", "--variants", "par-4x", "--from", "{fx}/demo", "--out", "{out}/a"],
        ),
        target(
            "bench_latency",
            env!("CARGO_BIN_EXE_bench_latency"),
            &[
                "--smoke",
                "--preset",
                "gpt-tiny",
                "--grid",
                "4",
                "--parallel",
                "4",
                "--batch",
                "1",
                "--repeats",
                "1",
                "--out",
                "{out}/b",
            ],
        ),
        target(
            "bench_order",
            env!("CARGO_BIN_EXE_bench_order"),
            &["--batch", "1", "--repeats", "1", "--out", "{out}/b"],
        ),
        target(
            "bench_tokenize",
            env!("CARGO_BIN_EXE_bench_tokenize"),
            &[
                "--idx",
                "{fx}/idx",
                "--small",
                "vq-tiny-16",
                "--small-batch",
                "2",
                "--skip-vq16",
                "--repeats",
                "1",
                "--out",
                "{out}/b",
            ],
        ),
        target(
            "bench_train",
            env!("CARGO_BIN_EXE_bench_train"),
            &[
                "--preset",
                "gpt-tiny",
                "--grid",
                "4",
                "--parallel",
                "4",
                "--vocab",
                "32",
                "--batch",
                "2",
                "--workers",
                "1",
                "--steps",
                "1",
                "--out",
                "{out}/b",
            ],
        ),
        target(
            "demo",
            env!("CARGO_BIN_EXE_demo"),
            &["--smoke", "--data", "{fx}/idx", "--out", "{out}/d"],
        ),
        target(
            "train_classifier",
            env!("CARGO_BIN_EXE_train_classifier"),
            &["--data", "{fx}/idx", "--epochs", "1", "--out", "{out}/c.safetensors"],
        ),
        target("train_par_l", env!("CARGO_BIN_EXE_train_par_l"), &train),
        target("train_par_xl", env!("CARGO_BIN_EXE_train_par_xl"), &train),
        target("train_par_xxl", env!("CARGO_BIN_EXE_train_par_xxl"), &train),
        target("train_par_3b", env!("CARGO_BIN_EXE_train_par_3b"), &train),
        target("train_par_video", env!("CARGO_BIN_EXE_train_par_video"), &video),
        target(
            "video_demo",
            env!("CARGO_BIN_EXE_video_demo"),
            &["--smoke", "--data", "{fx}/idx", "--out", "{out}/v"],
        ),
    ];
    // Every binary of the package is a target (a new binary must join the fuzzer).
    let bins = std::fs::read_dir(repo().join("experiments/src/bin")).unwrap().count();
    assert_eq!(targets.len(), bins, "a target per experiments binary");
    let scratch = dir.path().join("runs");
    flag_fuzz::check_bases(&targets, &fx, &scratch, 4 << 20);
    let cases = flag_fuzz::cases(&targets, &fx, &scratch);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let failures =
        flag_fuzz::fuzz(&cases, threads, 4 << 20, Duration::from_secs(20), Duration::from_secs(30));
    assert!(
        failures.is_empty(),
        "{} of {} runs broke the rules:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
