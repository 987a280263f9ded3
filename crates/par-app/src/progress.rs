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

/// A [`par_train::Monitor`] on a progress bar: `start` sets the bar's length and position,
/// `update` its position and message, `warn` prints above it, and `should_stop` reads the Ctrl-C
/// flag ([`stop_flag`]).
#[derive(Debug, Clone)]
pub struct BarMonitor {
    bar: ProgressBar,
}

impl BarMonitor {
    /// A monitor on a new bar labelled `label` (its length is set when the job starts).
    pub fn new(label: &str) -> Self {
        stop_flag();
        Self { bar: bar(0, label) }
    }

    /// The bar (to finish it, or to print above it).
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }
}

impl par_train::Monitor for BarMonitor {
    fn start(&self, done: usize, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(done as u64);
    }

    fn update(&self, done: usize, message: &str) {
        self.bar.set_position(done as u64);
        if !message.is_empty() {
            self.bar.set_message(message.to_string());
        }
    }

    fn warn(&self, message: &str) {
        self.bar.suspend(|| eprintln!("warning: {message}"));
    }

    fn should_stop(&self, _done: usize) -> bool {
        STOP.load(Ordering::SeqCst)
    }
}
