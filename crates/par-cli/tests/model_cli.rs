//! `par model-info`, `par score`, `par generate` and bad checkpoints, as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn par(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_par")).args(args).output().expect("par should start")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/transformer")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).to_string_lossy().into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("par-cli-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_f32(path: &Path) -> (Vec<u64>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    (npy.shape().to_vec(), npy.into_vec::<f32>().unwrap())
}

#[test]
fn model_info_counts_parameters_like_the_reference() {
    for (preset, n, expected) in [
        ("gpt-b", "4", 110_890_752u64),
        ("gpt-l", "4", 342_914_048),
        ("gpt-xl", "4", 774_703_360),
        ("gpt-xxl", "4", 1_410_977_280),
        ("gpt-3b", "4", 3_096_668_800),
        ("gpt-b", "1", 110_890_752 - 3 * 768),
        ("gpt-b", "16", 110_890_752 + 12 * 768),
    ] {
        let out = par(&["model-info", "--preset", preset, "--parallel", n, "--format", "json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["parameters"], expected, "{preset} n={n}");
    }
}

#[test]
fn model_info_reports_video_models() {
    // docs/spec.md §8 / Table 3: 5×16×16 = 1280 tokens; 1280 / 323 / 95 steps at 1× / 4× / 16×.
    for (n, steps) in [("1", 1280), ("4", 323), ("16", 95)] {
        let out = par(&[
            "model-info",
            "--preset",
            "gpt-b",
            "--parallel",
            n,
            "--grid",
            "16",
            "--frames",
            "5",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["decode_steps"], steps, "n = {n}");
        assert_eq!(v["tokens"], 1280);
        assert_eq!(v["config"]["frames"], 5);
        // GPT-B with the UCF-101 tables: 64,000 codes (in and out), 101 + 1 classes.
        let d = 768u64;
        let body = 110_890_752 - 2 * 16_384 * d - 1001 * d - 3 * d;
        let transition = (n.parse::<u64>().unwrap() - 1) * d;
        assert_eq!(v["parameters"], body + 2 * 64_000 * d + 102 * d + transition, "n = {n}");
    }
}

#[test]
fn score_reproduces_the_golden_logits() {
    let dir = scratch("score");
    let out_path = dir.join("logits.npy");
    let out = par(&[
        "score",
        "--checkpoint",
        &fixture("n4.pt"),
        "--preset",
        "gpt-tiny",
        "--parallel",
        "4",
        "--grid",
        "4",
        "--classes",
        &fixture("n4_classes.npy"),
        "--tokens",
        &fixture("n4_codes.npy"),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (shape, got) = read_f32(&out_path);
    let (expected_shape, expected) = read_f32(&fixtures().join("n4_logits.npy"));
    assert_eq!(shape, expected_shape);
    let diff = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) });
    assert!(diff <= 1e-4, "max |Δ| = {diff}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn generate_writes_raster_codes_and_is_seeded() {
    let dir = scratch("generate");
    let run = |seed: &str, name: &str| {
        let path = dir.join(name);
        let out = par(&[
            "generate",
            "--checkpoint",
            &fixture("n16.pt"),
            "--preset",
            "gpt-tiny",
            "--parallel",
            "16",
            "--grid",
            "8",
            "--classes",
            "1,2,3",
            "--top-k",
            "20",
            "--seed",
            seed,
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let bytes = std::fs::read(&path).unwrap();
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), &[3, 64]);
        npy.into_vec::<i64>().unwrap()
    };
    let a = run("7", "a.npy");
    assert!(a.iter().all(|&c| (0..64).contains(&c)));
    assert_eq!(a, run("7", "b.npy"));
    assert_ne!(a, run("8", "c.npy"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_checkpoints_are_one_line_errors_naming_the_problem() {
    let dir = scratch("bad");
    let original = std::fs::read(fixtures().join("n4.pt")).unwrap();
    let truncated = dir.join("truncated.pt");
    std::fs::write(&truncated, &original[..original.len() / 2]).unwrap();
    let text = dir.join("notes.pt");
    std::fs::write(&text, "this is not a checkpoint\n").unwrap();
    let missing = dir.join("missing.pt");
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (truncated.to_string_lossy().into(), vec!["--parallel", "4"], "not a readable checkpoint"),
        (text.to_string_lossy().into(), vec!["--parallel", "4"], "not a readable checkpoint"),
        (missing.to_string_lossy().into(), vec!["--parallel", "4"], "missing.pt"),
        // A --parallel that does not match the weights (n − 1 transition-token rows) is refused
        // before the keys are compared.
        (fixture("n4.pt"), vec!["--parallel", "16", "--grid", "8"], "--parallel 16 does not match"),
        (fixture("n4.pt"), vec!["--parallel", "1"], "holds a PAR-4× model (3 transition tokens)"),
        (fixture("n1.pt"), vec!["--parallel", "4"], "holds a PAR-1× model"),
        // Wrong width.
        (fixture("n4.pt"), vec!["--preset", "gpt-small", "--parallel", "4"], "has shape"),
    ];
    for (checkpoint, extra, needle) in cases {
        let out_path = dir.join("out.npy");
        let (classes, tokens) = (fixture("n4_classes.npy"), fixture("n4_codes.npy"));
        let mut args =
            vec!["score", "--checkpoint", &checkpoint, "--classes", &classes, "--tokens", &tokens];
        args.extend(["--out", out_path.to_str().unwrap()]);
        if !extra.contains(&"--preset") {
            args.extend(["--preset", "gpt-tiny"]);
        }
        if !extra.contains(&"--grid") {
            args.extend(["--grid", "4"]);
        }
        args.extend(extra.iter().copied());
        let out = par(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{checkpoint}: should fail");
        assert!(stderr.contains(needle), "{checkpoint} {extra:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!out_path.exists(), "no output on failure");
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        2,
        "only the two inputs made here, no temp files"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_arrays_exit_2_naming_the_file() {
    let dir = scratch("arrays");
    let write = |name: &str, shape: &[u64], values: Vec<i64>| {
        let path = dir.join(name);
        let mut bytes = Vec::new();
        {
            use npyz::WriterBuilder;
            let mut w = npyz::WriteOptions::<i64>::new()
                .default_dtype()
                .shape(shape)
                .writer(&mut bytes)
                .begin_nd()
                .unwrap();
            w.extend(values).unwrap();
            w.finish().unwrap();
        }
        std::fs::write(&path, bytes).unwrap();
        path.to_string_lossy().into_owned()
    };
    let good_codes = fixture("n4_codes.npy");
    let good_classes = fixture("n4_classes.npy");
    let big_code =
        write("big.npy", &[2, 16], (0..32).map(|i| if i == 5 { 64 } else { 1 }).collect());
    let short = write("short.npy", &[2, 15], vec![1; 30]);
    let bad_class = write("class.npy", &[2], vec![1, 11]);
    let garbage = dir.join("garbage.npy");
    std::fs::write(&garbage, b"\x93NUMPY garbage").unwrap();
    let garbage = garbage.to_string_lossy().into_owned();
    let floats = fixture("n4_logits.npy");
    for (tokens, classes, needle) in [
        (&big_code, &good_classes, "code id 64"),
        (&short, &good_classes, "15 tokens per grid"),
        (&good_codes, &bad_class, "class id 11"),
        (&garbage, &good_classes, "garbage.npy"),
        (&floats, &good_classes, "expected an integer array"),
    ] {
        let out_path = dir.join("out.npy");
        let out = par(&[
            "score",
            "--checkpoint",
            &fixture("n4.pt"),
            "--preset",
            "gpt-tiny",
            "--parallel",
            "4",
            "--grid",
            "4",
            "--classes",
            classes,
            "--tokens",
            tokens,
            "--out",
            out_path.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{tokens}: {stderr}");
        assert!(stderr.contains(needle), "{tokens}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(!out_path.exists());
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn convert_then_score_without_model_flags() {
    let dir = scratch("convert");
    let converted = dir.join("n4.safetensors");
    let out = par(&[
        "convert",
        "--checkpoint",
        &fixture("n4.pt"),
        "--preset",
        "gpt-tiny",
        "--parallel",
        "4",
        "--grid",
        "4",
        "--out",
        converted.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let logits = dir.join("logits.npy");
    let out = par(&[
        "score",
        "--checkpoint",
        converted.to_str().unwrap(),
        "--classes",
        &fixture("n4_classes.npy"),
        "--tokens",
        &fixture("n4_codes.npy"),
        "--out",
        logits.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, got) = read_f32(&logits);
    let (_, expected) = read_f32(&fixtures().join("n4_logits.npy"));
    let diff = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) });
    assert!(diff <= 1e-4, "max |Δ| = {diff}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn tokenizer_info_counts_vq16_like_llamagen() {
    let out = par(&["tokenizer-info", "--preset", "vq-16", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["parameters"], 71_883_403u64);
    assert_eq!(v["downsample_factor"], 16);
}

#[test]
fn tokenizer_info_reports_the_papers_video_tokenizer() {
    // docs/spec.md §8: FSQ levels [8, 8, 8, 5, 5, 5] = 64,000 codes; 17×128² → 5×16×16.
    let out = par(&["tokenizer-info", "--preset", "magvit2-fsq", "--format", "json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config"]["codebook_size"], 64_000);
    assert_eq!(v["config"]["quantizer"]["levels"], serde_json::json!([8, 8, 8, 5, 5, 5]));
    assert_eq!(v["latent_shape"], serde_json::json!([5, 16, 16]));
    assert!(v["parameters"].as_u64().unwrap() > 10_000_000, "{}", v["parameters"]);
}

#[test]
fn decode_writes_the_png_grid_of_the_golden_decoder() {
    let dir = scratch("decode");
    let png = dir.join("grid.png");
    let tok = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokenizer");
    let config = dir.join("tok.json");
    std::fs::write(
        &config,
        r#"{"image_channels":3,"base_channels":8,"channel_mult":[1,2],"num_res_blocks":1,"z_channels":16,
            "codebook_size":32,"codebook_dim":8,"norm_groups":4,"commitment_weight":0.25}"#,
    )
    .unwrap();
    let out = par(&[
        "decode",
        "--codes",
        tok.join("codes.npy").to_str().unwrap(),
        "--tokenizer",
        tok.join("tiny_vq.pt").to_str().unwrap(),
        "--tokenizer-config",
        config.to_str().unwrap(),
        "--columns",
        "2",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let img = image::open(&png).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (32, 16));
    let bytes = std::fs::read(tok.join("decoded.npy")).unwrap();
    let decoded = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec::<f32>().unwrap(); // [2, 3, 16, 16]
    let mut max_off = 0i32;
    for i in 0..2 {
        for y in 0..16 {
            for x in 0..16 {
                let px = img.get_pixel((i * 16 + x) as u32, y as u32);
                for c in 0..3 {
                    let v = decoded[((i * 3 + c) * 16 + y) * 16 + x];
                    let expected = (127.5 * v + 128.0).clamp(0.0, 255.0) as i32;
                    max_off = max_off.max((px[c] as i32 - expected).abs());
                }
            }
        }
    }
    assert!(max_off <= 1, "pixels differ by up to {max_off}");
    std::fs::remove_dir_all(dir).unwrap();
}
