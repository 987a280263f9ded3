//! Every command fails early, loudly and cleanly: non-finite numbers, degenerate sizes, outputs
//! that cannot be written, resume edge cases and one exit-status rule (2 = bad input, 1 = a
//! failure at run time). Each test drives the `par` binary as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::prelude::*;
use par_model::{CONFIG_METADATA_KEY, Preset, StateDict};
use par_tokenizer::VqTokenizerConfig;

fn par(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_par")).args(args).output().expect("par should start")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/transformer").join(name)
}

/// Asserts a refusal: the exit status, and one `error:` line, the last, containing every needle
/// (progress lines may come before it).
#[track_caller]
fn refused(o: &Output, code: i32, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "expected exit {code}: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert_eq!(Some(errors[0]), err.trim_end().lines().last(), "the error comes last: {err}");
    for needle in needles {
        assert!(errors[0].contains(needle), "expected `{needle}` in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// `args` with `flag` set to `value` (replaced if present).
fn with<'a>(mut args: Vec<&'a str>, flag: &'a str, value: &'a str) -> Vec<&'a str> {
    match args.iter().position(|a| *a == flag) {
        Some(i) => args[i + 1] = value,
        None => args.extend([flag, value]),
    }
    args
}

/// Every entry (recursively) below `dir`, so a test can say "nothing new was created".
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.path());
            out.extend(tree(&e.path()));
        }
    }
    out.sort();
    out
}

/// The gpt-tiny n = 4 fixture (grid 4) as our self-describing checkpoint, after `edit`.
fn par_checkpoint(dir: &Path, name: &str, edit: impl Fn(&mut StateDict)) -> PathBuf {
    let mut state = StateDict::read(&fixture("n4.pt")).unwrap();
    edit(&mut state);
    state.store_json(CONFIG_METADATA_KEY, &Preset::GptTiny.config(4, 4));
    let path = dir.join(name);
    state.write_safetensors(&path).unwrap();
    path
}

fn set(state: &mut StateDict, key: &str, value: f32) {
    state.tensors.get_mut(key).unwrap().values.iter_mut().for_each(|v| *v = value);
}

/// Finite weights whose logits overflow: a norm scale and an output head of 1e30.
fn overflowing(dir: &Path) -> PathBuf {
    par_checkpoint(dir, "overflow.safetensors", |st| {
        set(st, "norm.weight", 1e30);
        set(st, "output.weight", 1e30);
    })
}

/// A tiny gray tokenizer in our format (4×4 codes for 16 px images).
fn tokenizer(dir: &Path, name: &str, edit: impl Fn(&mut StateDict)) -> PathBuf {
    let config = VqTokenizerConfig::new()
        .with_image_channels(1)
        .with_base_channels(8)
        .with_channel_mult(vec![1, 2, 2])
        .with_num_res_blocks(1)
        .with_z_channels(8)
        .with_codebook_size(16)
        .with_codebook_dim(4)
        .with_norm_groups(4);
    let path = dir.join(name);
    config.init(&Device::flex()).unwrap().save(&path).unwrap();
    let mut state = StateDict::read(&path).unwrap();
    edit(&mut state);
    state.write_safetensors(&path).unwrap();
    path
}

fn write_npy(path: &Path, shape: &[usize], values: &[i64]) {
    std::fs::write(path, par_data::npy::encode(shape, values)).unwrap();
}

fn classes4(dir: &Path) -> (PathBuf, PathBuf) {
    let (c, t) = (dir.join("classes.npy"), dir.join("codes.npy"));
    write_npy(&c, &[2], &[1, 3]);
    write_npy(&t, &[2, 16], &[5; 32]);
    (c, t)
}

// ---- 1. non-finite numbers -----------------------------------------------------------------

#[test]
fn checkpoints_with_non_finite_weights_are_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let nan = par_checkpoint(d, "nan.safetensors", |st| set(st, "output.weight", f32::NAN));
    let inf = par_checkpoint(d, "inf.safetensors", |st| {
        st.tensors.get_mut("norm.weight").unwrap().values[3] = f32::INFINITY
    });
    let (classes, codes) = classes4(d);
    let out = d.join("out/x.npy");
    for (ckpt, key) in [(&nan, "output.weight"), (&inf, "norm.weight")] {
        let c = s(ckpt);
        for extra in [&[][..], &["--greedy"], &["--top-k", "5"], &["--top-p", "0.9"]] {
            let mut args =
                vec!["generate", "--checkpoint", c, "--classes", "1,2", "--out", s(&out)];
            args.extend(extra);
            refused(&par(&args), 2, &[key, "non-finite"]);
        }
        let score = [
            "score",
            "--checkpoint",
            c,
            "--classes",
            s(&classes),
            "--tokens",
            s(&codes),
            "--out",
            s(&out),
        ];
        refused(&par(&score), 2, &[key, "non-finite"]);
        refused(&par(&["convert", "--checkpoint", c, "--out", s(&out)]), 2, &[key, "non-finite"]);
    }
    assert!(!d.join("out").exists(), "a failed command creates no folders");
}

#[test]
fn non_finite_logits_stop_sampling_and_scoring_naming_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = overflowing(d);
    let out = d.join("x.npy");
    for extra in
        [&[][..], &["--greedy"], &["--top-k", "5"], &["--top-p", "0.9"], &["--cfg-scale", "1"]]
    {
        let mut args =
            vec!["generate", "--checkpoint", s(&ckpt), "--classes", "1,2", "--out", s(&out)];
        args.extend(extra);
        refused(&par(&args), 1, &["non-finite logits", "decode step 1 of 7"]);
        assert!(!out.exists());
    }
    let (classes, codes) = classes4(d);
    let o = par(&[
        "score",
        "--checkpoint",
        s(&ckpt),
        "--classes",
        s(&classes),
        "--tokens",
        s(&codes),
        "--out",
        s(&out),
    ]);
    refused(&o, 1, &["non-finite logits", "grid 0"]);
    assert!(!out.exists());
}

#[test]
fn tokenizers_with_non_finite_weights_are_refused_by_decode_and_tokenize() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tok = tokenizer(d, "nan_tok.safetensors", |st| {
        st.tensors.get_mut("quantize.embedding.weight").unwrap().values[0] = f32::NAN
    });
    let codes = d.join("codes.npy");
    write_npy(&codes, &[1, 16], &[1; 16]);
    let png = d.join("new/grid.png");
    let o = par(&["decode", "--codes", s(&codes), "--tokenizer", s(&tok), "--out", s(&png)]);
    refused(&o, 2, &["quantize.embedding.weight", "non-finite"]);
    let fashion = repo().join("data/fashion-mnist");
    let o = par(&[
        "tokenize",
        "--idx",
        s(&fashion),
        "--limit",
        "4",
        "--tokenizer",
        s(&tok),
        "--image-size",
        "16",
        "--out",
        s(&d.join("new/codes")),
    ]);
    refused(&o, 2, &["quantize.embedding.weight", "non-finite"]);
    assert!(!d.join("new").exists());
}

fn tokenizer_train_args<'a>(fashion: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "tokenizer",
        "train",
        "--idx",
        fashion,
        "--preset",
        "vq-tiny-16",
        "--train-images",
        "32",
        "--held-out",
        "4",
        "--batch-size",
        "4",
        "--out",
        out,
    ]
}

#[test]
fn tokenizer_training_stops_at_the_first_non_finite_loss() {
    let dir = tempfile::tempdir().unwrap();
    let fashion = repo().join("data/fashion-mnist");
    let out = dir.path().join("run");
    let mut args = tokenizer_train_args(s(&fashion), s(&out));
    args.extend(["--steps", "8", "--lr", "1e30"]);
    let o = par(&args);
    refused(&o, 1, &["non-finite", "step", "--lr"]);
    assert!(!out.join("report.json").exists(), "no report from a diverged run");
    // What was kept is a checkpoint written before the divergence; its weights load.
    if out.join("tokenizer.safetensors").exists() {
        StateDict::read(&out.join("tokenizer.safetensors")).expect("finite weights");
    }
}

#[test]
fn float_flags_are_checked_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fashion = repo().join("data/fashion-mnist");
    let ckpt = par_checkpoint(d, "ok.safetensors", |_| {});
    let before = tree(d);
    let out = d.join("new/sub");
    let generate = |flag: &str, value: &str| {
        par(&[
            "generate",
            "--checkpoint",
            s(&ckpt),
            "--classes",
            "1",
            "--out",
            s(&out.join("x.npy")),
            flag,
            value,
        ])
    };
    for (flag, value) in [
        ("--cfg-scale", "nan"),
        ("--cfg-scale", "inf"),
        ("--cfg-scale", "-1"),
        ("--temperature", "nan"),
        ("--temperature", "-1"),
        ("--temperature", "inf"),
        ("--top-p", "nan"),
        ("--top-p", "0"),
        ("--top-p", "1.5"),
        ("--top-p", "-0.1"),
    ] {
        refused(&generate(flag, value), 2, &[flag]);
    }
    for (flag, value) in [
        ("--lr", "nan"),
        ("--lr", "inf"),
        ("--lr", "0"),
        ("--lr", "-1"),
        ("--disc-weight", "nan"),
        ("--disc-weight", "-1"),
        ("--disc-weight", "inf"),
        ("--entropy-loss-ratio", "nan"),
        ("--entropy-loss-ratio", "-1"),
    ] {
        let mut args = tokenizer_train_args(s(&fashion), s(&out));
        args.extend(["--steps", "2", flag, value]);
        refused(&par(&args), 2, &[flag]);
    }
    let tok = tokenizer(d, "tok.safetensors", |_| {});
    let before_tok = tree(d);
    for value in ["nan", "inf", "0.5"] {
        let o = par(&[
            "tokenize",
            "--idx",
            s(&fashion),
            "--tokenizer",
            s(&tok),
            "--ten-crop",
            "--crop-range",
            value,
            "--out",
            s(&out),
        ]);
        refused(&o, 2, &["--crop-range"]);
    }
    assert_eq!(tree(d), before_tok);
    assert_eq!(before.len() + 1, before_tok.len());
}

// ---- 2. degenerate sizes ---------------------------------------------------------------------

#[test]
fn empty_and_zero_sized_arrays_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tok = tokenizer(d, "tok.safetensors", |_| {});
    let ckpt = par_checkpoint(d, "ok.safetensors", |_| {});
    let png = d.join("new/grid.png");
    for (name, shape) in
        [("flat0.npy", &[2, 0][..]), ("grid0.npy", &[2, 8, 0]), ("rows0.npy", &[2, 0, 4])]
    {
        let f = d.join(name);
        write_npy(&f, shape, &[]);
        let o = par(&["decode", "--codes", s(&f), "--tokenizer", s(&tok), "--out", s(&png)]);
        refused(&o, 2, &[name]);
    }
    let empty_codes = d.join("none.npy");
    write_npy(&empty_codes, &[0, 16], &[]);
    let empty_classes = d.join("none_classes.npy");
    write_npy(&empty_classes, &[0], &[]);
    let o = par(&["decode", "--codes", s(&empty_codes), "--tokenizer", s(&tok), "--out", s(&png)]);
    refused(&o, 2, &["none.npy"]);
    let o = par(&[
        "score",
        "--checkpoint",
        s(&ckpt),
        "--classes",
        s(&empty_classes),
        "--tokens",
        s(&empty_codes),
        "--out",
        s(&d.join("new/x.npy")),
    ]);
    refused(&o, 2, &["none.npy", "no code grids"]);
    assert!(!d.join("new").exists());
}

#[test]
fn zero_and_absurd_size_flags_are_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fashion = repo().join("data/fashion-mnist");
    let tok = tokenizer(d, "tok.safetensors", |_| {});
    let ckpt = par_checkpoint(d, "ok.safetensors", |_| {});
    let (classes, codes) = classes4(d);
    let codes16 = d.join("c16.npy");
    write_npy(&codes16, &[1, 16], &[1; 16]);
    let out = d.join("new/out");
    let before = tree(d);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "score",
                "--checkpoint",
                s(&ckpt),
                "--classes",
                s(&classes),
                "--tokens",
                s(&codes),
                "--batch-size",
                "0",
            ],
            "--batch-size",
        ),
        (
            vec!["decode", "--codes", s(&codes16), "--tokenizer", s(&tok), "--batch-size", "0"],
            "--batch-size",
        ),
        (
            vec!["decode", "--codes", s(&codes16), "--tokenizer", s(&tok), "--columns", "0"],
            "--columns",
        ),
        (
            vec!["tokenize", "--idx", s(&fashion), "--tokenizer", s(&tok), "--batch-size", "0"],
            "--batch-size",
        ),
        (
            vec!["tokenize", "--idx", s(&fashion), "--tokenizer", s(&tok), "--image-size", "6"],
            "--image-size",
        ),
        (vec!["tokenize", "--idx", s(&fashion), "--tokenizer", s(&tok), "--limit", "0"], "--limit"),
        (
            vec![
                "tokenize",
                "--idx",
                s(&fashion),
                "--tokenizer",
                s(&tok),
                "--image-size",
                "100000",
            ],
            "--image-size",
        ),
        (vec!["generate", "--checkpoint", s(&ckpt), "--classes", "1", "--grid", "100000"], "grid"),
        (vec!["generate", "--checkpoint", s(&ckpt), "--classes", "1", "--grid", "0"], "grid"),
        (vec!["model-info", "--preset", "gpt-b", "--grid", "4096"], "grid"),
    ];
    for (mut args, flag) in cases {
        let x = out.join("x.npy");
        if args[0] != "model-info" {
            args.extend(["--out", if args[0] == "tokenize" { s(&out) } else { s(&x) }]);
        }
        refused(&par(&args), 2, &[flag]);
    }
    for (extra, flag) in [
        (&["--disc-start", "0", "--disc-channels", "0"][..], "--disc-channels"),
        (&["--disc-start", "0", "--disc-layers", "0"], "--disc-layers"),
        (&["--checkpoint-every", "0"], "--checkpoint-every"),
        (&["--batch-size", "0"], "--batch-size"),
        (&["--image-size", "0"], "--image-size"),
        (&["--image-size", "100000"], "--image-size"),
        (&["--train-images", "0"], "--train-images"),
    ] {
        let mut args = with(tokenizer_train_args(s(&fashion), s(&out)), "--steps", "2");
        for pair in extra.chunks(2) {
            args = with(args, pair[0], pair[1]);
        }
        refused(&par(&args), 2, &[flag]);
    }
    assert_eq!(tree(d), before, "nothing created");
}

// ---- 3. outputs ------------------------------------------------------------------------------

#[test]
fn outputs_are_checked_before_any_compute() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A path below a regular file cannot be created, even by root (CI runs as root).
    let blocker = d.join("a_file");
    std::fs::write(&blocker, b"x").unwrap();
    let bad = blocker.join("sub/x.npy");
    // The checkpoint fails at run time (overflowing logits): an output error instead proves the
    // output was checked first.
    let ckpt = overflowing(d);
    let (classes, codes) = classes4(d);
    let tok = tokenizer(d, "tok.safetensors", |_| {});
    let codes16 = d.join("c16.npy");
    write_npy(&codes16, &[1, 16], &[1; 16]);
    let before = tree(d);
    for args in [
        vec!["generate", "--checkpoint", s(&ckpt), "--classes", "1"],
        vec!["score", "--checkpoint", s(&ckpt), "--classes", s(&classes), "--tokens", s(&codes)],
        vec!["convert", "--checkpoint", s(&ckpt)],
        vec!["decode", "--codes", s(&codes16), "--tokenizer", s(&tok)],
    ] {
        let mut args = args.clone();
        args.extend(["--out", s(&bad)]);
        refused(&par(&args), 2, &["--out", "a_file"]);
    }
    // An existing directory where a file should go.
    let o = par(&["convert", "--checkpoint", s(&ckpt), "--out", s(d)]);
    refused(&o, 2, &["--out", "is a directory"]);
    assert_eq!(tree(d), before);
}

#[test]
fn failed_commands_leave_no_new_files_or_folders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = par_checkpoint(d, "ok.safetensors", |_| {});
    let ckpt = overflowing(d);
    let before = tree(d);
    // Fails on its inputs (class 99 of 10).
    let o = par(&[
        "generate",
        "--checkpoint",
        s(&ok),
        "--classes",
        "99",
        "--out",
        s(&d.join("new/sub/x.npy")),
    ]);
    refused(&o, 2, &["class id 99"]);
    // Fails at run time, after the output folders were needed.
    let o = par(&[
        "generate",
        "--checkpoint",
        s(&ckpt),
        "--classes",
        "1",
        "--out",
        s(&d.join("new2/sub/x.npy")),
    ]);
    refused(&o, 1, &["non-finite logits"]);
    assert_eq!(tree(d), before);
    // And the successful command creates its folders.
    let o = par(&[
        "generate",
        "--checkpoint",
        s(&ok),
        "--classes",
        "1",
        "--out",
        s(&d.join("new3/sub/x.npy")),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(d.join("new3/sub/x.npy").is_file());
}

#[test]
fn tokenize_strict_can_be_rerun_after_removing_the_bad_image() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tok = tokenizer(d, "tok.safetensors", |_| {});
    let root = d.join("images");
    std::fs::create_dir_all(root.join("a")).unwrap();
    for i in 0..3 {
        image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(x * y + i) as u8]))
            .save(root.join(format!("a/{i}.png")))
            .unwrap();
    }
    std::fs::write(root.join("a/broken.png"), b"not an image").unwrap();
    let out = d.join("codes");
    let args = [
        "tokenize",
        "--images",
        s(&root),
        "--tokenizer",
        s(&tok),
        "--image-size",
        "16",
        "--strict",
        "--out",
        s(&out),
    ];
    let o = par(&args);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("broken.png"), "{}", stderr(&o));
    std::fs::remove_file(root.join("a/broken.png")).unwrap();
    let o = par(&args);
    assert!(o.status.success(), "rerun after removing the image: {}", stderr(&o));
    assert_eq!(par_data::CodeStore::open(&out).unwrap().info().num_images, 3);
}

#[test]
fn a_strict_tokenize_resumes_after_the_bad_image_is_fixed_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tok = tokenizer(d, "tok.safetensors", |_| {});
    let root = d.join("images");
    std::fs::create_dir_all(root.join("a")).unwrap();
    let good = |i: u32| {
        let mut png = std::io::Cursor::new(Vec::new());
        image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(x * y + i) as u8]))
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        png.into_inner()
    };
    for i in 0..4 {
        std::fs::write(root.join(format!("a/{i}.png")), good(i)).unwrap();
    }
    std::fs::write(root.join("a/2.png"), b"not an image").unwrap();
    let out = d.join("codes");
    let args = [
        "tokenize",
        "--images",
        s(&root),
        "--tokenizer",
        s(&tok),
        "--image-size",
        "16",
        "--chunk-size",
        "1",
        "--strict",
        "--out",
        s(&out),
    ];
    refused(&par(&args), 2, &["2.png"]);
    assert!(out.join(".tokenize/chunk-000001.parc").is_file(), "two chunks done");
    // Fixed in place (another size): the job resumes (was: refused on its file list).
    std::fs::write(root.join("a/2.png"), good(2)).unwrap();
    let o = par(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(par_data::CodeStore::open(&out).unwrap().info().num_images, 4);
}

// ---- 4. resume -------------------------------------------------------------------------------

#[test]
fn tokenizer_resume_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let fashion = repo().join("data/fashion-mnist");
    let out = dir.path().join("run");
    let run = |extra: &[&str]| {
        let mut args = tokenizer_train_args(s(&fashion), s(&out));
        args.extend(extra);
        par(&args)
    };
    // --resume with nothing to resume: an error, nothing created.
    refused(&run(&["--steps", "2", "--resume"]), 2, &["nothing to resume", "--resume"]);
    assert!(!out.exists());
    let o = run(&["--steps", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read(out.join("report.json")).unwrap();
    let weights = std::fs::read(out.join("tokenizer.safetensors")).unwrap();
    // Fewer steps than done: refused, nothing rewritten.
    refused(&run(&["--steps", "2", "--resume"]), 2, &["--steps", "already at step 4", "2 steps"]);
    // Another dtype: refused.
    refused(&run(&["--steps", "6", "--resume", "--dtype", "bf16"]), 2, &["--dtype", "f32", "bf16"]);
    // The same steps again: the run is finished, nothing to do, nothing rewritten.
    let o = run(&["--steps", "4", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already finished"), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("report.json")).unwrap(), report);
    assert_eq!(std::fs::read(out.join("tokenizer.safetensors")).unwrap(), weights);
}

// ---- 5. CLI consistency ----------------------------------------------------------------------

#[test]
fn negative_numbers_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = par_checkpoint(dir.path(), "ok.safetensors", |_| {});
    let out = dir.path().join("x.npy");
    for (flag, value) in [
        ("--temperature", "-1"),
        ("--top-k", "-1"),
        ("--classes", "-1"),
        ("--cfg-scale", "-2.5"),
        ("--seed", "-3"),
    ] {
        let mut args = vec!["generate", "--checkpoint", s(&ckpt), "--out", s(&out), flag, value];
        if flag != "--classes" {
            args.extend(["--classes", "1"]);
        }
        let o = par(&args);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{flag} {value}: {}", stderr(&o));
        assert!(!stderr(&o).contains("unexpected argument"), "{}", stderr(&o));
    }
}

#[test]
fn one_exit_status_rule_for_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = par_checkpoint(d, "ok.safetensors", |_| {});
    let (classes, codes) = classes4(d);
    let missing = d.join("missing.bin");
    let out = d.join("x.npy");
    let score = |c: &Path, cl: &Path, t: &Path| {
        par(&[
            "score",
            "--checkpoint",
            s(c),
            "--classes",
            s(cl),
            "--tokens",
            s(t),
            "--out",
            s(&out),
        ])
    };
    refused(&score(&missing, &classes, &codes), 2, &["missing.bin"]);
    refused(&score(&ckpt, &missing, &codes), 2, &["missing.bin"]);
    refused(&score(&ckpt, &classes, &missing), 2, &["missing.bin"]);
    let o = par(&["decode", "--codes", s(&missing), "--tokenizer", s(&ckpt), "--out", s(&out)]);
    refused(&o, 2, &["missing.bin"]);
    // An output that cannot be written: the same status from every command.
    let blocker = d.join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let bad = blocker.join("x.npy");
    refused(&par(&["convert", "--checkpoint", s(&ckpt), "--out", s(&bad)]), 2, &["--out"]);
    refused(
        &par(&["generate", "--checkpoint", s(&ckpt), "--classes", "1", "--out", s(&bad)]),
        2,
        &["--out"],
    );
}

#[test]
fn model_and_tokenizer_checkpoints_are_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ckpt = par_checkpoint(d, "model.safetensors", |_| {});
    let tok = tokenizer(d, "tok.safetensors", |_| {});
    let codes = d.join("c.npy");
    write_npy(&codes, &[1, 16], &[1; 16]);
    let o = par(&[
        "decode",
        "--codes",
        s(&codes),
        "--tokenizer",
        s(&ckpt),
        "--out",
        s(&d.join("g.png")),
    ]);
    refused(&o, 2, &["model.safetensors", "PAR model checkpoint", "not a tokenizer"]);
    let o =
        par(&["generate", "--checkpoint", s(&tok), "--classes", "1", "--out", s(&d.join("x.npy"))]);
    refused(&o, 2, &["tok.safetensors", "tokenizer checkpoint", "not a PAR model"]);
}

#[test]
fn partial_model_config_json_fills_in_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("model.json");
    // Only the fields that differ from the defaults; the rest (rope_base, norm_eps, dropouts, …)
    // come from ParTransformerConfig's defaults, as for the tokenizer and training configs.
    std::fs::write(
        &cfg,
        r#"{"vocab_size": 64, "num_classes": 10, "d_model": 32, "n_layers": 2, "n_heads": 2,
            "multiple_of": 32, "grid_size": 4}"#,
    )
    .unwrap();
    let logits = d.join("logits.npy");
    let o = par(&[
        "score",
        "--checkpoint",
        s(&fixture("n4.pt")),
        "--model-config",
        s(&cfg),
        "--classes",
        s(&fixture("n4_classes.npy")),
        "--tokens",
        s(&fixture("n4_codes.npy")),
        "--out",
        s(&logits),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |p: &Path| {
        let bytes = std::fs::read(p).unwrap();
        npyz::NpyFile::new(&bytes[..]).unwrap().into_vec::<f32>().unwrap()
    };
    let (got, expected) = (read(&logits), read(&fixture("n4_logits.npy")));
    let diff = got
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) });
    assert!(diff <= 1e-4, "max |Δ| = {diff}");
}

#[test]
fn video_models_are_refused_by_the_image_sampler_and_generate_video_grids() {
    // The gpt-tiny n = 4 weights hold nothing grid-shaped: with frames = 3 they are a video model
    // of 3×4×4 tokens (docs/spec.md §8).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut state = StateDict::read(&fixture("n4.pt")).unwrap();
    state.store_json(CONFIG_METADATA_KEY, &Preset::GptTiny.video_config(3, 4, 4));
    let ckpt = d.join("video.safetensors");
    state.write_safetensors(&ckpt).unwrap();
    // A tokenizer that fits the model's codebook (64 codes), so that only the frames are wrong.
    let tok = d.join("tok64.safetensors");
    VqTokenizerConfig::new()
        .with_image_channels(1)
        .with_base_channels(8)
        .with_channel_mult(vec![1, 2, 2])
        .with_num_res_blocks(1)
        .with_z_channels(8)
        .with_codebook_size(64)
        .with_codebook_dim(4)
        .with_norm_groups(4)
        .init(&Device::flex())
        .unwrap()
        .save(&tok)
        .unwrap();
    let out = d.join("samples");
    let o = par(&[
        "sample",
        "--checkpoint",
        s(&ckpt),
        "--tokenizer",
        s(&tok),
        "--classes",
        "1",
        "--out",
        s(&out),
    ]);
    refused(&o, 2, &["frames", "video model", "par sample"]);
    assert!(!out.exists(), "a refused sample job leaves no folder");
    // An image config given for the video weights is refused too (what they were trained for
    // wins, as for --parallel).
    let o = par(&[
        "sample",
        "--checkpoint",
        s(&ckpt),
        "--preset",
        "gpt-tiny",
        "--grid",
        "4",
        "--tokenizer",
        s(&tok),
        "--classes",
        "1",
        "--out",
        s(&out),
    ]);
    refused(&o, 2, &["frames = 1", "frames = 3", "video.safetensors"]);
    assert!(!out.exists(), "a refused sample job leaves no folder");
    // The generic code-grid path takes it: 3 frames of 4×4 codes per sample, kept as such.
    let codes = d.join("codes.npy");
    let o = par(&["generate", "--checkpoint", s(&ckpt), "--classes", "1,2", "--out", s(&codes)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&codes).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(npy.shape(), [2, 3, 4, 4]);
    // … which the image decoder refuses instead of reading them as images.
    let o = par(&[
        "decode",
        "--codes",
        s(&codes),
        "--tokenizer",
        s(&tok),
        "--out",
        s(&d.join("g.png")),
    ]);
    refused(&o, 2, &["codes.npy", "expected shape"]);
}

// ---- 6. the input rules: bounded sizes, no aliasing, fingerprints, nothing left behind --------

/// A gpt-tiny model and the 16-code tokenizer it fits (`par sample`'s inputs).
fn sampler_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let tok = tokenizer(dir, "tok.safetensors", |_| {});
    let model = dir.join("m.safetensors");
    write_sampler_model(&model, 1.0);
    (model, tok)
}

/// A gpt-tiny n = 4 state dict cut to the first 16 codes (the 16-code tokenizer's), with its
/// config stored.
fn cut_to_16_codes(mut state: StateDict) -> StateDict {
    for key in ["tok_embeddings.weight", "output.weight"] {
        let w = state.tensors.get_mut(key).unwrap();
        let cols = w.shape[1];
        w.shape[0] = 16;
        w.values.truncate(16 * cols);
    }
    state.store_json(CONFIG_METADATA_KEY, &Preset::GptTiny.config(4, 4).with_vocab_size(16));
    state
}

/// The n = 4 fixture cut to 16 codes, its output head scaled by `scale` (another model).
fn write_sampler_model(path: &Path, scale: f32) {
    let mut state = cut_to_16_codes(StateDict::read(&fixture("n4.pt")).unwrap());
    state.tensors.get_mut("output.weight").unwrap().values.iter_mut().for_each(|v| *v *= scale);
    state.write_safetensors(path).unwrap();
}

fn sample_args<'a>(model: &'a Path, tok: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec!["sample", "--checkpoint", s(model), "--tokenizer", s(tok), "--out", s(out)]
}

/// `dir` and everything below it with its bytes (none for a folder) and modification time:
/// "nothing changed", folders' time stamps included.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    std::iter::once(dir.to_path_buf())
        .chain(tree(dir))
        .map(|p| {
            let m = std::fs::metadata(&p).unwrap().modified().unwrap();
            let bytes = if p.is_file() { std::fs::read(&p).unwrap() } else { Vec::new() };
            (p.clone(), bytes, m)
        })
        .collect()
}

#[test]
fn huge_counts_and_sizes_are_refused_naming_the_flag_and_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (model, tok) = sampler_pair(d);
    let out = d.join("s/pc");
    let before = tree(d);
    let base = sample_args(&model, &tok, &out);
    // A count whose class list alone would not fit (was: capacity overflow, exit 101).
    let o = par(&with(base.clone(), "--per-class", "18446744073709551615"));
    refused(&o, 2, &["--per-class 18446744073709551615", "10000000 images"]);
    // The same under a 4 GB address-space limit (was: allocation abort, exit 134).
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_par"))
        .args(with(base.clone(), "--per-class", "4294967295"))
        .output()
        .unwrap();
    refused(&o, 2, &["--per-class 4294967295"]);
    // A batch whose KV cache passes the image cap but not a 2 GiB address-space limit: refused by
    // the memory estimate, naming the flags, before anything is allocated.
    let o = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2097152; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_par"))
        .args(with(with(base.clone(), "--per-class", "20000"), "--batch-size", "200000"))
        .output()
        .unwrap();
    refused(&o, 2, &["--batch-size/--image-size", "of memory"]);
    // Sides of the .npz above the documented maximum (was: a 12 TB allocation, exit 134).
    for size in ["1000000", "5000"] {
        let args = with(with(base.clone(), "--per-class", "1"), "--npz-size", size);
        let mut args = args;
        args.push("--npz");
        refused(&par(&args), 2, &["--npz-size", "maximum 4096"]);
    }
    // An .npz larger than the disk: refused with its size, before anything is sampled.
    let mut args = with(with(base.clone(), "--per-class", "100000"), "--npz-size", "4096");
    args.push("--npz");
    refused(&par(&args), 2, &["--npz-size/--per-class", "samples.npz", "free on the disk"]);
    // The entropy self-check: more dimensions than memory (was: a panic in faer, exit 101),
    // and fewer samples than dimensions, known before anything is drawn.
    let o = par(&["entropy", "--synthetic-gaussian", "--dim", "100000", "--samples", "10"]);
    refused(&o, 2, &["--dim/--samples", "of memory"]);
    let o = par(&["entropy", "--synthetic-gaussian", "--dim", "5000", "--samples", "10"]);
    refused(&o, 2, &["10 sample(s) cannot estimate a 5000-dimensional covariance"]);
    assert_eq!(tree(d), before, "nothing created");
    // A size that fits is sampled, and the .npz's size is said.
    let mut args = with(with(base, "--per-class", "1"), "--npz-size", "16");
    args.push("--npz");
    let o = par(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("samples.npz will hold 7.5 KiB"), "{}", stderr(&o));
}

#[test]
fn outputs_never_alias_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (model, tok) = sampler_pair(d);
    let (classes, codes) = classes4(d);
    let ckpt = par_checkpoint(d, "n4.safetensors", |_| {});
    std::os::unix::fs::symlink(&ckpt, d.join("link.safetensors")).unwrap();
    std::fs::hard_link(&ckpt, d.join("hard.safetensors")).unwrap();
    // The files (the test makes and removes a folder in `d`, which moves `d`'s own time stamp).
    let files =
        |d: &Path| contents(d).into_iter().filter(|(p, ..)| p.is_file()).collect::<Vec<_>>();
    let before = files(d);
    // The checkpoint as the output, by name, through a symbolic link and a hard link (was:
    // exit 0, the input overwritten).
    for out in [ckpt.clone(), d.join("link.safetensors"), d.join("hard.safetensors")] {
        let o = par(&["convert", "--checkpoint", s(&ckpt), "--out", s(&out)]);
        refused(&o, 2, &["--out", "is the same file as --checkpoint"]);
    }
    // The tokens as the output of `par score` (was: exit 0, the tokens replaced by logits).
    let score = |out: &Path| {
        par(&[
            "score",
            "--checkpoint",
            s(&ckpt),
            "--classes",
            s(&classes),
            "--tokens",
            s(&codes),
            "--out",
            s(out),
        ])
    };
    refused(&score(&codes), 2, &["--out", "--tokens"]);
    refused(&score(&classes), 2, &["--out", "--classes"]);
    // Folders: the one holding the checkpoint, or a folder inside the images to tokenize.
    refused(&par(&sample_args(&model, &tok, d)), 2, &["--out", "holds --checkpoint"]);
    let images = d.join("images");
    std::fs::create_dir_all(images.join("a")).unwrap();
    let o = par(&[
        "tokenize",
        "--images",
        s(&images),
        "--tokenizer",
        s(&tok),
        "--out",
        s(&images.join("codes")),
    ]);
    refused(&o, 2, &["--out", "lies inside --images"]);
    std::fs::remove_dir_all(&images).unwrap();
    assert_eq!(files(d), before, "every input as it was");
}

#[test]
fn a_sample_job_refuses_changed_inputs_and_a_finished_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (model, tok) = sampler_pair(d);
    let out = d.join("s");
    let args = with(with(sample_args(&model, &tok, &out), "--per-class", "2"), "--batch-size", "4");
    let o = par(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let done = contents(&out);
    // The same job again: exit 0, not a byte or a time stamp changed (the folder's included).
    std::thread::sleep(std::time::Duration::from_millis(20));
    let o = par(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already finished"), "{}", stderr(&o));
    assert_eq!(contents(&out), done);
    // The checkpoint under another spelling is the same input (compared by content).
    let spelled = format!("{}/./{}", d.display(), model.file_name().unwrap().to_str().unwrap());
    let o = par(&with(args.clone(), "--checkpoint", &spelled));
    assert!(o.status.success() && stderr(&o).contains("already finished"), "{}", stderr(&o));
    assert_eq!(contents(&out), done);
    // A killed job (its last batch missing) whose checkpoint was then retrained in place: the
    // resume is refused, naming the checkpoint (was: exit 0 with images of two models).
    let images: Vec<PathBuf> = tree(&out.join("images"));
    for p in &images[16..] {
        std::fs::remove_file(p).unwrap();
    }
    let partial = contents(&out);
    write_sampler_model(&model, 2.0);
    refused(&par(&args), 2, &["--checkpoint", "changed since the job", "other content"]);
    assert_eq!(contents(&out), partial, "nothing written");
    // The original weights: the job finishes with the same bytes as the uninterrupted one,
    // also when its manifest comes from a version that recorded no fingerprints (a warning).
    write_sampler_model(&model, 1.0);
    let manifest = out.join("sample.json");
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    json.as_object_mut().unwrap().remove("inputs").unwrap();
    std::fs::write(&manifest, json.to_string()).unwrap();
    let o = par(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("recorded no input fingerprints"), "{}", stderr(&o));
    let same = |a: &[(PathBuf, Vec<u8>, std::time::SystemTime)],
                b: &[(PathBuf, Vec<u8>, std::time::SystemTime)]| {
        a.iter().map(|f| (&f.0, &f.1)).eq(b.iter().map(|f| (&f.0, &f.1)))
    };
    assert!(same(&contents(&out), &done));
    // A damaged image (0 bytes) is said, by name, and made again.
    std::fs::write(&images[5], b"").unwrap();
    let o = par(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let name = images[5].file_name().unwrap().to_str().unwrap();
    assert!(
        stderr(&o).contains(name) && stderr(&o).contains("not a readable PNG"),
        "{}",
        stderr(&o)
    );
    assert!(same(&contents(&out), &done));
}

#[test]
fn failed_jobs_leave_nothing_and_finished_ones_rerun_as_no_ops() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tok = tokenizer(d, "tok.safetensors", |_| {});
    // Sampling whose logits overflow (finite weights): exit 1, and no sample.json, no images/,
    // no output folder (was: both left behind).
    let state = cut_to_16_codes(StateDict::read(&overflowing(d)).unwrap());
    let bad = d.join("bad.safetensors");
    state.write_safetensors(&bad).unwrap();
    let before = tree(d);
    let out = d.join("samples/s");
    let o = par(&with(sample_args(&bad, &tok, &out), "--per-class", "1"));
    refused(&o, 1, &["non-finite logits"]);
    assert_eq!(tree(d), before, "nothing left");
    // A folder whose every image is unreadable: exit 2 and nothing left (was: exit 0 with an
    // empty store), as every command treats zero usable inputs.
    let images = d.join("images");
    std::fs::create_dir_all(images.join("a")).unwrap();
    for i in 0..2 {
        std::fs::write(images.join(format!("a/{i}.png")), b"not an image").unwrap();
    }
    let codes = d.join("codes");
    let tokenize = [
        "tokenize",
        "--images",
        s(&images),
        "--tokenizer",
        s(&tok),
        "--image-size",
        "16",
        "--out",
        s(&codes),
    ];
    refused(&par(&tokenize), 2, &["none of the 2 inputs could be read", "nothing was written"]);
    assert!(!codes.exists());
    // Readable images: the job runs; the identical job again exits 0 and changes nothing (was:
    // exit 2, "already holds a finished job").
    for i in 0..2u32 {
        image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(x * y + 40 * i) as u8]))
            .save(images.join(format!("a/{i}.png")))
            .unwrap();
    }
    let o = par(&tokenize);
    assert!(o.status.success(), "{}", stderr(&o));
    let finished = contents(&codes);
    let o = par(&tokenize);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("already finished"), "{}", stderr(&o));
    assert_eq!(contents(&codes), finished);
    // The same folder and tokenizer spelled otherwise are the same inputs.
    let images_spelled = format!("{}/../images/.", images.display());
    let tok_spelled = format!("{}/./tok.safetensors", d.display());
    let o = par(&with(
        with(tokenize.to_vec(), "--images", &images_spelled),
        "--tokenizer",
        &tok_spelled,
    ));
    assert!(o.status.success() && stderr(&o).contains("already finished"), "{}", stderr(&o));
    assert_eq!(contents(&codes), finished);
    // An image replaced (another size) since the store was made: refused, naming what differs.
    image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(x * 13 + y * 7) as u8 ^ 0x5a]))
        .save(images.join("a/1.png"))
        .unwrap();
    refused(&par(&tokenize), 2, &["already holds a finished job", "another file list"]);
    assert_eq!(contents(&codes), finished);
    // And one added: the count differs.
    image::GrayImage::new(16, 16).save(images.join("a/2.png")).unwrap();
    refused(&par(&tokenize), 2, &["already holds a finished job", "source_images = 2"]);
    assert_eq!(contents(&codes), finished);
}

#[test]
fn a_tokenizer_run_without_held_out_images_reports_no_psnr() {
    let dir = tempfile::tempdir().unwrap();
    let fashion = repo().join("data/fashion-mnist");
    let out = dir.path().join("run");
    let mut args = tokenizer_train_args(s(&fashion), s(&out));
    args = with(with(args, "--held-out", "0"), "--steps", "1");
    let o = par(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no held-out images"), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    // Was: PSNR 0.0 and MSE 0.0 for zero images.
    assert_eq!(report["held_out"]["images"], 0);
    assert!(report["held_out"]["psnr_db"].is_null(), "{}", report["held_out"]);
    assert!(report["held_out"]["mse"].is_null(), "{}", report["held_out"]);
}

#[test]
fn errors_name_the_flag_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A classifier whose features overflow on finite images: blamed on --classifier (was: "a
    // non-finite input").
    let mut state =
        StateDict::read(&repo().join("data/classifier/fashion_cnn.safetensors")).unwrap();
    for t in state.tensors.values_mut() {
        t.values.iter_mut().for_each(|v| *v *= 1e30);
    }
    let classifier = d.join("huge.safetensors");
    state.write_safetensors(&classifier).unwrap();
    let pngs = d.join("pngs");
    std::fs::create_dir_all(&pngs).unwrap();
    for i in 0..5u32 {
        image::GrayImage::from_fn(32, 32, |x, y| {
            image::Luma([((x * 7 + y * 3 + i * 50) % 256) as u8])
        })
        .save(pngs.join(format!("{i:06}_class{:04}_seed0.png", i % 2)))
        .unwrap();
    }
    let o = par(&[
        "eval",
        "--images",
        s(&pngs),
        "--reference",
        s(&pngs),
        "--classifier",
        s(&classifier),
    ]);
    refused(&o, 2, &["--classifier", "huge.safetensors", "classifier's weights overflow"]);
    // A diverging adversarial weight: the hint names --disc-weight (was: "lower --lr" only).
    let fashion = repo().join("data/fashion-mnist");
    let out = d.join("run");
    let mut args = tokenizer_train_args(s(&fashion), s(&out));
    args = with(with(with(args, "--disc-start", "0"), "--disc-weight", "1e38"), "--steps", "3");
    args = with(with(args, "--disc-layers", "2"), "--disc-channels", "8");
    refused(&par(&args), 1, &["--disc-weight (now 1e38", "diverged"]);
}

#[test]
fn explicit_settings_are_used_or_refused_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (model, tok) = sampler_pair(d);
    // A --model-config that writes out another parallel degree than the checkpoint's.
    let config = d.join("n16.json");
    std::fs::write(&config, serde_json::to_string(&Preset::GptTiny.config(4, 16)).unwrap())
        .unwrap();
    let ckpt = fixture("n4.pt");
    let out = d.join("x.npy");
    let o = par(&[
        "generate",
        "--checkpoint",
        s(&ckpt),
        "--model-config",
        s(&config),
        "--classes",
        "1",
        "--out",
        s(&out),
    ]);
    refused(&o, 2, &["--model-config", "parallel = 16", "PAR-4×"]);
    // Left out, the checkpoint's degree is taken: the n = 16 fixture with a config whose
    // default degree (4) differs.
    let partial = d.join("partial.json");
    let mut json = serde_json::to_value(Preset::GptTiny.config(4, 4)).unwrap();
    json.as_object_mut().unwrap().remove("parallel");
    std::fs::write(&partial, json.to_string()).unwrap();
    let o = par(&[
        "generate",
        "--checkpoint",
        s(&fixture("n16.pt")),
        "--model-config",
        s(&partial),
        "--classes",
        "1",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // --grid and an --image-size that implies another grid.
    let out = d.join("s");
    let args = with(with(sample_args(&model, &tok, &out), "--grid", "8"), "--image-size", "16");
    refused(&par(&with(args, "--classes", "1")), 2, &["--image-size 16", "--grid is 8"]);
}
