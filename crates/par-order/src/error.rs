//! The one error type of this crate.

/// An invalid region grid, or data that does not fit the grid it is used with.
///
/// Every configuration the reference code would silently mis-order (e.g. `n = 2`, which never
/// inserts transition tokens upstream, spec §10.4) is rejected here instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// `grid_size` (tokens per side, `L`) was 0.
    #[error("grid size must be at least 1 token per side, got 0")]
    ZeroGridSize,
    /// `frames` (latent frames, `T`) was 0.
    #[error("frame count must be at least 1, got 0")]
    ZeroFrames,
    /// The parallel degree `n` (number of regions) was 0.
    #[error("parallel degree (number of regions) must be at least 1, got 0")]
    ZeroRegions,
    /// The parallel degree `n` is not a perfect square, so the grid cannot be cut into `M×M` regions.
    #[error(
        "parallel degree {parallel} is not a perfect square (regions are M×M: 1, 4, 9, 16, ...)"
    )]
    NotPerfectSquare {
        /// The requested parallel degree `n`.
        parallel: usize,
    },
    /// More regions than grid cells: `n > L²`.
    #[error(
        "parallel degree {parallel} exceeds the {cells} cells of a {grid_size}×{grid_size} grid"
    )]
    TooManyRegions {
        /// The requested parallel degree `n`.
        parallel: usize,
        /// Tokens per side `L`.
        grid_size: usize,
        /// `L²`.
        cells: usize,
    },
    /// `M = √n` does not divide `L`, so the regions would not be equal squares.
    #[error(
        "{regions_per_side}×{regions_per_side} regions (parallel degree {}) do not tile a \
         {grid_size}×{grid_size} grid: {regions_per_side} does not divide {grid_size}",
        regions_per_side * regions_per_side
    )]
    GridNotDivisible {
        /// Tokens per side `L`.
        grid_size: usize,
        /// Regions per side `M`.
        regions_per_side: usize,
    },
    /// `T·L² + n` exceeds [`crate::MAX_SLOTS`].
    #[error("a {frames}×{grid_size}×{grid_size} grid is too large (at most 2^24 tokens)")]
    TooLarge {
        /// Latent frames `T`.
        frames: usize,
        /// Tokens per side `L`.
        grid_size: usize,
    },
    /// A token sequence or batch does not have the grid's number of tokens.
    #[error("expected {expected} tokens per sequence for this grid, got {actual}")]
    TokenCount {
        /// `T·L²`.
        expected: usize,
        /// What was given.
        actual: usize,
    },
    /// A sequence length beyond the layout's slots was asked for.
    #[error("sequence length {requested} exceeds the {max} slots of this layout")]
    SequenceTooLong {
        /// The requested number of slots.
        requested: usize,
        /// [`crate::ParSchedule::max_seq_length`].
        max: usize,
    },
}
