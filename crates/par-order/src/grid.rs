//! [`RegionGrid`]: the code grid and its split into `M×M` regions.

use crate::OrderError;

/// Largest sequence (`N + n` slots) a [`RegionGrid`] may describe: 2²⁴, i.e. a 4095×4095 code
/// grid (65 520 px with VQ-16), far beyond any model, while keeping the index tables in memory.
pub const MAX_SLOTS: usize = 1 << 24;

/// A code grid of `frames × grid_size × grid_size` tokens split into `regions_per_side²` equal
/// square regions (spec §1.1 notation: `L = grid_size`, `M = regions_per_side`, `n = M²`,
/// `b = L / M`; `T = frames`, 1 for images).
///
/// For video (spec §8) the regions are spatial only: each region spans all frames.
///
/// `n = 1` is LlamaGen's raster order; the paper uses `n = 4` and `n = 16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct RegionGrid {
    frames: usize,
    grid_size: usize,
    regions_per_side: usize,
}

impl RegionGrid {
    /// An image grid of `grid_size × grid_size` tokens with parallel degree `parallel` (`n`).
    ///
    /// # Errors
    ///
    /// [`OrderError`] if `grid_size` or `parallel` is 0, `parallel` is not a perfect square,
    /// `parallel > grid_size²`, `√parallel` does not divide `grid_size`, or the grid is too large to
    /// index.
    pub fn image(grid_size: usize, parallel: usize) -> Result<Self, OrderError> {
        Self::video(1, grid_size, parallel)
    }

    /// A video grid of `frames` latent frames of `grid_size × grid_size` tokens, with `parallel`
    /// spatial regions (spec §8: "parallelism only along spatial dimensions").
    ///
    /// # Errors
    ///
    /// As [`RegionGrid::image`], and [`OrderError::ZeroFrames`] if `frames` is 0.
    pub fn video(frames: usize, grid_size: usize, parallel: usize) -> Result<Self, OrderError> {
        if frames == 0 {
            return Err(OrderError::ZeroFrames);
        }
        if grid_size == 0 {
            return Err(OrderError::ZeroGridSize);
        }
        if parallel == 0 {
            return Err(OrderError::ZeroRegions);
        }
        let regions_per_side = parallel.isqrt();
        if regions_per_side * regions_per_side != parallel {
            return Err(OrderError::NotPerfectSquare { parallel });
        }
        let too_large = OrderError::TooLarge { frames, grid_size };
        let cells = grid_size.checked_mul(grid_size).ok_or(too_large.clone())?;
        if parallel > cells {
            return Err(OrderError::TooManyRegions { parallel, grid_size, cells });
        }
        if !grid_size.is_multiple_of(regions_per_side) {
            return Err(OrderError::GridNotDivisible { grid_size, regions_per_side });
        }
        // The longest sequence is N + n slots (spec §2.3 RoPE table length); it must be indexable
        // and small enough that the per-slot tables fit in memory.
        let slots = cells.checked_mul(frames).and_then(|tokens| tokens.checked_add(parallel));
        if slots.is_none_or(|s| s > MAX_SLOTS) {
            return Err(too_large);
        }
        Ok(Self { frames, grid_size, regions_per_side })
    }

    /// Tokens per side, `L`.
    pub fn grid_size(&self) -> usize {
        self.grid_size
    }

    /// Latent frames, `T` (1 for images).
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Regions per side, `M` (upstream `sub_num`).
    pub fn regions_per_side(&self) -> usize {
        self.regions_per_side
    }

    /// The parallel degree `n = M²`: regions, tokens generated per parallel step, and the number
    /// of tokens generated one by one at the start (upstream `ar_token_num`).
    pub fn parallel(&self) -> usize {
        self.regions_per_side * self.regions_per_side
    }

    /// Region side in tokens, `b = L / M`.
    pub fn region_size(&self) -> usize {
        self.grid_size / self.regions_per_side
    }

    /// Image tokens, `N = T·L²` (upstream `block_size` for images).
    pub fn num_image_tokens(&self) -> usize {
        self.frames * self.grid_size * self.grid_size
    }

    /// Transition tokens, `n − 1` (upstream `spe_token_num`).
    pub fn num_transition_tokens(&self) -> usize {
        self.parallel() - 1
    }

    /// Transformer forwards needed to generate every token: `n + (N − n)/n` (spec §1.3).
    pub fn num_steps(&self) -> usize {
        let n = self.parallel();
        n + (self.num_image_tokens() - n) / n
    }

    /// The cell of raster index `raster` (`(t·L + row)·L + col`).
    ///
    /// # Panics
    ///
    /// If `raster ≥ N`.
    pub fn cell(&self, raster: usize) -> CellPosition {
        assert!(raster < self.num_image_tokens(), "raster index {raster} outside the grid");
        let l = self.grid_size;
        CellPosition { frame: raster / (l * l), row: raster / l % l, col: raster % l }
    }

    /// The raster index of `cell`, `(t·L + row)·L + col`.
    pub fn raster_index(&self, cell: CellPosition) -> usize {
        (cell.frame * self.grid_size + cell.row) * self.grid_size + cell.col
    }
}

/// A token's place in the code grid: latent frame, row (y) and column (x), all from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CellPosition {
    /// Latent frame `t` (0 for images).
    pub frame: usize,
    /// Row `y`.
    pub row: usize,
    /// Column `x`.
    pub col: usize,
}
