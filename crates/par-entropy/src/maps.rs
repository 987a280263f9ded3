//! Entropy maps over the code grid: Fig. 11 (dependence on one reference token) and Fig. 12 (the
//! entropy increase of generating a decode group together instead of one by one).

use rayon::prelude::*;

use crate::{EntropyError, EntropyOptions, Moments};

/// `H(v_i | v_reference)` for every position `i` (raster order), `NaN` at the reference itself
/// (Fig. 11).
///
/// # Errors
///
/// [`EntropyError`] from the estimator.
pub fn reference_map(
    moments: &Moments,
    reference: usize,
    options: &EntropyOptions,
) -> Result<Vec<f64>, EntropyError> {
    (0..moments.positions())
        .map(|i| {
            if i == reference {
                Ok(f64::NAN)
            } else {
                moments.conditional_entropy(i, &[reference], options)
            }
        })
        .collect()
}

/// Conditional entropies of every position under one generation order.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IncreaseMap {
    /// `H(v_i | tokens before i in the order, one by one)`, per raster position.
    pub sequential: Vec<f64>,
    /// `H(v_i | tokens of the earlier decode groups)`, per raster position.
    pub parallel: Vec<f64>,
    /// `parallel − sequential` (≥ 0 up to estimation noise; 0 for tokens generated alone).
    pub increase: Vec<f64>,
    /// Mean of `increase` over all positions.
    pub mean_increase: f64,
    /// Median of `increase` over all positions.
    pub median_increase: f64,
}

/// Fig. 12 for one ordering: `groups` are the raster positions each decode step generates, in
/// step order (e.g. `par_order::ParSchedule::generation_groups`). A token's sequential context is
/// every token before it in the flattened order; its parallel context only the earlier groups.
///
/// # Errors
///
/// [`EntropyError::Invalid`] if the groups do not cover every position exactly once; errors of the
/// estimator.
pub fn increase_map(
    moments: &Moments,
    groups: &[Vec<usize>],
    options: &EntropyOptions,
) -> Result<IncreaseMap, EntropyError> {
    let n = moments.positions();
    let order: Vec<usize> = groups.iter().flatten().copied().collect();
    let mut seen = vec![false; n];
    for &i in &order {
        if i >= n || std::mem::replace(&mut seen[i], true) {
            return Err(EntropyError::Invalid(format!(
                "the decode groups must cover the {n} positions exactly once (position {i})"
            )));
        }
    }
    if order.len() != n {
        return Err(EntropyError::Invalid(format!(
            "the decode groups cover {} of {n} positions",
            order.len()
        )));
    }
    // (position, sequential context, parallel context) for every token.
    let mut queries = Vec::with_capacity(n);
    let mut before = 0;
    for group in groups {
        for (k, &i) in group.iter().enumerate() {
            queries.push((i, order[..before + k].to_vec(), order[..before].to_vec()));
        }
        before += group.len();
    }
    let results = queries
        .par_iter()
        .map(|(i, seq, par)| {
            let s = moments.conditional_entropy(*i, seq, options)?;
            let p = if par.len() == seq.len() {
                s
            } else {
                moments.conditional_entropy(*i, par, options)?
            };
            Ok((*i, s, p))
        })
        .collect::<Result<Vec<_>, EntropyError>>()?;
    let (mut sequential, mut parallel) = (vec![f64::NAN; n], vec![f64::NAN; n]);
    for (i, s, p) in results {
        sequential[i] = s;
        parallel[i] = p;
    }
    let increase: Vec<f64> = parallel.iter().zip(&sequential).map(|(p, s)| p - s).collect();
    let mean_increase = increase.iter().sum::<f64>() / n as f64;
    let mut sorted = increase.clone();
    sorted.sort_by(f64::total_cmp);
    let median_increase =
        if n % 2 == 1 { sorted[n / 2] } else { 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]) };
    Ok(IncreaseMap { sequential, parallel, increase, mean_increase, median_increase })
}

/// The default reference positions of Fig. 11 on an `L×L` grid: the top-left corner, the middle
/// of the top edge and the centre.
pub fn default_references(grid_size: usize) -> Vec<usize> {
    let l = grid_size;
    vec![0, l / 2, (l / 2) * l + l / 2]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Normal;

    /// A 1-D chain on 4 positions: v_{i+1} = v_i + noise, so a token depends on its neighbour.
    fn chain(samples: usize) -> Moments {
        let mut normal = Normal::new(5);
        let mut data = Vec::with_capacity(samples * 4);
        for _ in 0..samples {
            let mut v = normal.sample();
            for _ in 0..4 {
                data.push(v as f32);
                v += 0.3 * normal.sample();
            }
        }
        Moments::from_samples(&data, 4, 1).unwrap()
    }

    #[test]
    fn neighbours_carry_more_information_than_distant_tokens() {
        let m = chain(20_000);
        let map = reference_map(&m, 0, &EntropyOptions::default()).unwrap();
        assert!(map[0].is_nan());
        assert!(map[1] < map[2] && map[2] < map[3], "{map:?}");
    }

    #[test]
    fn grouping_neighbours_costs_more_than_grouping_distant_tokens() {
        let m = chain(20_000);
        let o = EntropyOptions::default();
        // Generate 0 first, then {1, 3} together, then 2: 3 loses its neighbour 2 but not much.
        let distant = increase_map(&m, &[vec![0], vec![1, 3], vec![2]], &o).unwrap();
        // Generate 0, then {1, 2} together (adjacent), then 3.
        let adjacent = increase_map(&m, &[vec![0], vec![1, 2], vec![3]], &o).unwrap();
        assert_eq!(distant.increase[0], 0.0);
        // Token 2 loses its neighbour 1: ½·ln(2·0.09 / 0.09) = ½·ln 2.
        assert!((adjacent.increase[2] - 0.5 * 2f64.ln()).abs() < 0.05, "{adjacent:?}");
        assert!(adjacent.mean_increase > distant.mean_increase, "{adjacent:?} vs {distant:?}");
        assert!(increase_map(&m, &[vec![0], vec![1]], &o).is_err(), "must cover every position");
        assert!(increase_map(&m, &[vec![0, 0], vec![1, 2, 3]], &o).is_err());
    }
}
