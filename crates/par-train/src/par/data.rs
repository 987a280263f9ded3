//! [`CodeDataset`]: pre-tokenized code grids in memory, one view drawn per sample per epoch, the
//! PAR permutation, and class dropout to the null class — each random choice a pure function of
//! (seed, epoch or step, sample), so resumed runs draw the same batches.

use par_data::{CodeStore, DataError};
use par_order::TokenOrder;

use crate::plan::BatchPlan;

/// SplitMix64: a fast, well-mixed hash of a counter (Steele et al. 2014).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform draw in `[0, 1)` from (seed, a, b).
pub fn uniform(seed: u64, a: u64, b: u64) -> f64 {
    (mix(mix(mix(seed) ^ a) ^ b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Code grids with their labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDataset {
    /// `len · views · tokens` ids, raster order per view.
    pub codes: Vec<u32>,
    /// One class per sample.
    pub labels: Vec<u32>,
    /// Views per sample.
    pub views: usize,
    /// Tokens per view.
    pub tokens: usize,
}

/// One training batch: PAR-order tokens and classes (dropped ones replaced by the null class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBatch {
    /// `[batch, tokens]` ids in PAR order, row-major.
    pub tokens: Vec<i64>,
    /// `[batch]` class ids; `num_classes` is the null class.
    pub classes: Vec<i64>,
}

impl CodeDataset {
    /// Loads samples `range` of a store into memory.
    ///
    /// # Errors
    ///
    /// The store's [`DataError`] (naming the file).
    pub fn load(store: &CodeStore, range: std::ops::Range<usize>) -> Result<Self, DataError> {
        let info = store.info();
        let (views, tokens) = (info.views, info.tokens());
        let (all, labels) = store.load_all(|_| {})?;
        let per = views * tokens;
        let range = range.start.min(labels.len())..range.end.min(labels.len());
        Ok(Self {
            codes: all[range.start * per..range.end * per].to_vec(),
            labels: labels[range].to_vec(),
            views,
            tokens,
        })
    }

    /// A 64-bit fingerprint of the codes and labels (resume refuses other data).
    pub fn fingerprint(&self) -> u64 {
        let mut h = mix(self.views as u64 ^ ((self.tokens as u64) << 32));
        for &c in &self.codes {
            h = mix(h ^ c as u64);
        }
        for &l in &self.labels {
            h = mix(h ^ (l as u64 | 1 << 40));
        }
        h
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The largest code id + 1 and the largest label + 1 (for checks against a model).
    pub fn extents(&self) -> (usize, usize) {
        (
            self.codes.iter().max().map_or(0, |&c| c as usize + 1),
            self.labels.iter().max().map_or(0, |&l| l as usize + 1),
        )
    }

    /// The view of `sample` used in `epoch`: uniform over the views (spec §5.2: one of the ten
    /// crops per sample per epoch).
    pub fn view(&self, seed: u64, epoch: usize, sample: usize) -> usize {
        (uniform(seed, epoch as u64, sample as u64) * self.views as f64) as usize
    }

    /// The training batch of `step`: samples from `plan`, their epoch's view, PAR order, and
    /// each class replaced by the null class `num_classes` with probability `class_dropout`.
    ///
    /// # Panics
    ///
    /// If `order` does not cover `tokens` positions.
    pub fn train_batch(
        &self,
        plan: &BatchPlan,
        step: usize,
        order: &TokenOrder,
        class_dropout: f64,
        num_classes: usize,
        seed: u64,
    ) -> CodeBatch {
        let (indices, _) = plan.batch(step, false);
        let batch = indices.len();
        let mut tokens = Vec::with_capacity(batch * self.tokens);
        let mut classes = Vec::with_capacity(batch);
        for (k, &i) in indices.iter().enumerate() {
            let epoch = (step * batch + k) / self.len();
            let v = self.view(seed, epoch, i);
            let start = (i * self.views + v) * self.tokens;
            let raster: Vec<i64> =
                self.codes[start..start + self.tokens].iter().map(|&c| c as i64).collect();
            tokens.extend(order.permute(&raster).expect("grid covers the tokens"));
            let drop = uniform(seed ^ 0xC1A5_5D70, step as u64, k as u64) < class_dropout;
            classes.push(if drop { num_classes as i64 } else { self.labels[i] as i64 });
        }
        CodeBatch { tokens, classes }
    }

    /// Samples `range` with view 0 and their true classes (validation).
    pub fn eval_batch(&self, range: std::ops::Range<usize>, order: &TokenOrder) -> CodeBatch {
        let mut tokens = Vec::new();
        let mut classes = Vec::new();
        for i in range {
            let start = i * self.views * self.tokens;
            let raster: Vec<i64> =
                self.codes[start..start + self.tokens].iter().map(|&c| c as i64).collect();
            tokens.extend(order.permute(&raster).expect("grid covers the tokens"));
            classes.push(self.labels[i] as i64);
        }
        CodeBatch { tokens, classes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use par_order::RegionGrid;

    #[test]
    fn views_classes_and_order_are_seeded_functions() {
        let data = CodeDataset {
            codes: (0..4 * 2 * 16).map(|i| i as u32).collect(),
            labels: vec![0, 1, 2, 3],
            views: 2,
            tokens: 16,
        };
        let order = TokenOrder::new(RegionGrid::image(4, 4).unwrap());
        let plan = BatchPlan::new(4, 4, 1);
        let a = data.train_batch(&plan, 0, &order, 0.5, 10, 1);
        assert_eq!(a, data.train_batch(&plan, 0, &order, 0.5, 10, 1));
        // Each row is one view of one sample, permuted into PAR order.
        for row in a.tokens.chunks(16) {
            let first = row[0] as usize;
            let (i, v) = (first / 32, (first / 16) % 2);
            let raster: Vec<i64> = (0..16).map(|t| ((i * 2 + v) * 16 + t) as i64).collect();
            assert_eq!(row, order.permute(&raster).unwrap());
        }
        // Class dropout: about half of many draws become the null class.
        let dropped = (0..200)
            .flat_map(|s| data.train_batch(&plan, s, &order, 0.5, 10, 1).classes)
            .filter(|&c| c == 10)
            .count();
        assert!((300..500).contains(&dropped), "{dropped} of 800");
        let none = (0..50)
            .flat_map(|s| data.train_batch(&plan, s, &order, 0.0, 10, 1).classes)
            .all(|c| c < 10);
        assert!(none);
        // Views are spread over both crops.
        let v1 = (0..400).filter(|&e| data.view(1, e, 0) == 1).count();
        assert!((140..260).contains(&v1), "{v1}");
    }
}
