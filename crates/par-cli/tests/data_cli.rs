//! `par tokenize` and `par tokenizer train` as a user runs them, with the bad inputs of the
//! tokenizer issue: corrupt and truncated images, grayscale / RGBA / 16-bit images, images
//! smaller than the crop, empty class folders, missing directories, wrong `.npy` files, code ids
//! beyond the codebook.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::prelude::*;
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

/// A tiny RGB tokenizer in our self-describing format (8×8 codes for 16 px views).
fn tokenizer(dir: &Path) -> PathBuf {
    let config = VqTokenizerConfig::new()
        .with_image_channels(3)
        .with_base_channels(8)
        .with_channel_mult(vec![1, 2])
        .with_num_res_blocks(1)
        .with_z_channels(8)
        .with_codebook_size(64)
        .with_codebook_dim(4)
        .with_norm_groups(4);
    let path = dir.join("tok.safetensors");
    config.init(&Device::flex()).unwrap().save(&path).unwrap();
    path
}

/// An ImageFolder with every awkward image kind the loader must handle.
fn awkward_folder(dir: &Path) -> PathBuf {
    let root = dir.join("images");
    for c in ["a_rgb", "b_modes", "c_broken"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
    }
    image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 5, y as u8 * 7, 90]))
        .save(root.join("a_rgb/big.png"))
        .unwrap();
    image::RgbImage::from_fn(9, 7, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 10]))
        .save(root.join("a_rgb/tiny.png"))
        .unwrap();
    image::RgbImage::from_fn(20, 20, |x, _| image::Rgb([x as u8, 3, 4]))
        .save(root.join("a_rgb/photo.jpg"))
        .unwrap();
    image::GrayImage::from_fn(20, 24, |x, y| image::Luma([(x * y) as u8]))
        .save(root.join("b_modes/gray.png"))
        .unwrap();
    image::RgbaImage::from_fn(20, 20, |x, _| image::Rgba([x as u8 * 9, 1, 2, 17]))
        .save(root.join("b_modes/rgba.png"))
        .unwrap();
    image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(20, 20, |x, y| {
        image::Luma([(x * 3000 + y) as u16])
    })
    .save(root.join("b_modes/deep16.png"))
    .unwrap();
    image::ImageBuffer::<image::Rgb<u16>, Vec<u16>>::from_fn(20, 20, |x, _| {
        image::Rgb([x as u16 * 3000, 0, 65535])
    })
    .save(root.join("b_modes/rgb16.png"))
    .unwrap();
    std::fs::write(root.join("c_broken/garbage.png"), b"this is not an image at all").unwrap();
    let good = std::fs::read(root.join("a_rgb/big.png")).unwrap();
    std::fs::write(root.join("c_broken/truncated.png"), &good[..good.len() / 2]).unwrap();
    image::RgbImage::from_fn(20, 20, |_, _| image::Rgb([1, 2, 3]))
        .save(root.join("c_broken/fine.png"))
        .unwrap();
    root
}

#[test]
fn tokenize_converts_odd_images_and_skips_broken_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (root, tok) = (awkward_folder(dir.path()), tokenizer(dir.path()));
    let out = dir.path().join("out");
    let o = par(&[
        "tokenize",
        "--images",
        s(&root),
        "--tokenizer",
        s(&tok),
        "--image-size",
        "16",
        "--ten-crop",
        "--format",
        "both",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("garbage.png") && err.contains("truncated.png"),
        "warnings name the files: {err}"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("tokenize.json")).unwrap()).unwrap();
    assert_eq!(report["num_images"], 8, "10 files, 2 broken");
    assert_eq!(report["skipped"].as_array().unwrap().len(), 2);
    assert_eq!(report["classes"], serde_json::json!(["a_rgb", "b_modes", "c_broken"]));
    let store = par_data::CodeStore::open(&out).unwrap();
    let (codes, labels) = store.load_all(|_| {}).unwrap();
    assert_eq!(labels, [0, 0, 0, 1, 1, 1, 1, 2]);
    assert_eq!(codes.len(), 8 * 10 * 64);
    assert!(
        out.join("imagenet16_codes/7.npy").is_file()
            && !out.join("imagenet16_codes/8.npy").exists()
    );

    // --strict: the first broken file is fatal, named, and nothing final is written.
    let strict = dir.path().join("strict");
    let o = par(&[
        "tokenize",
        "--images",
        s(&root),
        "--tokenizer",
        s(&tok),
        "--image-size",
        "16",
        "--strict",
        "--out",
        s(&strict),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("garbage.png"), "{}", stderr(&o));
    assert!(!strict.join("codes.parc").exists() && !strict.join("tokenize.json").exists());

    // A finished output folder is not overwritten.
    let o = par(&[
        "tokenize",
        "--images",
        s(&root),
        "--tokenizer",
        s(&tok),
        "--image-size",
        "16",
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("finished job"), "{}", stderr(&o));
}

#[test]
fn tokenize_rejects_bad_folders_and_settings_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("empty_class")).unwrap();
    std::fs::create_dir_all(root.join("full")).unwrap();
    image::RgbImage::new(16, 16).save(root.join("full/x.png")).unwrap();
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        let mut a =
            vec!["tokenize", "--tokenizer", s(&tok), "--image-size", "16", "--out", s(&out)];
        a.extend_from_slice(extra);
        par(&a)
    };
    let o = run(&["--images", s(&root)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("empty_class") && stderr(&o).contains("no image files"),
        "{}",
        stderr(&o)
    );
    let o = run(&["--images", s(&root), "--allow-empty-classes", "--format", "compact"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let store = par_data::CodeStore::open(&out).unwrap();
    assert_eq!(store.sample(0).unwrap().1, 1, "the empty class keeps id 0");
    let o = run(&["--images", s(&dir.path().join("no_such_dir"))]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("no_such_dir"), "{}", stderr(&o));
    let o = run(&["--images", s(&root), "--image-size", "12"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run(&["--idx", s(&dir.path().join("no_idx"))]);
    assert!(stderr(&o).contains("--idx") && stderr(&o).contains("no_idx"), "{}", stderr(&o));
    // An IDX folder without the split's files names the file looked for.
    std::fs::create_dir_all(dir.path().join("empty_idx")).unwrap();
    let o = run(&["--idx", s(&dir.path().join("empty_idx"))]);
    assert!(stderr(&o).contains("train-images-idx3-ubyte"), "{}", stderr(&o));
}

#[test]
fn tokenize_idx_and_decode_wrong_arrays() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path());
    // A 3-image IDX set (28×28) with gzip images and raw labels.
    let idx = dir.path().join("fashion");
    std::fs::create_dir_all(&idx).unwrap();
    let mut images = vec![0u8, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 28, 0, 0, 0, 28];
    images.extend((0..3 * 784).map(|i| (i % 256) as u8));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&images).unwrap();
    std::fs::write(idx.join("train-images-idx3-ubyte.gz"), gz.finish().unwrap()).unwrap();
    std::fs::write(idx.join("train-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 3, 9, 0, 4]).unwrap();
    let out = dir.path().join("codes");
    let o = par(&[
        "tokenize",
        "--idx",
        s(&idx),
        "--tokenizer",
        s(&tok),
        "--image-size",
        "16",
        "--out",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let store = par_data::CodeStore::open(&out).unwrap();
    assert_eq!(store.info().classes[9], "Ankle boot");
    assert_eq!((store.info().views, store.load_all(|_| {}).unwrap().1), (2, vec![9, 0, 4]));

    // par decode with wrong arrays: float dtype, bad shape, ids ≥ codebook.
    let png = dir.path().join("grid.png");
    for (name, bytes, needle) in [
        ("float.npy", par_data::npy::encode(&[1, 64], &[0.5f32; 64]), "integer"),
        ("shape.npy", par_data::npy::encode(&[2, 3, 4, 5], &[0i64; 120]), "shape"),
        ("range.npy", par_data::npy::encode(&[1, 64], &[64i64; 64]), "codebook"),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, bytes).unwrap();
        let o = par(&["decode", "--codes", s(&f), "--tokenizer", s(&tok), "--out", s(&png)]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains(name) && stderr(&o).contains(needle), "{name}: {}", stderr(&o));
        assert!(!png.exists());
    }
    let f = dir.path().join("ok.npy");
    std::fs::write(&f, par_data::npy::encode(&[2, 64], &[3i64; 128])).unwrap();
    let o = par(&["decode", "--codes", s(&f), "--tokenizer", s(&tok), "--out", s(&png)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(image::open(&png).unwrap().width(), 32);
}

#[test]
fn tokenizer_train_runs_resumes_and_refuses_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("imgs");
    for (c, n) in [("x", 5), ("y", 5)] {
        std::fs::create_dir_all(root.join(c)).unwrap();
        for i in 0..n {
            image::RgbImage::from_fn(16, 16, |x, y| {
                image::Rgb([(x * 16) as u8, (y * i * 3) as u8, 40])
            })
            .save(root.join(c).join(format!("{i}.png")))
            .unwrap();
        }
    }
    let cfg = dir.path().join("tok.json");
    let config = serde_json::json!({
        "image_channels": 3, "base_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1,
        "z_channels": 8, "codebook_size": 64, "codebook_dim": 4, "norm_groups": 4,
        "commitment_weight": 0.25
    });
    std::fs::write(&cfg, config.to_string()).unwrap();
    let out = dir.path().join("run");
    let base = [
        "tokenizer",
        "train",
        "--images",
        s(&root),
        "--config",
        s(&cfg),
        "--image-size",
        "16",
        "--held-out",
        "2",
        "--batch-size",
        "4",
        "--checkpoint-every",
        "2",
        "--out",
        s(&out),
    ];
    let mut a = base.to_vec();
    a.extend(["--steps", "2"]);
    let o = par(&a);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("PSNR"), "{}", stderr(&o));
    let o = par(&a);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
    let mut b = base.to_vec();
    b.extend(["--steps", "4", "--resume"]);
    let o = par(&b);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["steps"], 4);
    assert!(report["held_out"]["psnr_db"].as_f64().unwrap() > 0.0);
    let o = par(&[
        "decode",
        "--codes",
        s(&dir.path().join("none.npy")),
        "--tokenizer",
        s(&out.join("tokenizer.safetensors")),
        "--out",
        s(&dir.path().join("g.png")),
    ]);
    assert!(stderr(&o).contains("none.npy"), "{}", stderr(&o));
}

/// A compact store of `images` 4×4 code grids over a 16-entry codebook with spatial structure:
/// code(r, c) = (base + r + 2c) mod 16, a random base per image, 10 % of the codes replaced by noise.
fn structured_codes(dir: &Path, images: usize) -> PathBuf {
    use par_data::compact::{self, CompactHeader};
    let out = dir.join("codes");
    std::fs::create_dir_all(&out).unwrap();
    let header = CompactHeader {
        version: compact::VERSION,
        num_images: images,
        views: 1,
        grid: [4, 4],
        frames: 1,
        codebook_size: 16,
        code_dtype: CompactHeader::dtype_for(16).into(),
        classes: vec!["a".into()],
        meta: serde_json::json!({}),
    };
    let mut state = 12345u64;
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut codes = Vec::with_capacity(images * 16);
    for _ in 0..images {
        let base = next() % 16;
        for r in 0..4 {
            for c in 0..4 {
                codes.push(if next() % 10 == 0 { next() % 16 } else { (base + r + 2 * c) % 16 });
            }
        }
    }
    let file = out.join(par_data::COMPACT_FILE);
    std::fs::write(&file, compact::encode(&file, &header, &vec![0; images], &codes).unwrap())
        .unwrap();
    out
}

#[test]
fn entropy_maps_queries_and_self_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = VqTokenizerConfig::new()
        .with_image_channels(1)
        .with_base_channels(8)
        .with_channel_mult(vec![1, 2])
        .with_num_res_blocks(1)
        .with_z_channels(8)
        .with_codebook_size(16)
        .with_codebook_dim(4)
        .with_norm_groups(4);
    let tok = dir.path().join("tok.safetensors");
    config.init(&Device::flex()).unwrap().save(&tok).unwrap();
    let codes = structured_codes(dir.path(), 2000);
    let out = dir.path().join("entropy");
    let o = par(&["entropy", "--codes", s(&codes), "--tokenizer", s(&tok), "--out", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("entropy.json")).unwrap()).unwrap();
    let refs: Vec<u64> = report["reference_maps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["reference"].as_u64().unwrap())
        .collect();
    assert_eq!(refs, [0, 2, 10], "corner, edge, centre of a 4×4 grid");
    let map0 = report["reference_maps"][0]["entropy"].as_array().unwrap();
    assert!(map0[0].is_null(), "NaN (null) at the reference itself");
    let marginal = report["marginal"].as_array().unwrap();
    // Conditioning on the structured reference lowers every other position's entropy.
    for i in 1..16 {
        assert!(map0[i].as_f64().unwrap() < marginal[i].as_f64().unwrap() - 0.1, "position {i}");
    }
    for key in ["par", "raster_multi"] {
        let inc = &report["increase"][key];
        assert_eq!(inc["increase"].as_array().unwrap().len(), 16, "{key}");
        assert!(inc["mean_increase"].as_f64().unwrap().is_finite(), "{key}");
    }
    for png in [
        "reference_0_0.png",
        "reference_0_2.png",
        "reference_2_2.png",
        "increase_par.png",
        "increase_raster_multi.png",
    ] {
        assert!(image::open(out.join(png)).is_ok(), "{png}");
    }
    // One query, linear and MLP.
    let o = par(&[
        "entropy",
        "--codes",
        s(&codes),
        "--tokenizer",
        s(&tok),
        "--target",
        "5",
        "--given",
        "4,1",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let q: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(q["entropy"].as_f64().unwrap() < marginal[5].as_f64().unwrap());
    // The self-check: within 1 % of the analytic entropy (d = 8, 10,000 samples).
    let o = par(&[
        "entropy",
        "--synthetic-gaussian",
        "--dim",
        "8",
        "--samples",
        "10000",
        "--seed",
        "0",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let check: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (e, a) = (check["estimated"].as_f64().unwrap(), check["analytic"].as_f64().unwrap());
    assert!((e - a).abs() < 0.01 * a.abs(), "{e} vs {a}");
    // Bad requests: exit 2, naming the problem.
    let bad = dir.path().join("bad");
    for (args, needle) in [
        (vec!["--estimator", "mlp"], "--target"),
        (vec!["--target", "99"], "--target 99"),
        (vec!["--jitter", "nan"], "--jitter"),
        (vec!["--references", "16"], "--references"),
    ] {
        let mut a = vec!["entropy", "--codes", s(&codes), "--tokenizer", s(&tok), "--out", s(&bad)];
        a.extend(args.iter().copied());
        let o = par(&a);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!bad.exists());
    }
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn sample_writes_images_grid_and_npz_and_resumes_to_identical_files() {
    let dir = tempfile::tempdir().unwrap();
    let tok = tokenizer(dir.path()); // RGB, 64 codes, 2× down-sampling: 8 px images of a 4×4 grid
    let ckpt = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/transformer/n4.pt");
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "sample",
            "--checkpoint",
            s(&ckpt),
            "--preset",
            "gpt-tiny",
            "--grid",
            "4",
            "--tokenizer",
            s(&tok),
            "--per-class",
            "3",
            "--batch-size",
            "4",
            "--top-k",
            "10",
            "--seed",
            "5",
            "--npz",
            "--out",
            s(out),
        ];
        args.extend(extra);
        par(&args)
    };
    let a = dir.path().join("a");
    let o = run(&a, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let images = files(&a.join("images"));
    assert_eq!(images.len(), 30);
    assert_eq!(images[7].0, "000007_class0002_seed5.png", "named by index, class and seed");
    assert_eq!(image::load_from_memory(&images[0].1).unwrap().width(), 8);
    assert!(image::open(a.join("grid.png")).unwrap().width() > 3 * 96, "tiles enlarged");
    let npz = par_data::npz::read_images(&a.join("samples.npz")).unwrap();
    assert_eq!((npz.len(), npz[0].width, npz[0].height, npz[0].channels), (30, 8, 8, 3));
    assert_eq!(
        npz[7],
        par_data::PixelImage::from_dynamic(&image::load_from_memory(&images[7].1).unwrap(), 3)
    );
    if Command::new("python3").args(["-c", "import numpy"]).status().is_ok_and(|st| st.success()) {
        let o = Command::new("python3")
            .args([
                "-c",
                "import numpy, sys; a = numpy.load(sys.argv[1])['arr_0']; print(a.shape, a.dtype)",
            ])
            .arg(a.join("samples.npz"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "(30, 8, 8, 3) uint8");
    }
    // A job killed part-way (batches 6 and 7 missing, batch 6 half written): the rerun redoes
    // only those batches and ends with the same bytes as the uninterrupted run.
    let b = dir.path().join("b");
    assert!(run(&b, &[]).status.success());
    for (name, _) in &images[25..30] {
        std::fs::remove_file(b.join("images").join(name)).unwrap();
    }
    std::fs::remove_file(b.join("samples.npz")).unwrap();
    let o = run(&b, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("6 generated now"),
        "batches 6 (4 images) and 7 (2) only: {}",
        stderr(&o)
    );
    assert_eq!(files(&b.join("images")), images);
    assert_eq!(
        std::fs::read(b.join("samples.npz")).unwrap(),
        std::fs::read(a.join("samples.npz")).unwrap()
    );
    // Other settings on a started job are refused.
    let o = run(&b, &["--cfg-scale", "3"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("sampling.cfg_scale = 1.5 (this job: 3.0)"), "{}", stderr(&o));
    // A --parallel that does not match the checkpoint is refused.
    let o = run(&dir.path().join("c"), &["--parallel", "16"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--parallel 16 does not match"), "{}", stderr(&o));
    // Zero-shot higher resolution: 16 px = an 8×8 grid from a model trained on 4×4.
    let z = dir.path().join("z");
    let o = run(&z, &["--image-size", "16", "--classes", "1,2", "--per-class", "0"]);
    assert_eq!(o.status.code(), Some(2), "--classes and --per-class conflict: {}", stderr(&o));
    assert!(!z.exists());
    let mut args = vec![
        "sample",
        "--checkpoint",
        s(&ckpt),
        "--preset",
        "gpt-tiny",
        "--tokenizer",
        s(&tok),
        "--classes",
        "1,2",
        "--image-size",
        "16",
        "--out",
        s(&z),
    ];
    args.extend(["--seed", "1"]);
    let o = par(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("16×16 px") && stderr(&o).contains("19 decode steps"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn eval_reports_fd_precision_recall_and_class_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let fashion = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
    // The real test images against the embedded reference (the same images): FD 0, precision
    // and recall 1, the classifier's test accuracy.
    let o = par(&[
        "eval",
        "--images",
        s(&fashion.join("t10k-images-idx3-ubyte.gz")),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["fd_fmnist"].as_f64().unwrap() < 1e-6, "{v}");
    assert_eq!((v["precision"].as_f64(), v["recall"].as_f64()), (Some(1.0), Some(1.0)), "{v}");
    assert!(v["class_accuracy"].as_f64().unwrap() > 0.9, "{v}");
    assert_eq!((v["images"].as_u64(), v["reference_images"].as_u64()), (Some(2000), Some(2000)));
    // A folder of PNGs named like `par sample`'s, and an .npz without classes.
    let folder = dir.path().join("pngs");
    std::fs::create_dir_all(&folder).unwrap();
    let idx = par_data::IdxImages::open(&fashion, par_data::IdxSplit::Test).unwrap();
    let mut picked = Vec::new();
    for i in 0..40 {
        let im = idx.image(i);
        picked.push(im.clone());
        std::fs::write(
            folder.join(format!("{i:06}_class{:04}_seed0.png", idx.labels[i])),
            im.to_png().unwrap(),
        )
        .unwrap();
    }
    let o = par(&["eval", "--images", s(&folder), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["class_accuracy"].as_f64().unwrap() > 0.8 && v["images"] == 40, "{v}");
    let npz = dir.path().join("x.npz");
    std::fs::write(&npz, par_data::npz::encode_images(&npz, &picked).unwrap()).unwrap();
    let o = par(&["eval", "--images", s(&npz), "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let w: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(w["class_accuracy"].is_null(), "an .npz carries no classes: {w}");
    assert!(
        (w["fd_fmnist"].as_f64().unwrap() - v["fd_fmnist"].as_f64().unwrap()).abs() < 1e-6,
        "the same images"
    );
    // Bad input: a missing path, exit 2.
    let o = par(&["eval", "--images", s(&dir.path().join("nothing.npz"))]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
