//! `par eval`: the quality of an image set against real images: FD-FMNIST (the Fréchet distance
//! in the Fashion-MNIST classifier's features), precision/recall (k = 3) and class accuracy.

use std::path::PathBuf;

use par_app::InputResult;
use par_device::DeviceArgs;
use par_eval::Classifier;

use super::order::Format;

/// Arguments of `par eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The images: a folder of PNGs (as `par sample` writes them: the class in the file name), an
    /// ADM `.npz` (`arr_0`) or an IDX image file (`.gz` or raw; labels from its sibling
    /// `labels-idx1` file).
    #[arg(long)]
    images: PathBuf,
    /// The real images, same formats [default: the embedded Fashion-MNIST test subset, 2,000
    /// images].
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Classifier weights (`train_classifier` output) [default: the embedded Fashion-MNIST CNN].
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// What to print: JSON `{"fd_fmnist", "precision", "recall", "class_accuracy", "images",
    /// "reference_images"}` (`class_accuracy` null when the images carry no class), or text.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(flatten)]
    device: DeviceArgs,
}

/// Runs `par eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    par_app::check_inputs_exist(&[
        ("--images", Some(args.images.as_path())),
        ("--reference", args.reference.as_deref()),
        ("--classifier", args.classifier.as_deref()),
    ])?;
    let device = args.device.device()?;
    let (images, labelled) = par_eval::images::load(&args.images).input()?;
    let reference = match &args.reference {
        Some(p) => par_eval::images::load(p).input()?.0,
        None => par_eval::images::fashion_mnist_test(),
    };
    // Too few images is a flag's fault: say which.
    for (set, flag, path) in [
        (&images, "--images", Some(&args.images)),
        (&reference, "--reference", args.reference.as_ref()),
    ] {
        if set.len() < par_eval::MIN_IMAGES {
            par_app::invalid!(
                "{flag} {}: {} image(s), at least {} are needed",
                path.map_or("(embedded)".into(), |p| p.display().to_string()),
                set.len(),
                par_eval::MIN_IMAGES
            );
        }
    }
    let classifier = match &args.classifier {
        Some(p) => {
            let state = par_store::StateDict::read(p).input()?;
            state.check_finite().input()?;
            par_train::module_state::restore(Classifier::new(10, &device), &state).input()?
        }
        None => Classifier::embedded(&device),
    };
    let report = par_eval::evaluate(&classifier, &images, labelled, &reference, &device)
        .map_err(|e| match (&e, &args.classifier) {
            (par_eval::EvalError::Classifier { .. }, Some(path)) => {
                anyhow::Error::from(e).context(format!("--classifier {}", path.display()))
            }
            _ => e.into(),
        })
        .input()?;
    match args.format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Text => println!(
            "{} image(s) against {} reference image(s): FD-FMNIST {:.3}, precision {:.3}, recall {:.3}, class accuracy {}",
            report.images,
            report.reference_images,
            report.fd_fmnist,
            report.precision,
            report.recall,
            report
                .class_accuracy
                .map_or("n/a (no classes)".into(), |a| format!("{:.1} %", 100.0 * a))
        ),
    }
    Ok(())
}
