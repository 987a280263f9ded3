//! `par entropy`: the conditional-entropy analysis of visual tokens (supplement D, Algorithm 1,
//! Figs. 11–12; docs/entropy.md), and its Gaussian self-check.

use std::path::PathBuf;

use par_app::{InputResult, OutputDir, invalid};
use par_data::CodeStore;
use par_device::DeviceArgs;
use par_entropy::maps::{IncreaseMap, default_references, increase_map, reference_map};
use par_entropy::mlp::MlpOptions;
use par_entropy::synthetic::gaussian_self_check;
use par_entropy::{EntropyOptions, Moments};
use par_order::{Arrangement, ParSchedule, RegionGrid, ScheduleVariant};

use super::decode::TokenizerArgs;
use super::order::Format;

/// How `f_θ` is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Estimator {
    /// Ridge-regularised linear least squares (in-sample residuals); every map.
    Linear,
    /// A small MLP trained with Burn (residuals on held-out samples); `--target` queries.
    Mlp,
}

/// Which views of each image are samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Views {
    /// View 0 of every image (the centre crop).
    First,
    /// Every view (ten-crop / mirror) as its own sample.
    All,
}

/// Arguments of `par entropy`.
#[derive(Debug, clap::Args)]
pub struct EntropyArgs {
    /// Pre-tokenized codes (a `par tokenize` folder or a LlamaGen dump).
    #[arg(long, required_unless_present = "synthetic_gaussian")]
    codes: Option<PathBuf>,
    /// The tokenizer the codes come from (its l2-normalised codebook gives each code's vector):
    /// ours (config inside) or `vq_ds16_c2i.pt` with --tokenizer-preset / --tokenizer-config.
    #[arg(long, required_unless_present = "synthetic_gaussian")]
    tokenizer: Option<PathBuf>,
    /// Tokenizer size, for checkpoints that store no config.
    #[arg(long, value_parser = par_app::choice::<par_tokenizer::TokenizerPreset>(&par_tokenizer::TokenizerPreset::NAMES), conflicts_with = "tokenizer_config")]
    tokenizer_preset: Option<par_tokenizer::TokenizerPreset>,
    /// Tokenizer config as JSON, instead of a preset.
    #[arg(long)]
    tokenizer_config: Option<PathBuf>,
    /// Samples: view 0 of every image, or every view.
    #[arg(long, value_enum, default_value = "first")]
    views: Views,
    /// Use only the first N images.
    #[arg(long)]
    limit: Option<usize>,
    /// Fig. 11 reference positions as raster indices [default: corner, top-edge middle, centre].
    #[arg(long, value_delimiter = ',', conflicts_with = "all_references")]
    references: Option<Vec<usize>>,
    /// Fig. 11 for every reference position (JSON only; PNGs for the default three).
    #[arg(long)]
    all_references: bool,
    /// Regions of Fig. 12's PAR order, and the run length of its raster-multi comparison.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// One query instead of the maps: the target position (raster index).
    #[arg(long)]
    target: Option<usize>,
    /// The conditioning positions of `--target` (raster indices; none = its marginal entropy).
    #[arg(long, value_delimiter = ',', requires = "target")]
    given: Vec<usize>,
    /// How `f_θ` is fitted (`mlp` only for `--target` queries).
    #[arg(long, value_enum, default_value = "linear")]
    estimator: Estimator,
    /// Relative ridge of the linear fit (λ = ridge · mean variance of the regressors).
    #[arg(long, default_value_t = 1e-4)]
    ridge: f64,
    /// Added to the residual covariance's diagonal (0: a singular covariance is an error).
    #[arg(long, default_value_t = 0.0)]
    jitter: f64,
    /// Self-check: Gaussian data of a known random covariance instead of codes.
    #[arg(long)]
    synthetic_gaussian: bool,
    /// Dimension of `--synthetic-gaussian`.
    #[arg(long, default_value_t = 8)]
    dim: usize,
    /// Samples of `--synthetic-gaussian`.
    #[arg(long, default_value_t = 10_000)]
    samples: usize,
    /// Seed of `--synthetic-gaussian` and of the MLP.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder of the maps: entropy.json and heat-map PNGs.
    #[arg(long, default_value = "runs/entropy")]
    out: PathBuf,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `par entropy`.
pub fn run(args: &EntropyArgs) -> anyhow::Result<()> {
    let options = EntropyOptions { ridge: args.ridge, jitter: args.jitter };
    par_app::check_float("ridge", args.ridge, Some(0.0), None)?;
    par_app::check_float("jitter", args.jitter, Some(0.0), None)?;
    if args.synthetic_gaussian {
        par_app::check_positive("dim", args.dim)?;
        par_app::check_positive("samples", args.samples)?;
        // The covariance, its factor and the moments' copy (d² f64 each), and the draws (f32).
        let d = args.dim as f64;
        par_app::limits::check_memory(
            "--dim/--samples",
            &format!("the self-check in {} dimensions with {} samples", args.dim, args.samples),
            4.0 * 8.0 * d * d + 4.0 * d * args.samples as f64,
        )?;
        let r = gaussian_self_check(args.dim, args.samples, args.seed, &options)?;
        match args.format {
            Format::Json => println!("{}", serde_json::to_string(&r)?),
            Format::Text => println!(
                "d = {}, {} samples, seed {}: estimated {:.5} nats, analytic {:.5} nats ({:.3} % off)",
                r.dim,
                r.samples,
                r.seed,
                r.estimated,
                r.analytic,
                100.0 * r.relative_error
            ),
        }
        return Ok(());
    }
    if let Some(n) = args.limit {
        par_app::check_positive("limit", n)?;
    }
    par_app::check_positive("parallel", args.parallel)?;
    let (Some(codes), Some(tokenizer)) = (&args.codes, &args.tokenizer) else {
        invalid!("--codes and --tokenizer are required (or --synthetic-gaussian)");
    };
    let tokenizer = TokenizerArgs {
        tokenizer: tokenizer.clone(),
        tokenizer_preset: args.tokenizer_preset,
        tokenizer_config: args.tokenizer_config.clone(),
    };
    par_app::check_inputs_exist(&[
        ("--codes", Some(codes.as_path())),
        ("--tokenizer", Some(tokenizer.tokenizer.as_path())),
        ("--tokenizer-config", args.tokenizer_config.as_deref()),
    ])?;
    let maps = args.target.is_none();
    if maps && args.estimator == Estimator::Mlp {
        invalid!(
            "--estimator mlp fits one MLP per entry, too slow for a map: use it with --target (and --given)"
        );
    }
    let out = maps
        .then(|| {
            OutputDir::check(
                &args.out,
                "--out",
                &[
                    ("--codes", Some(codes.as_path())),
                    ("--tokenizer", Some(tokenizer.tokenizer.as_path())),
                    ("--tokenizer-config", args.tokenizer_config.as_deref()),
                ],
            )
        })
        .transpose()?;
    let device = args.device.device()?;

    // Samples: the l2-normalised codebook vector of every position.
    let store = CodeStore::open(codes).input()?;
    let info = store.info().clone();
    if info.frames > 1 {
        par_app::invalid!(
            "{}: codes of {} latent frames (video); the entropy analysis handles image code grids only",
            codes.display(),
            info.frames
        );
    }
    let [h, w] = info.grid;
    let tok = tokenizer.load(&device)?;
    let codebook = tok
        .quantize
        .normalized_codebook()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading the codebook: {e:?}"))?;
    let (k, d) = (tok.config().codebook_size, tok.config().codebook_dim);
    if let Some(c) = info.codebook_size.filter(|&c| c != k) {
        invalid!("{}: codes of a {c}-entry codebook, the tokenizer has {k}", codes.display());
    }
    let images = args.limit.unwrap_or(info.num_images).min(info.num_images);
    let (tokens, views) = (h * w, info.views);
    if let Some(t) = args.target.filter(|&t| t >= tokens) {
        invalid!("--target {t} is outside the {h}×{w} code grid (raster positions 0..{tokens})");
    }
    if let Some(g) = args.given.iter().find(|&&g| g >= tokens) {
        invalid!("--given {g} is outside the {h}×{w} code grid (raster positions 0..{tokens})");
    }
    let used_views = if args.views == Views::All { views } else { 1 };
    // The sample vectors (f32) and the moments of all positions ((tokens · d)² f64, twice).
    let width = (tokens * d) as f64;
    par_app::limits::check_memory(
        "--codes/--limit",
        &format!(
            "the moments of {images} images × {used_views} view(s) of {h}×{w} codes (d = {d})"
        ),
        4.0 * (images * used_views) as f64 * width + 2.0 * 8.0 * width * width,
    )?;
    let (all, _) = store.load_all(|_| {}).input()?;
    let mut data = Vec::with_capacity(images * used_views * tokens * d);
    for img in 0..images {
        for v in 0..used_views {
            for &code in &all[(img * views + v) * tokens..][..tokens] {
                let code = code as usize;
                if code >= k {
                    invalid!("{}: code {code} outside the {k}-entry codebook", codes.display());
                }
                data.extend_from_slice(&codebook[code * d..(code + 1) * d]);
            }
        }
    }
    let t0 = std::time::Instant::now();
    let moments = Moments::from_samples(&data, tokens, d)?;

    if let Some(target) = args.target {
        let h_value = match args.estimator {
            Estimator::Linear => moments.conditional_entropy(target, &args.given, &options)?,
            Estimator::Mlp => par_entropy::mlp::conditional_entropy(
                &data,
                tokens,
                d,
                target,
                &args.given,
                &options,
                &MlpOptions { seed: args.seed, ..MlpOptions::default() },
                &device,
            )?,
        };
        match args.format {
            Format::Json => println!(
                "{}",
                serde_json::json!({
                    "target": target, "given": args.given, "entropy": h_value,
                    "estimator": args.estimator, "samples": moments.samples(), "dim": d,
                })
            ),
            Format::Text => println!(
                "H(v_{target} | {} position(s)) = {h_value:.4} nats ({:?}, {} samples, d = {d})",
                args.given.len(),
                args.estimator,
                moments.samples()
            ),
        }
        return Ok(());
    }

    // Maps: Fig. 11 per reference, Fig. 12 for PAR and raster-multi.
    let out = out.expect("maps have an output folder");
    if h != w {
        invalid!("{}: a {h}×{w} code grid; the maps need a square grid", codes.display());
    }
    let references = match (&args.references, args.all_references) {
        (_, true) => (0..tokens).collect(),
        (Some(r), false) => r.clone(),
        (None, false) => default_references(h),
    };
    if let Some(&r) = references.iter().find(|&&r| r >= tokens) {
        invalid!("--references: position {r} is outside the {h}×{w} grid");
    }
    let grid = RegionGrid::image(h, args.parallel)?;
    let groups = |arrangement| {
        let variant = ScheduleVariant { arrangement, ..ScheduleVariant::par() };
        ParSchedule::with_variant(grid, variant).generation_groups()
    };
    let marginal: Vec<f64> = (0..tokens)
        .map(|i| moments.conditional_entropy(i, &[], &options))
        .collect::<Result<_, _>>()?;
    let fig11: Vec<(usize, Vec<f64>)> = references
        .iter()
        .map(|&r| reference_map(&moments, r, &options).map(|m| (r, m)))
        .collect::<Result<_, _>>()?;
    let t11 = t0.elapsed().as_secs_f64();
    let par = increase_map(&moments, &groups(Arrangement::Regions), &options)?;
    let raster = increase_map(&moments, &groups(Arrangement::Raster), &options)?;
    let seconds = t0.elapsed().as_secs_f64();

    std::fs::create_dir_all(out.path()).input()?;
    let drawn: Vec<usize> =
        if args.all_references { default_references(h) } else { references.clone() };
    for (r, map) in fig11.iter().filter(|(r, _)| drawn.contains(r)) {
        par_app::plot::heatmap_png(
            &out.path().join(format!("reference_{}_{}.png", r / w, r % w)),
            &format!("H(v_i | v_j), j = ({}, {}), {h}x{w} codes", r / w, r % w),
            map,
            h,
            w,
            "nats",
            Some(*r),
        )?;
    }
    for (name, label, map) in [
        ("increase_par.png", format!("PAR order, {} regions", args.parallel), &par),
        ("increase_raster_multi.png", format!("raster, {} adjacent", args.parallel), &raster),
    ] {
        par_app::plot::heatmap_png(
            &out.path().join(name),
            &format!(
                "entropy increase, {label}: mean {:.3}, median {:.3}",
                map.mean_increase, map.median_increase
            ),
            &map.increase,
            h,
            w,
            "nats",
            None,
        )?;
    }
    let summary = |m: &IncreaseMap| {
        serde_json::json!({ "mean_increase": m.mean_increase, "median_increase": m.median_increase,
            "increase": m.increase, "sequential": m.sequential, "parallel": m.parallel })
    };
    let report = serde_json::json!({
        "codes": codes, "images": images, "samples": moments.samples(), "grid": [h, w], "dim": d,
        "codebook_size": k, "views": args.views, "estimator": args.estimator, "options": options,
        "marginal": marginal,
        "reference_maps": fig11.iter().map(|(r, m)| serde_json::json!({
            "reference": r, "row": r / w, "col": r % w, "entropy": m })).collect::<Vec<_>>(),
        "increase": { "parallel": args.parallel, "par": summary(&par), "raster_multi": summary(&raster) },
        "seconds": { "moments_and_fig11": t11, "total": seconds },
    });
    let json = out.path().join("entropy.json");
    par_store::write_atomic(&json, serde_json::to_string_pretty(&report)?.as_bytes())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", json.display()))?;
    match args.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string(&serde_json::json!({
                "par": { "mean_increase": par.mean_increase, "median_increase": par.median_increase },
                "raster_multi": { "mean_increase": raster.mean_increase, "median_increase": raster.median_increase },
                "reference_maps": fig11.len(), "samples": moments.samples(), "seconds": seconds,
            }))?
        ),
        Format::Text => println!(
            "{} samples of {h}×{w} codes (d = {d}); {} Fig. 11 map(s); entropy increase from sequential to parallel: PAR order ({} regions) mean {:.4} / median {:.4} nats, raster with {} adjacent mean {:.4} / median {:.4} nats ({seconds:.1} s) → {}",
            moments.samples(),
            fig11.len(),
            args.parallel,
            par.mean_increase,
            par.median_increase,
            args.parallel,
            raster.mean_increase,
            raster.median_increase,
            out.path().display()
        ),
    }
    out.keep();
    Ok(())
}
