//! Progress bars and Ctrl-C handling: the binaries' shared ones (`par-app`).

pub use par_app::{BarMonitor, bar, stop_flag};
