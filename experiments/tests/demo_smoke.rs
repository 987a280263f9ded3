//! `demo --smoke` end to end: every stage on a tiny slice of the embedded data, the files a user
//! looks at, and the report's fields; then `--resume` of a finished run is refused and a run
//! directory with another run's settings is not touched.

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
        report["sampling"]["steps_per_image"], 67,
        "PAR-4× on 16×16: 67 steps instead of 256"
    );
    assert_eq!(report["sampling"]["images"], 20);
    assert!(report["class_fidelity"]["per_class"].as_object().unwrap().len() == 10);
    let ceiling = report["classifier_accuracy_on_reconstructions"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ceiling), "{ceiling}");
    assert_eq!(report["sampling"]["top_k"], 2);
    assert!((report["sampling"]["temperature"].as_f64().unwrap() - 0.8).abs() < 1e-6);
    assert!(
        report["classifier_test_accuracy"].as_f64().unwrap() >= 0.9,
        "the committed classifier"
    );
    let samples = image::open(out.join("samples.png")).unwrap();
    assert_eq!((samples.width(), samples.height()), (2 * 32 + 2, 10 * 32 + 9 * 2));
    let o = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(["--smoke", "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("finished demo"));
}

#[test]
fn bad_flags_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        ["--workers", "0"],
        ["--workers", "9"], // above the smoke batch of 8
        ["--codebook-size", "1"],
        ["--dropout", "1"],
        ["--temperature", "NaN"],
        ["--lr", "0"],
    ] {
        let out = dir.path().join(bad.join(""));
        let o = Command::new(env!("CARGO_BIN_EXE_demo"))
            .args(["--smoke", "--out", out.to_str().unwrap()])
            .args(bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{bad:?} accepted");
        assert!(stderr.contains(bad[0]) || stderr.contains("dropout"), "{bad:?}: {stderr}");
        assert!(!out.join("config.json").exists(), "{bad:?} wrote a config");
    }
}
