//! [`TokenOrder`]: the raster ↔ PAR permutation.

use crate::{Arrangement, OrderError, RegionGrid};

/// The PAR token order of a [`RegionGrid`] and its inverse (spec §1.1, video §8).
///
/// With raster index `r = (t·L + row)·L + col`, `row = a·b + i`, `col = c·b + j` (region
/// `(a, c)`, in-region offset `(i, j)`), the PAR position is
///
/// ```text
/// p = ((t·b + i)·b + j)·n + (a·M + c)
/// ```
///
/// i.e. the outer loop runs over in-region positions (frame-major, then raster inside the region)
/// and the inner loop over regions in raster order. The first `n` positions are the top-left token
/// of every region; each further run of `n` positions is one *parallel group*: the same in-region
/// position in all regions. For `n = 1` the order is the identity (LlamaGen's raster order).
///
/// Upstream the same permutation is written three times as reshape/permute calls (training data,
/// RoPE table, sampler; spec §1.1); here it exists once.
///
/// # Example (spec §1.2)
///
/// ```
/// use par_order::{RegionGrid, TokenOrder};
/// let order = TokenOrder::new(RegionGrid::image(4, 4)?);
/// assert_eq!(order.par_to_raster(), &[0, 2, 8, 10, 1, 3, 9, 11, 4, 6, 12, 14, 5, 7, 13, 15]);
/// assert_eq!(order.raster_to_par(), &[0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15]);
/// # Ok::<(), par_order::OrderError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOrder {
    grid: RegionGrid,
    par_to_raster: Vec<usize>,
    raster_to_par: Vec<usize>,
}

impl TokenOrder {
    /// The order of `grid`'s tokens under `arrangement`: PAR's region order, or the identity
    /// (raster order) for [`Arrangement::Raster`].
    pub fn arranged(grid: RegionGrid, arrangement: Arrangement) -> Self {
        match arrangement {
            Arrangement::Regions => Self::new(grid),
            Arrangement::Raster => {
                let identity: Vec<usize> = (0..grid.num_image_tokens()).collect();
                Self { grid, par_to_raster: identity.clone(), raster_to_par: identity }
            }
        }
    }

    /// Builds the permutation of `grid` (`O(N)` time and memory).
    pub fn new(grid: RegionGrid) -> Self {
        let n_tokens = grid.num_image_tokens();
        let (m, b, l) = (grid.regions_per_side(), grid.region_size(), grid.grid_size());
        let n = grid.parallel();
        let mut raster_to_par = vec![0; n_tokens];
        let mut par_to_raster = vec![0; n_tokens];
        for (raster, par_slot) in raster_to_par.iter_mut().enumerate() {
            let (t, row, col) = (raster / (l * l), raster / l % l, raster % l);
            let (a, i) = (row / b, row % b);
            let (c, j) = (col / b, col % b);
            let par = ((t * b + i) * b + j) * n + (a * m + c);
            *par_slot = par;
            par_to_raster[par] = raster;
        }
        Self { grid, par_to_raster, raster_to_par }
    }

    /// The grid this order belongs to.
    pub fn grid(&self) -> &RegionGrid {
        &self.grid
    }

    /// The raster index of each PAR position (`order[p] = r`). Length `N`.
    pub fn par_to_raster(&self) -> &[usize] {
        &self.par_to_raster
    }

    /// The PAR position of each raster index (`inverse[r] = p`). Length `N`.
    pub fn raster_to_par(&self) -> &[usize] {
        &self.raster_to_par
    }

    /// Reorders one raster-order sequence into PAR order: `out[p] = raster[order[p]]`.
    ///
    /// # Errors
    ///
    /// [`OrderError::TokenCount`] if `raster.len() != N`.
    pub fn permute<T: Clone>(&self, raster: &[T]) -> Result<Vec<T>, OrderError> {
        self.check_len(raster.len())?;
        Ok(self.par_to_raster.iter().map(|&r| raster[r].clone()).collect())
    }

    /// Reorders one PAR-order sequence back into raster order: `out[r] = par[inverse[r]]`.
    ///
    /// # Errors
    ///
    /// [`OrderError::TokenCount`] if `par.len() != N`.
    pub fn unpermute<T: Clone>(&self, par: &[T]) -> Result<Vec<T>, OrderError> {
        self.check_len(par.len())?;
        Ok(self.raster_to_par.iter().map(|&p| par[p].clone()).collect())
    }

    pub(crate) fn check_len(&self, actual: usize) -> Result<(), OrderError> {
        let expected = self.grid.num_image_tokens();
        if actual == expected { Ok(()) } else { Err(OrderError::TokenCount { expected, actual }) }
    }
}
