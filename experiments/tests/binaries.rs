//! The experiment binaries as a user runs them. `demo --smoke` end to end: every stage on a tiny
//! slice of the embedded data, the files a user looks at, and the report's fields; then the
//! resume rules (a finished demo is refused without `--resume` and left untouched with it, other
//! settings and an empty folder are refused), and `ablation_parallel --smoke` on the smoke demo's
//! codes (every Table 4 variant with its step count). `train_par_*` on tiny codes: bad flags, resume
//! without a run, another dtype on resume.

use std::process::Command;

#[test]
fn demo_smoke_writes_every_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--smoke", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in [
        "config.json",
        "samples.png",
        "reconstructions.png",
        "loss.png",
        "report.json",
        "par/model.safetensors",
        "tokenizer/tokenizer.safetensors",
        "codes/codes.parc",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(
        (&report["sampling"]["steps_per_image"], &report["sampling"]["raster_steps_per_image"]),
        (&serde_json::json!(19), &serde_json::json!(64)),
        "PAR-4× on the default 8×8 grid: 19 steps instead of 64"
    );
    assert_eq!(report["sampling"]["images"], 40);
    assert!(report["class_fidelity_per_class"].as_object().unwrap().len() == 10);
    let fidelity = report["class_fidelity"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&fidelity), "{fidelity}");
    for key in ["fd_fmnist", "precision", "recall"] {
        assert!(report[key].as_f64().unwrap().is_finite(), "{key}: {}", report[key]);
    }
    let ceiling = report["classifier_accuracy_on_reconstructions"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ceiling), "{ceiling}");
    for key in ["fd_fmnist", "precision", "recall"] {
        let v = report["reconstructions"][key].as_f64().unwrap();
        assert!(v.is_finite(), "reconstructions {key}: {v}");
    }
    assert_eq!(report["sampling"]["top_k"], 2);
    assert!((report["sampling"]["temperature"].as_f64().unwrap() - 0.8).abs() < 1e-6);
    assert!(
        report["classifier_test_accuracy"].as_f64().unwrap() >= 0.9,
        "the committed classifier"
    );
    // A labelled row per class, tiles enlarged 3× (4 per class in the smoke run).
    let samples = image::open(out.join("samples.png")).unwrap();
    assert!(
        samples.height() >= 10 * 96 && samples.width() >= 4 * 96,
        "{:?}",
        (samples.width(), samples.height())
    );
    let demo = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_demo"))
            .args(["--smoke", "--out", out.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap()
    };
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let o = demo(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("finished demo"), "{}", stderr(&o));
    // --resume of a finished demo: its result, nothing re-sampled or rewritten.
    let report = std::fs::read(out.join("report.json")).unwrap();
    let samples = std::fs::read(out.join("samples.png")).unwrap();
    let o = demo(&["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already finished"), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), report);
    assert_eq!(std::fs::read(out.join("samples.png")).unwrap(), samples);
    // --resume with other settings: refused, naming the setting.
    let o = demo(&["--resume", "--per-class", "3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--per-class") && stderr(&o).contains("per_class"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), report);
    // --resume where there is nothing to resume: refused, nothing created.
    let empty = dir.path().join("nothing/here");
    let o = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--smoke", "--resume", "--out", empty.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to resume"), "{}", stderr(&o));
    assert!(!dir.path().join("nothing").exists());

    // The Table 4 ablation on a 16×16-grid smoke demo's codes (where 16× is fewer steps than 4×):
    // every variant trains, samples and is scored.
    let out = dir.path().join("demo16");
    let o = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--smoke", "--grid", "16", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["sampling"]["steps_per_image"], 67, "PAR-4× on 16×16: 67 steps, not 256");
    let ablation = dir.path().join("ablation");
    let run_ablation = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ablation_parallel"))
            .args(["--smoke", "--from", out.to_str().unwrap(), "--out"])
            .arg(&ablation)
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run_ablation(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ablation.join("ablation.json")).unwrap()).unwrap();
    let rows = table["rows"].as_array().unwrap();
    let steps: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| (r["variant"].as_str().unwrap(), r["steps_per_image"].as_u64().unwrap()))
        .collect();
    // docs/spec.md §1.3 on a 16×16 grid: N, n + (N − n)/n, and N/n without the sequential start.
    assert_eq!(
        steps,
        [
            ("raster-1x", 256),
            ("par-4x", 67),
            ("par-16x", 31),
            ("raster-multi-4x", 67),
            ("causal-group-4x", 67),
            ("no-seq-start-4x", 64)
        ]
    );
    for r in rows {
        for key in ["class_fidelity", "precision", "recall"] {
            let v = r[key].as_f64().unwrap_or(f64::NAN);
            assert!((0.0..=1.0).contains(&v), "{}: {key} {}", r["variant"], r[key]);
        }
        for key in ["fd_fmnist", "seconds_per_image"] {
            let v = r[key].as_f64().unwrap_or(f64::NAN);
            assert!(v >= 0.0 && v.is_finite(), "{}: {key} {}", r["variant"], r[key]);
        }
        assert_eq!(r["training_steps"], 2, "{}", r["variant"]);
    }
    let md = std::fs::read_to_string(ablation.join("ablation.md")).unwrap();
    assert!(md.contains("| causal-group-4x | 4 | 67 |"), "{md}");
    let picture = image::open(ablation.join("ablation.png")).unwrap();
    assert!(picture.height() >= 6 * 96 && picture.width() >= 10 * 96);
    // A second run into the same folder is refused; --resume reuses every finished variant: no
    // model is trained again and the scores are the cached ones.
    let o = run_ablation(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let weights = ablation.join("raster-1x/train/model.safetensors");
    let modified = std::fs::metadata(&weights).unwrap().modified().unwrap();
    let scores = |t: &serde_json::Value| -> Vec<(String, String)> {
        let rows = t["rows"].as_array().unwrap();
        rows.iter().map(|r| (r["variant"].to_string(), r["fd_fmnist"].to_string())).collect()
    };
    let o = run_ablation(&["--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let again: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ablation.join("ablation.json")).unwrap()).unwrap();
    assert_eq!(scores(&again), scores(&table));
    assert_eq!(std::fs::metadata(&weights).unwrap().modified().unwrap(), modified, "retrained");
    let o = run_ablation(&["--resume", "--variants", "par-4x,bogus"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("bogus"), "{}", stderr(&o));
    // Without a demo to build on: refused, naming the missing part and the command to run.
    let o = Command::new(env!("CARGO_BIN_EXE_ablation_parallel"))
        .args(["--smoke", "--from"])
        .arg(dir.path().join("nothing"))
        .arg("--out")
        .arg(dir.path().join("ablation2"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("run the demo first"), "{}", stderr(&o));
}

#[test]
fn a_diverged_demo_leaves_no_empty_stage_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let o = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--smoke", "--lr", "1e30", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("diverged"), "{stderr}");
    // The finished stages stay (the demo resumes from them); the PAR stage that never saved a
    // checkpoint leaves no folder (was: an empty par/).
    assert!(out.join("tokenizer/tokenizer.safetensors").is_file());
    assert!(
        !out.join("par").exists(),
        "{:?}",
        std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name()).collect::<Vec<_>>()
    );
}

#[test]
fn bad_flags_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        ["--workers", "0"],
        ["--workers", "9"], // above the smoke batch of 8
        ["--codebook-size", "1"],
        ["--codebook-size", "100000000"],
        ["--dropout", "1"],
        ["--temperature", "NaN"],
        ["--temperature", "-1"],
        ["--cfg-scale", "inf"],
        ["--lr", "0"],
        ["--lr", "nan"],
        ["--per-class", "0"],
    ] {
        let out = dir.path().join(bad.join(""));
        let o = Command::new(env!("CARGO_BIN_EXE_demo"))
            .args(["--smoke", "--out", out.to_str().unwrap()])
            .args(bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {stderr}");
        assert!(stderr.contains(bad[0]) || stderr.contains("dropout"), "{bad:?}: {stderr}");
        assert!(!out.join("config.json").exists(), "{bad:?} wrote a config");
    }
}

/// Tiny pre-tokenized codes (a `codes.parc` of 4×4 grids, 64 codes, 10 classes) for the
/// `train_par_*` binaries.
fn tiny_codes(dir: &std::path::Path) -> std::path::PathBuf {
    use par_data::compact::{self, CompactHeader};
    let out = dir.join("codes");
    std::fs::create_dir_all(&out).unwrap();
    let n = 32;
    let header = CompactHeader {
        version: compact::VERSION,
        num_images: n,
        views: 2,
        grid: [4, 4],
        frames: 1,
        codebook_size: 64,
        code_dtype: CompactHeader::dtype_for(64).into(),
        classes: (0..10).map(|c| c.to_string()).collect(),
        meta: serde_json::json!({}),
    };
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
    let codes: Vec<u32> = (0..n * 2 * 16).map(|i| (i * 7 % 64) as u32).collect();
    let file = out.join(par_data::COMPACT_FILE);
    std::fs::write(&file, compact::encode(&file, &header, &labels, &codes).unwrap()).unwrap();
    out
}

#[test]
fn train_par_refuses_bad_flags_and_bad_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let codes = tiny_codes(dir.path());
    let model = dir.path().join("tiny.json");
    std::fs::write(
        &model,
        r#"{"vocab_size": 64, "num_classes": 10, "d_model": 32, "n_layers": 1, "n_heads": 2,
            "multiple_of": 32, "grid_size": 4, "parallel": 4}"#,
    )
    .unwrap();
    let out = dir.path().join("run");
    let train_with = |model: &std::path::Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_train_par_l"))
            .args(["--codes", codes.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .args(["--model-config", model.to_str().unwrap(), "--batch-size", "8"])
            .args(["--max-steps", "2", "--epochs", "1"])
            .args(extra)
            .output()
            .unwrap()
    };
    let train = |extra: &[&str]| train_with(&model, extra);
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    // An explicit model config that disagrees with the codes is refused, naming both values
    // (was: trained with the codes' 64 codes / 10 classes without a word); so is a --parallel
    // that disagrees with the config's.
    let text = std::fs::read_to_string(&model).unwrap();
    for (field, value, data) in
        [("vocab_size", 16, 64), ("num_classes", 5, 10), ("vocab_size", 128, 64)]
    {
        let bad = dir.path().join(format!("{field}{value}.json"));
        std::fs::write(
            &bad,
            text.replace(&format!("\"{field}\": {data}"), &format!("\"{field}\": {value}")),
        )
        .unwrap();
        let o = train_with(&bad, &[]);
        assert_eq!(o.status.code(), Some(2), "{field} {value}: {}", stderr(&o));
        for needle in [format!("{field} = {value}"), format!("have {data}")] {
            assert!(stderr(&o).contains(&needle), "{field} {value}: {}", stderr(&o));
        }
        assert!(!out.exists());
    }
    let o = train(&["--parallel", "16"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--parallel 16") && stderr(&o).contains("parallel = 4"),
        "{}",
        stderr(&o)
    );
    // Fields the config leaves out are the codes' (the preset path's rule).
    let partial = dir.path().join("partial.json");
    let left_out = text.replace("\"vocab_size\": 64, \"num_classes\": 10, ", "");
    assert_ne!(left_out, text, "the fields are left out");
    std::fs::write(&partial, left_out).unwrap();
    let o = train_with(&partial, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(&out).unwrap();
    for (flag, value) in [
        ("--lr", "nan"),
        ("--lr", "-1"),
        ("--ema", "1.5"),
        ("--batch-size", "0"),
        ("--epochs", "0"),
    ] {
        let o = train(&[flag, value]);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{flag} {value}: {}", stderr(&o));
        assert!(!out.exists(), "{flag} {value} created the run folder");
    }
    let o = train(&["--resume"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing to resume"), "{}", stderr(&o));
    assert!(!out.exists());
    let o = train(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = train(&["--resume", "--dtype", "bf16"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--dtype") && stderr(&o).contains("bf16"), "{}", stderr(&o));
    let o = train(&["--resume"]);
    assert!(o.status.success() && stderr(&o).contains("already finished"), "{}", stderr(&o));
}

#[test]
fn bench_latency_smoke_reports_every_backend_and_degree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lat");
    let o = Command::new(env!("CARGO_BIN_EXE_bench_latency"))
        .args(["--smoke", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(out.join("latency.json")).unwrap()).unwrap();
    let backends: std::collections::BTreeSet<String> =
        rows.iter().map(|r| r["backend"].as_str().unwrap().to_string()).collect();
    assert!(backends.contains("flex") && backends.contains("host"), "{backends:?}");
    for r in &rows {
        for field in [
            "backend",
            "fusion",
            "parallel",
            "grid",
            "batch",
            "steps",
            "seconds_per_image",
            "ms_per_step",
            "images_per_second",
        ] {
            assert!(!r[field].is_null(), "{field} missing in {r}");
        }
        // 16×16 grid: 256, 67 and 31 decode steps (n + (N − n)/n).
        let expected = match r["parallel"].as_u64().unwrap() {
            1 => 256,
            4 => 67,
            16 => 31,
            n => panic!("unexpected parallel degree {n}"),
        };
        assert_eq!(r["steps"], expected, "{r}");
        assert!(r["seconds_per_image"].as_f64().unwrap() > 0.0, "{r}");
        let gpu = matches!(r["backend"].as_str(), Some("wgpu" | "cuda"));
        assert_eq!(r["fusion"].as_bool().unwrap(), gpu, "fusion is on for the GPU backends: {r}");
    }
    assert_eq!(rows.len(), backends.len() * 3 * 2, "3 degrees × batches 1 and 4 per backend");
    assert!(std::fs::read_to_string(out.join("latency.md")).unwrap().contains("| host |"));
}
