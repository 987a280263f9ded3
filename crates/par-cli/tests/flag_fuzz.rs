//! The flag fuzzer over every `par` subcommand (tests/support/flag_fuzz.rs): each value-taking
//! flag with 0, −1, 2⁶⁴−1, 1e308, NaN, inf, an empty string, 65,536 and 1,000,000, and `--out`
//! with each input spelled four ways, on tiny fixtures, under `ulimit -v` 4 GiB: never a panic
//! or an abort, one `error:` line naming the flag, bounded time, an input given as the output
//! refused and left as it was, and every finished job run again changing nothing.

#[path = "../../../tests/support/flag_fuzz.rs"]
mod flag_fuzz;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use burn::prelude::*;
use flag_fuzz::Target;
use par_model::{CONFIG_METADATA_KEY, Preset, StateDict};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn par(args: &[&str]) {
    let o = Command::new(env!("CARGO_BIN_EXE_par")).args(args).output().unwrap();
    assert!(o.status.success(), "par {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

fn write_npy(path: &Path, shape: &[usize], values: &[i64]) {
    std::fs::write(path, par_data::npy::encode(shape, values)).unwrap();
}

/// An IDX image file (`rank` 3, u8) and its label file.
fn write_idx(dir: &Path, split: &str, n: usize, side: usize) {
    let mut images = vec![0, 0, 8, 3];
    for d in [n, side, side] {
        images.extend((d as u32).to_be_bytes());
    }
    images.extend((0..n * side * side).map(|i| ((i * 37) % 251) as u8));
    std::fs::write(dir.join(format!("{split}-images-idx3-ubyte")), images).unwrap();
    let mut labels = vec![0, 0, 8, 1];
    labels.extend((n as u32).to_be_bytes());
    labels.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join(format!("{split}-labels-idx1-ubyte")), labels).unwrap();
}

/// The fixtures every base command line reads (`{fx}`).
fn fixtures(fx: &Path) {
    let t = repo().join("tests/fixtures");
    // The gpt-tiny n = 4 fixture with its vocabulary cut to the tiny tokenizer's 32 codes.
    let mut state = StateDict::read(&t.join("transformer/n4.pt")).unwrap();
    for key in ["tok_embeddings.weight", "output.weight"] {
        let w = state.tensors.get_mut(key).unwrap();
        let cols = w.shape[1];
        w.shape[0] = 32;
        w.values.truncate(32 * cols);
    }
    state.store_json(CONFIG_METADATA_KEY, &Preset::GptTiny.config(4, 4).with_vocab_size(32));
    state.write_safetensors(&fx.join("model.safetensors")).unwrap();
    std::fs::copy(t.join("tokenizer/tiny_vq.pt"), fx.join("tok.pt")).unwrap();
    std::fs::copy(t.join("tokenizer/config.json"), fx.join("tok.json")).unwrap();
    write_npy(&fx.join("classes.npy"), &[2], &[1, 3]);
    write_npy(&fx.join("codes.npy"), &[2, 16], &(0..32).collect::<Vec<i64>>());
    // An ImageFolder of two classes, and PNGs named as `par sample` names them.
    for (class, k) in [("a", 0u8), ("b", 1)] {
        std::fs::create_dir_all(fx.join("images").join(class)).unwrap();
        // 80 per class: enough samples for the entropy maps' full conditioning (16 positions
        // of 8-dimensional code vectors).
        for i in 0..80u32 {
            let im = image::RgbImage::from_fn(8, 8, |x, y| {
                let v = (x * 31 + y * 17 + i * 13 + u32::from(k) * 7) * (i % 7 + 1);
                image::Rgb([(v % 256) as u8, ((v / 3) % 256) as u8, ((x * y + i) % 256) as u8])
            });
            im.save(fx.join("images").join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    std::fs::create_dir_all(fx.join("pngs")).unwrap();
    for i in 0..5u32 {
        let im = image::GrayImage::from_fn(32, 32, |x, y| {
            image::Luma([((x * 7 + y * 3 + i * 50) % 256) as u8])
        });
        im.save(fx.join("pngs").join(format!("{i:06}_class{:04}_seed0.png", i % 2))).unwrap();
    }
    std::fs::create_dir_all(fx.join("idx")).unwrap();
    write_idx(&fx.join("idx"), "train", 8, 12);
    write_idx(&fx.join("idx"), "t10k", 4, 12);
    // A 2-level VQ config for tokenizer training (8 px → 4×4 codes).
    std::fs::write(
        fx.join("vq.json"),
        r#"{"image_channels": 1, "base_channels": 8, "channel_mult": [1, 2], "num_res_blocks": 1, "z_channels": 8, "codebook_size": 16, "codebook_dim": 4, "norm_groups": 4}"#,
    )
    .unwrap();
    // Codes of the image folder, for `par entropy`.
    let (fxs, codes) = (fx.to_str().unwrap(), fx.join("codes"));
    par(&[
        "tokenize",
        "--images",
        &format!("{fxs}/images"),
        "--tokenizer",
        &format!("{fxs}/tok.pt"),
        "--tokenizer-config",
        &format!("{fxs}/tok.json"),
        "--image-size",
        "8",
        "--out",
        codes.to_str().unwrap(),
    ]);
    // A tiny video tokenizer and two 3-second videos (ffmpeg, installed by scripts/test.sh).
    let video = par_tokenizer::video::VideoTokenizerPreset::Magvit2FsqCpu
        .config()
        .with_base_channels(4)
        .with_norm_groups(2);
    video.init(&Device::flex()).unwrap().save(&fx.join("vtok.safetensors")).unwrap();
    for (class, source) in [("Biking", "testsrc"), ("Diving", "testsrc2")] {
        let dir = fx.join("videos").join(class);
        std::fs::create_dir_all(&dir).unwrap();
        let o = Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                &format!("{source}=size=40x32:rate=25"),
                "-t",
                "3",
            ])
            .arg(dir.join(format!("v_{class}_g01_c01.avi")))
            .output()
            .expect("ffmpeg must be installed for the video commands (apt-get install ffmpeg)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// Every subcommand's base command line on the fixtures.
fn base(sub: &str) -> Vec<&'static str> {
    let tok = ["--tokenizer", "{fx}/tok.pt", "--tokenizer-config", "{fx}/tok.json"];
    let model = ["--checkpoint", "{fx}/model.safetensors"];
    let v: Vec<&str> = match sub {
        "order" => vec!["--grid", "4", "--parallel", "4"],
        "devices" => vec![],
        "model-info" => vec!["--preset", "gpt-tiny", "--grid", "4"],
        "tokenizer-info" => vec!["--preset", "vq-tiny-16"],
        "score" => [
            &model[..],
            &[
                "--classes",
                "{fx}/classes.npy",
                "--tokens",
                "{fx}/codes.npy",
                "--out",
                "{out}/l.npy",
            ],
        ]
        .concat(),
        "generate" => [&model[..], &["--classes", "1,2", "--out", "{out}/c.npy"]].concat(),
        "sample" => [&model[..], &tok[..], &["--per-class", "1", "--out", "{out}/s"]].concat(),
        "decode" => {
            [&["--codes", "{fx}/codes.npy"][..], &tok[..], &["--out", "{out}/g.png"]].concat()
        }
        "tokenizer train" => vec![
            "--idx",
            "{fx}/idx",
            "--config",
            "{fx}/vq.json",
            "--image-size",
            "8",
            "--steps",
            "2",
            "--batch-size",
            "2",
            "--held-out",
            "2",
            "--out",
            "{out}/t",
        ],
        "tokenize" => {
            [&["--images", "{fx}/images", "--image-size", "8"][..], &tok[..], &["--out", "{out}/c"]]
                .concat()
        }
        "tokenize-clips" => vec![
            "--videos",
            "{fx}/videos",
            "--tokenizer",
            "{fx}/vtok.safetensors",
            "--size",
            "32",
            "--out",
            "{out}/c",
        ],
        "convert" => [&model[..], &["--out", "{out}/m.safetensors"]].concat(),
        "entropy" => {
            [&["--codes", "{fx}/codes", "--jitter", "0.001"][..], &tok[..], &["--out", "{out}/e"]]
                .concat()
        }
        "eval" => vec!["--images", "{fx}/pngs", "--reference", "{fx}/pngs"],
        other => panic!("the fuzzer has no base command line for `par {other}`: add one"),
    };
    v
}

#[test]
fn every_flag_of_every_par_command_survives_extreme_values() {
    let dir = tempfile::tempdir().unwrap();
    let fx = dir.path().join("fx");
    std::fs::create_dir_all(&fx).unwrap();
    fixtures(&fx);
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_par"));
    let mut targets = Vec::new();
    let mut words: Vec<Vec<String>> = Vec::new();
    for sub in flag_fuzz::subcommands(&exe, &[]) {
        let nested = flag_fuzz::subcommands(&exe, std::slice::from_ref(&sub));
        if nested.is_empty() {
            words.push(vec![sub]);
        } else {
            words.extend(nested.into_iter().map(|n| vec![sub.clone(), n]));
        }
    }
    assert!(words.len() >= 14, "{words:?}");
    for sub in words {
        let name = sub.join(" ");
        targets.push(Target {
            name: format!("par {name}"),
            exe: exe.clone(),
            base: base(&name).into_iter().map(String::from).collect(),
            sub,
            skip: vec![],
            mid_values: true,
            rerun: match name.as_str() {
                // Jobs that resume by running the same command again…
                "sample" | "tokenize" | "tokenize-clips" => Some(vec![]),
                // …or with --resume.
                "tokenizer train" => Some(vec!["--resume".into()]),
                _ => None,
            },
        });
    }
    // The entropy self-check is its own path through `par entropy`.
    targets.push(Target {
        name: "par entropy --synthetic-gaussian".into(),
        exe: exe.clone(),
        sub: vec!["entropy".into()],
        base: ["--synthetic-gaussian", "--dim", "4", "--samples", "200"].map(String::from).to_vec(),
        skip: vec![],
        mid_values: true,
        rerun: None,
    });
    let scratch = dir.path().join("runs");
    flag_fuzz::check_bases(&targets, &fx, &scratch, 4 << 20);
    let cases = flag_fuzz::cases(&targets, &fx, &scratch);
    assert!(cases.len() > 500, "{} cases", cases.len());
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
