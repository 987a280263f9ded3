//! How a long job reports progress and learns that it should stop, without any UI in the
//! library: the binaries implement [`Monitor`] (a progress bar and Ctrl-C in `par-app`), tests
//! and benchmarks pass [`Silent`] or their own.

/// Progress and stop requests of a long job (training, pre-tokenization).
///
/// Every method has a no-op default. Calls come from the job's thread (for data-parallel
/// training: the thread that applies the optimizer step), never concurrently.
pub trait Monitor: Send + Sync {
    /// The job starts (or resumes) at `done` of `total` units (training steps, images).
    fn start(&self, done: usize, total: usize) {
        let _ = (done, total);
    }

    /// `done` units are finished; `message` is a short status (e.g. `loss 4.12 lr 1.0e-4`).
    fn update(&self, done: usize, message: &str) {
        let _ = (done, message);
    }

    /// A problem the job works around (e.g. an unreadable image it skips). The default prints
    /// `warning: {message}` on stderr.
    fn warn(&self, message: &str) {
        eprintln!("warning: {message}");
    }

    /// Asked after every unit with the number done: `true` makes the job save its progress and
    /// return an `Interrupted` error (the same command with `--resume` continues it).
    fn should_stop(&self, done: usize) -> bool {
        let _ = done;
        false
    }
}

/// Reports nothing and never stops.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Monitor for Silent {}

/// Stops when `done` reaches a given count (tests, `--max-steps`-like budgets).
#[derive(Debug, Clone, Copy)]
pub struct StopAt(pub usize);

impl Monitor for StopAt {
    fn should_stop(&self, done: usize) -> bool {
        done >= self.0
    }
}
