//! The data pipeline against independent values: the ADM centre crop and ten-crop equal Pillow's
//! output bit for bit (fixtures from `tests/golden/gen_crop_fixtures.py`); the bicubic resize
//! before FID equals PyTorch's (`tests/golden/gen_resize_fixtures.py`); a pre-tokenization
//! job stopped part-way and resumed writes exactly the files of an uninterrupted job; a tokenizer
//! training run stopped and resumed ends with exactly the weights and losses of an uninterrupted
//! run.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use std::sync::Arc;

use par_data::{
    Augmentation, CodeStore, ImageFolder, ImageSet, PixelImage, adm_center_crop, ten_crop,
};
use par_tokenize::{OutputFormat, Source, TokenizeSettings, tokenize};
use par_tokenizer::VqTokenizerConfig;
use par_train::TrainError;
use par_train::vq::{VqTrainConfig, train_tokenizer};
use par_train::{Silent, StopAt};

fn fixture(name: &str) -> (Vec<usize>, Vec<u8>) {
    fixture_in("crop", name)
}

fn fixture_in(dir: &str, name: &str) -> (Vec<usize>, Vec<u8>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(dir).join(name);
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<u8>().unwrap())
}

fn image(name: &str) -> PixelImage {
    let (shape, data) = fixture(name);
    let channels = if shape.len() == 3 { shape[2] } else { 1 };
    PixelImage { width: shape[1], height: shape[0], channels, data }
}

#[test]
fn adm_centre_crop_equals_pillow() {
    for (name, size) in
        [("rgb_90x70", 32), ("gray_20x24", 32), ("rgb_300x200", 40), ("gray_33x33", 32)]
    {
        let got = adm_center_crop(&image(&format!("{name}.input.npy")), size);
        let want = image(&format!("{name}.crop{size}.npy"));
        assert_eq!(
            (got.width, got.height, got.channels),
            (want.width, want.height, want.channels),
            "{name}"
        );
        let diff = got.data.iter().zip(&want.data).filter(|(a, b)| a != b).count();
        assert_eq!(diff, 0, "{name}: {diff} of {} bytes differ from Pillow", want.data.len());
    }
}

#[test]
fn ten_crop_equals_torchvision_order() {
    let source = image("rgb_300x200.crop40.npy");
    let (shape, data) = fixture("rgb_300x200.tencrop32.npy");
    assert_eq!(shape, [10, 32, 32, 3]);
    let crops = ten_crop(&source, 32);
    for (i, crop) in crops.iter().enumerate() {
        assert_eq!(crop.data, data[i * 3072..(i + 1) * 3072], "crop {i}");
    }
    // The full path: crop range 1.25 of 32 = 40.
    let views = par_data::augment(
        &image("rgb_300x200.input.npy"),
        32,
        Augmentation::TenCrop { crop_range: 1.25 },
    );
    assert_eq!(views, crops);
}

fn float_fixture(name: &str) -> (Vec<usize>, Vec<f32>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/resize").join(name);
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().iter().map(|&d| d as usize).collect();
    (shape, npy.into_vec::<f32>().unwrap())
}

/// The resize before FID equals PyTorch's `F.interpolate(mode="bicubic", align_corners=False)`
/// (fixtures from `tests/golden/gen_resize_fixtures.py`): down-scaling by 2/3 as 384 → 256, odd
/// sizes whose taps fall off the border, and up-scaling. The uint8 conversion after it equals
/// torch's bit for bit.
#[test]
fn bicubic_resize_equals_pytorch() {
    for (name, out_h, out_w) in
        [("rgb_12x12_to_8x8", 8, 8), ("gray_9x7_to_4x3", 4, 3), ("rgb_6x5_to_9x11", 9, 11)]
    {
        let (shape, input) = float_fixture(&format!("{name}.input.npy"));
        let (c, h, w) = (shape[0], shape[1], shape[2]);
        let (want_shape, want) = float_fixture(&format!("{name}.output.npy"));
        assert_eq!(want_shape, [c, out_h, out_w], "{name}");
        let got = par_data::interpolate_bicubic(&input, c, h, w, out_h, out_w);
        assert_eq!(got.len(), want.len(), "{name}");
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(got.iter().all(|v| v.is_finite()), "{name}: non-finite output");
        // float32 rounding of 16 products; a wrong kernel constant or tap moves values by ≥ 1e-2.
        assert!(worst < 1e-5, "{name}: max |Δ| {worst} against torch");
        let (u8_shape, want_u8) = fixture_in("resize", &format!("{name}.uint8.npy"));
        assert_eq!(u8_shape, [out_h, out_w, c], "{name}");
        let image = PixelImage::from_chw_signed(&got, c, out_h, out_w);
        assert_eq!(image.data, want_u8, "{name}: uint8 conversion differs from torch");
    }
}

/// Tests that draw initial weights hold this: Burn's generator is per backend, shared by the
/// test threads, and the training test needs seeded initial weights.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tiny_tokenizer() -> VqTokenizerConfig {
    VqTokenizerConfig::new()
        .with_image_channels(3)
        .with_base_channels(8)
        .with_channel_mult(vec![1, 2])
        .with_num_res_blocks(1)
        .with_z_channels(8)
        .with_codebook_size(64)
        .with_codebook_dim(4)
        .with_norm_groups(4)
}

/// A small ImageFolder: 3 classes, images of assorted sizes and modes.
fn folder(dir: &Path) -> PathBuf {
    let root = dir.join("images");
    let mut k = 0u32;
    for (class, count) in [("cat", 3), ("dog", 4), ("owl", 2)] {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for i in 0..count {
            k += 1;
            let (w, h) = (14 + 7 * (k % 4), 18 + 5 * (k % 3));
            let im = image::RgbImage::from_fn(w, h, |x, y| {
                image::Rgb([(x * 9 + k) as u8, (y * 13) as u8, (k * 40) as u8])
            });
            im.save(root.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
    root
}

#[test]
fn tokenize_resumed_equals_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    let root = folder(dir.path());
    let device = Device::flex();
    let model = {
        let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
        let model = tiny_tokenizer().init(&device).unwrap();
        model.save(&dir.path().join("warm.safetensors")).unwrap(); // materialise the weights
        model
    };
    let ckpt = dir.path().join("tok.safetensors");
    model.save(&ckpt).unwrap();
    let settings = TokenizeSettings {
        image_size: 16,
        augmentation: Augmentation::TenCrop { crop_range: 1.1 },
        format: OutputFormat::Both,
        name: "toy16".into(),
        chunk_size: 2,
        source: root.display().to_string(),
        source_images: 9,
        tokenizer: ckpt.clone(),
        tokenizer_fingerprint: 0, // filled in by the job
        inputs: Default::default(),
        source_listing: String::new(),
    };
    let source = Source::Folder(ImageFolder::scan(&root, false).unwrap());
    let a = dir.path().join("a");
    let full =
        tokenize(&source, &model, &settings, &a, 3, true, &device, &Silent).unwrap().into_report();
    assert_eq!((full.num_images, full.views, full.grid), (9, 10, [8, 8]));

    let b = dir.path().join("b");
    let err = tokenize(&source, &model, &settings, &b, 3, true, &device, &StopAt(6)) // 3 chunks of 2 images
        .unwrap_err();
    assert!(matches!(err, TrainError::Interrupted { step: 3 }), "{err}");
    assert!(!b.join("codes.parc").exists(), "no final file before the job ends");
    // Another job into the same folder is refused, naming the setting and how to start afresh.
    let other = TokenizeSettings { image_size: 32, ..settings.clone() };
    let err =
        tokenize(&source, &model, &other, &b, 3, true, &device, &Silent).unwrap_err().to_string();
    assert!(err.contains("image_size = 16") && err.contains("delete"), "{err}");
    // An image of a finished chunk edited since, at the same size: the resume names it instead
    // of mixing codes of two versions of the set; restored, the job resumes.
    let edited = &source_samples(&root)[1].0;
    let original = std::fs::read(edited).unwrap();
    let mut changed = original.clone();
    let at = changed.len() - 20;
    changed[at] ^= 1;
    std::fs::write(edited, &changed).unwrap();
    let err = tokenize(&source, &model, &settings, &b, 3, true, &device, &Silent).unwrap_err();
    let name = edited.strip_prefix(&root).unwrap().to_str().unwrap();
    assert_eq!(name, "cat/1.png");
    assert!(matches!(err, TrainError::Config(_)), "{err}");
    assert!(err.to_string().contains(name) && err.to_string().contains("changed since"), "{err}");
    std::fs::write(edited, &original).unwrap();
    // A different batch size does not change the codes.
    tokenize(&source, &model, &settings, &b, 1, true, &device, &Silent).unwrap();

    assert_eq!(
        std::fs::read(a.join("codes.parc")).unwrap(),
        std::fs::read(b.join("codes.parc")).unwrap()
    );
    for i in 0..9 {
        for sub in ["toy16_codes", "toy16_labels"] {
            let f = format!("{sub}/{i}.npy");
            assert_eq!(
                std::fs::read(a.join(&f)).unwrap(),
                std::fs::read(b.join(&f)).unwrap(),
                "{f}"
            );
        }
    }
    assert!(!b.join(".tokenize").exists());

    // Both formats read back the same samples; labels follow the sorted class folders.
    let compact = CodeStore::open(&a).unwrap();
    let llamagen = CodeStore::open(&a.join("toy16_codes")).unwrap();
    assert_eq!(compact.info().classes, ["cat", "dog", "owl"]);
    assert_eq!(llamagen.info().codebook_size, Some(64));
    for i in 0..9 {
        assert_eq!(compact.sample(i).unwrap(), llamagen.sample(i).unwrap());
    }
    assert_eq!(compact.load_all(|_| {}).unwrap().1, [0, 0, 0, 1, 1, 1, 1, 2, 2]);
    // The codes are the tokenizer's codes of the ten views.
    let (path, _) = &source_samples(&root)[4];
    let views = par_data::augment(
        &par_data::load_image(path, 3).unwrap(),
        16,
        Augmentation::TenCrop { crop_range: 1.1 },
    );
    let data: Vec<f32> = views.iter().flat_map(|v| v.to_chw_signed()).collect();
    let x = Tensor::<4>::from_data(burn::tensor::TensorData::new(data, [10, 3, 16, 16]), &device);
    let codes: Vec<u32> = model
        .encode(x)
        .into_data()
        .try_into_vec_as::<i64>()
        .unwrap()
        .into_iter()
        .map(|c| c as u32)
        .collect();
    assert_eq!(compact.sample(4).unwrap().0, codes);
}

fn source_samples(root: &Path) -> Vec<(PathBuf, u32)> {
    ImageFolder::scan(root, false).unwrap().samples
}

fn toy_images(n: usize, seed: u32) -> ImageSet {
    let images: Vec<PixelImage> = (0..n as u32)
        .map(|k| {
            let data =
                (0..16 * 16 * 3).map(|i| ((i as u32 * 7 + k * 31 + seed) % 251) as u8).collect();
            PixelImage { width: 16, height: 16, channels: 3, data }
        })
        .collect();
    ImageSet::from_images(&images, (0..n as u32).map(|k| k % 3).collect())
}

#[test]
fn tokenizer_training_resumed_equals_uninterrupted() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let (train, held) = (toy_images(10, 0), toy_images(4, 5));
    let cfg = VqTrainConfig::new()
        .with_steps(6)
        .with_batch_size(4)
        .with_lr(1e-3)
        .with_disc_start(Some(3))
        .with_disc_channels(4)
        .with_disc_layers(2)
        .with_checkpoint_every(2)
        .with_log_every(4)
        .with_seed(3);
    let tok = tiny_tokenizer().with_entropy_loss_ratio(0.1);
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let a = dir.path().join("a");
    let full = train_tokenizer(&a, &tok, &cfg, &train, &held, &device, false, Arc::new(Silent))
        .unwrap()
        .report();
    assert_eq!(full.history.len(), 2, "windows 1–4 and 5–6");
    assert!(
        full.history[1].d_loss > 0.0 && full.history[1].g_adv != 0.0,
        "discriminator from step 3"
    );
    assert!(full.history.iter().all(|h| h.loss.is_finite() && h.entropy != 0.0));

    let b = dir.path().join("b");
    let err = train_tokenizer(&b, &tok, &cfg, &train, &held, &device, false, Arc::new(StopAt(3)))
        .unwrap_err();
    assert!(matches!(err, TrainError::Interrupted { step: 3 }), "{err}");
    let again = train_tokenizer(&b, &tok, &cfg, &train, &held, &device, false, Arc::new(Silent))
        .unwrap_err();
    assert!(matches!(again, TrainError::Exists { step: 3, .. }), "{again}");
    let resumed = train_tokenizer(&b, &tok, &cfg, &train, &held, &device, true, Arc::new(Silent))
        .unwrap()
        .report();
    assert_eq!(resumed.history, full.history, "per-step losses");
    assert_eq!(resumed.held_out, full.held_out);
    let wa = par_store::StateDict::read(&a.join("tokenizer.safetensors")).unwrap();
    let wb = par_store::StateDict::read(&b.join("tokenizer.safetensors")).unwrap();
    assert_eq!(wa.tensors, wb.tensors, "final weights");
    // The discriminator too (it lives in the checkpoint's model record only).
    let disc = |run: &Path| -> Vec<f32> {
        use burn::module::{Module, ModuleVisitor, Param};
        struct Flat(Vec<f32>);
        impl ModuleVisitor for Flat {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                self.0.extend(p.val().into_data().convert::<f32>().iter::<f32>());
            }
        }
        let mut template = par_train::vq::VqStep::new(tok.init(&device).unwrap());
        template.disc =
            Some(par_train::vq::PatchDiscriminator::new(tok.image_channels, 4, 2, &device));
        let record = burn::store::ModuleRecord::load(run.join("checkpoint/model.bpk")).unwrap();
        let step = template.load_record(record);
        let mut flat = Flat(Vec::new());
        step.disc.expect("a discriminator").visit(&mut flat);
        flat.0
    };
    let (da, db) = (disc(&a), disc(&b));
    assert!(!da.is_empty() && da == db, "final discriminator weights");
    // The user-facing checkpoint is self-describing.
    let loaded =
        par_tokenizer::VqTokenizer::load(&a.join("tokenizer.safetensors"), None, &device).unwrap();
    assert_eq!(loaded.config(), &tok);
    assert!(a.join("reconstructions.png").is_file() && a.join("report.json").is_file());
}

// ---- video (docs/video.md) ------------------------------------------------------------------

fn tiny_video_tokenizer() -> par_tokenizer::video::VideoTokenizerConfig {
    par_tokenizer::video::VideoTokenizerPreset::Magvit2FsqCpu
        .config()
        .with_base_channels(4)
        .with_norm_groups(2)
}

/// Runs ffmpeg (CI installs it: scripts/test.sh); the test fails loudly without it.
fn ffmpeg(args: &[&str]) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed for the video tests (apt-get install ffmpeg)");
    assert!(out.status.success(), "ffmpeg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn clip_tokenize_skips_a_corrupt_video_counts_it_and_resumes() {
    use par_data::{ClipSet, ClipSpec, VideoFolder};
    use par_tokenize::{ClipSource, ClipTokenizeSettings, tokenize_clips};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ucf");
    for class in ["Biking", "Diving"] {
        std::fs::create_dir_all(root.join(class)).unwrap();
    }
    // Two readable videos (3 s at 25 fps: 24 frames at 8 fps) and one file of random bytes.
    for (class, source) in [("Biking", "testsrc"), ("Diving", "testsrc2")] {
        let video = root.join(class).join(format!("v_{class}_g01_c01.avi"));
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            &format!("{source}=size=48x40:rate=25"),
            "-t",
            "3",
            video.to_str().unwrap(),
        ]);
    }
    let corrupt = root.join("Diving").join("v_Diving_g00_c01.avi");
    std::fs::write(
        &corrupt,
        (0..5000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect::<Vec<_>>(),
    )
    .unwrap();
    let device = Device::flex();
    let model = {
        let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
        let m = tiny_video_tokenizer().init(&device).unwrap();
        m.save(&dir.path().join("warm.safetensors")).unwrap();
        m
    };
    let spec = ClipSpec::new(17, 8.0, 32).unwrap();
    let set = || ClipSet::new(VideoFolder::scan(&root).unwrap(), spec, 7).unwrap();
    let settings = ClipTokenizeSettings {
        frames: 17,
        fps: 8.0,
        size: 32,
        seed: 7,
        chunk_size: 1,
        source: root.display().to_string(),
        source_clips: 3,
        tokenizer: dir.path().join("tok.safetensors"),
        tokenizer_fingerprint: 0,
        inputs: Default::default(),
        source_listing: String::new(),
    };
    let a = dir.path().join("a");
    let report = tokenize_clips(
        &ClipSource::Videos(set()),
        &model,
        &settings,
        &a,
        2,
        false,
        &device,
        &Silent,
    )
    .unwrap()
    .into_report();
    assert_eq!((report.num_images, report.frames, report.grid, report.views), (2, 5, [4, 4], 1));
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    assert!(report.skipped[0].path.ends_with("v_Diving_g00_c01.avi"), "{:?}", report.skipped);
    let store = CodeStore::open(&a).unwrap();
    assert_eq!((store.info().frames, store.info().tokens()), (5, 80));
    assert_eq!(store.load_all(|_| {}).unwrap().1, [0, 1]);
    // The stored codes are the tokenizer's codes of the decoded clip.
    let clip = set().decode(0, 0).unwrap().clip;
    let x = Tensor::<5>::from_data(
        burn::tensor::TensorData::new(clip.to_cthw_signed(), [1, 3, 17, 32, 32]),
        &device,
    );
    let codes: Vec<u32> = model
        .encode(x)
        .unwrap()
        .into_data()
        .try_into_vec_as::<i64>()
        .unwrap()
        .into_iter()
        .map(|c| c as u32)
        .collect();
    assert_eq!(store.sample(0).unwrap().0, codes);
    // Strict: the corrupt video stops the job, naming it, and leaves nothing behind.
    let strict = dir.path().join("strict");
    let err = tokenize_clips(
        &ClipSource::Videos(set()),
        &model,
        &settings,
        &strict,
        2,
        true,
        &device,
        &Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("v_Diving_g00_c01.avi"), "{err}");
    // Chunks of one video, in sorted order: Biking g01, Diving g00 (corrupt), Diving g01. Stopped
    // before the corrupt chunk, or after it (the skip is then read back from its finished
    // chunk), and resumed: the same store as the uninterrupted job, the skip reported once.
    for stop in [1, 2] {
        let b = dir.path().join(format!("b{stop}"));
        let job = |monitor: &dyn par_train::Monitor, batch| {
            tokenize_clips(
                &ClipSource::Videos(set()),
                &model,
                &settings,
                &b,
                batch,
                false,
                &device,
                monitor,
            )
        };
        let resumed = match job(&StopAt(stop), 2) {
            Err(TrainError::Interrupted { step }) => {
                assert_eq!(step, stop);
                job(&Silent, 1).unwrap().into_report()
            }
            other => panic!("stop {stop}: {other:?}"),
        };
        assert_eq!(resumed.skipped, report.skipped, "stop {stop}");
        assert_eq!(
            std::fs::read(a.join("codes.parc")).unwrap(),
            std::fs::read(b.join("codes.parc")).unwrap()
        );
    }
    // Settings that do not describe the clip set are refused, naming the field.
    let other = ClipTokenizeSettings { seed: 8, ..settings.clone() };
    let err = tokenize_clips(
        &ClipSource::Videos(set()),
        &model,
        &other,
        &dir.path().join("c"),
        2,
        false,
        &device,
        &Silent,
    )
    .unwrap_err();
    assert!(matches!(err, TrainError::Setting { field: "seed", .. }), "{err}");
}

#[test]
fn video_tokenizer_training_lowers_the_loss_and_resumes_exactly() {
    use par_train::video::{VideoTrainConfig, train_video_tokenizer};
    // Moving squares: 17 frames of 32², class = the square's brightness.
    let clips: Vec<par_data::VideoClip> = (0..6)
        .map(|i| {
            let mut data = vec![0u8; 17 * 32 * 32 * 3];
            for t in 0..17 {
                let (x0, y0) = ((i * 3 + t) % 24, (i * 5 + t / 2) % 24);
                for y in y0..y0 + 8 {
                    for x in x0..x0 + 8 {
                        let p = ((t * 32 + y) * 32 + x) * 3;
                        data[p..p + 3].fill(120 + 20 * (i % 3) as u8);
                    }
                }
            }
            par_data::VideoClip { class: i % 3, frames: 17, height: 32, width: 32, data }
        })
        .collect();
    let cfg = VideoTrainConfig::new()
        .with_steps(6)
        .with_batch_size(2)
        .with_lr(2e-3)
        .with_checkpoint_every(2)
        .with_log_every(1)
        .with_seed(3);
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    let run = |path: &Path, stop: Option<usize>, resume: bool| {
        let monitor: Arc<dyn par_train::Monitor> = match stop {
            Some(s) => Arc::new(StopAt(s)),
            None => Arc::new(Silent),
        };
        train_video_tokenizer(
            path,
            &tiny_video_tokenizer(),
            &cfg,
            &clips,
            &clips[..2],
            &device,
            resume,
            monitor,
        )
    };
    let a = run(&dir.path().join("a"), None, false).unwrap().report();
    assert_eq!(a.history.len(), 6);
    let (first, last) = (a.history[0].loss, a.history[5].loss);
    assert!(last < 0.7 * first, "loss {first} → {last}");
    assert_eq!(a.held_out.per_frame_psnr_db.len(), 17);
    // Stopped at step 3 (mid-period) and resumed: the same losses and tokenizer, bit for bit.
    let b_dir = dir.path().join("b");
    let err = run(&b_dir, Some(3), false).unwrap_err();
    assert!(matches!(err, TrainError::Interrupted { .. }), "{err}");
    let b = run(&b_dir, None, true).unwrap().report();
    assert_eq!(a.history, b.history);
    let weights = |p: &Path| std::fs::read(p.join("tokenizer.safetensors")).unwrap();
    assert_eq!(weights(&dir.path().join("a")), weights(&b_dir));
    // A finished run is left untouched; another setting is refused, naming it.
    assert!(matches!(run(&b_dir, None, true).unwrap(), par_train::Trained::AlreadyFinished(_)));
    let other = VideoTrainConfig { lr: 1e-3, ..cfg.clone() };
    let err = train_video_tokenizer(
        &b_dir,
        &tiny_video_tokenizer(),
        &other.with_steps(8),
        &clips,
        &clips[..2],
        &device,
        true,
        Arc::new(Silent),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("lr"), "{err}");
}
