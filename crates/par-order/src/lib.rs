//! PAR token ordering — the only crate that knows in which order PAR generates a code grid.
//!
//! PAR ("Parallelized Autoregressive Visual Generation", Wang et al., arXiv 2412.15119) cuts an
//! `L×L` code grid into `n = M×M` regions, generates the first token of each region one by one,
//! then the tokens at the same in-region position of all regions in parallel. This crate holds,
//! as plain index code:
//!
//! - [`RegionGrid`]: the grid and its regions, validated ([`OrderError`] for anything the reference
//!   would silently mis-order);
//! - [`TokenOrder`]: the raster ↔ PAR permutation (images, and video with spatial regions);
//! - [`ParSchedule`]: the sequence layout ([`Slot`]s: class, first tokens, transition tokens,
//!   parallel groups), which target each logit predicts, the decode [`Step`]s, the group attention
//!   mask ([`AttendMask`], true = may attend) and the RoPE cell of every slot;
//! - [`tensor`]: the Burn adapters (permute code batches on a device; the mask in Burn's polarity).
//!
//! The 4×4 worked example, the mapping of upstream names and the mask polarity are in
//! `docs/ordering.md`; the exact definitions in `docs/spec.md` §1, §2 and §8.
//!
//! ```
//! use par_order::{ParSchedule, RegionGrid};
//! let grid = RegionGrid::image(24, 4)?;           // 384 px, PAR-4×
//! assert_eq!(grid.num_steps(), 147);               // 4 + (576 − 4)/4
//! let schedule = ParSchedule::new(grid);
//! assert_eq!(&schedule.order().par_to_raster()[..4], &[0, 12, 288, 300]);
//! # Ok::<(), par_order::OrderError>(())
//! ```
#![warn(missing_docs)]

mod error;
mod grid;
mod mask;
mod order;
mod schedule;
pub mod tensor;

pub use error::OrderError;
pub use grid::{CellPosition, MAX_SLOTS, RegionGrid};
pub use mask::AttendMask;
pub use order::TokenOrder;
pub use schedule::{
    Arrangement, GroupAttention, ParSchedule, ScheduleVariant, Slot, Step, StepKind,
};
