//! Progress bars and Ctrl-C handling shared by every long-running command and experiment.

use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{ProgressBar, ProgressStyle};

/// A bar on stderr: `label [bar] pos/len rate eta message` (hidden when stderr is not a
/// terminal, e.g. in CI logs).
pub fn bar(len: u64, label: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta}) {msg}",
    )
    .expect("valid template")
    .progress_chars("=> ");
    ProgressBar::new(len).with_style(style).with_prefix(label.to_string())
}

static STOP: AtomicBool = AtomicBool::new(false);

/// A flag raised by the first Ctrl-C (jobs checkpoint and exit; the same command, with
/// `--resume` for training, continues); a second Ctrl-C kills the process.
pub fn stop_flag() -> &'static AtomicBool {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if STOP.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\nstopping after the current step (Ctrl-C again to kill)…");
        });
    });
    &STOP
}
