//! Progress bars and Ctrl-C handling: the shared ones of `par-train`.

pub use par_train::progress::{bar, stop_flag};
