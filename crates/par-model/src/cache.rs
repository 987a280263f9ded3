//! [`KvCache`] (one layer) and [`ModelCache`] (all layers + filled length) for KV-cached decoding.

use burn::prelude::*;

/// Keys and values of one layer for the slots decoded so far, preallocated for the whole decode
/// (filled with NaN until written).
#[derive(Debug, Clone)]
pub struct KvCache {
    capacity: usize,
    len: usize,
    /// `[batch_size, n_heads, capacity, head_dim]` once the first step has run.
    keys: Option<Tensor<4>>,
    values: Option<Tensor<4>>,
}

impl KvCache {
    /// An empty cache for up to `capacity` slots.
    pub fn new(capacity: usize) -> Self {
        Self { capacity, len: 0, keys: None, values: None }
    }

    /// Slots filled so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn truncate_batch(&mut self, rows: usize) {
        for cache in [&mut self.keys, &mut self.values] {
            if let Some(t) = cache.take() {
                *cache = Some(t.narrow(0, 0, rows));
            }
        }
    }

    /// Writes this step's keys and values after the cached ones and returns all keys and values
    /// cached so far (this step's included).
    ///
    /// # Shapes
    ///
    /// - keys, values: `[batch_size, n_heads, step_length, head_dim]`
    /// - output: `[batch_size, n_heads, len + step_length, head_dim]` each
    ///
    /// # Panics
    ///
    /// If the step overflows the capacity or its batch/head shape differs from earlier steps
    /// ([`crate::ParTransformer::forward_step`] checks both before calling).
    pub fn append(&mut self, keys: Tensor<4>, values: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [batch_size, n_heads, step_length, head_dim] = keys.dims();
        let end = self.len + step_length;
        assert!(end <= self.capacity, "KV cache overflow: {end} > {}", self.capacity);
        let shape = [batch_size, n_heads, self.capacity, head_dim];
        let range = [0..batch_size, 0..n_heads, self.len..end, 0..head_dim];
        let write = |cache: &mut Option<Tensor<4>>, new: Tensor<4>| {
            // Allocated as NaN: only the filled prefix is ever attended to, and a read past it
            // would make the logits non-finite (which the sampler refuses) instead of silently
            // attending to zeros.
            let full = cache
                .take()
                .unwrap_or_else(|| Tensor::full(shape, f32::NAN, (&new.device(), new.dtype())));
            let full = full.slice_assign(range.clone(), new);
            *cache = Some(full.clone());
            full.slice([0..batch_size, 0..n_heads, 0..end, 0..head_dim])
        };
        let k = write(&mut self.keys, keys);
        let v = write(&mut self.values, values);
        self.len = end;
        (k, v)
    }
}

/// The KV caches of every layer of one decode, and how many slots they hold. Passed by `&mut` to
/// [`crate::ParTransformer::forward_step`]; the model itself holds no decode state.
#[derive(Debug, Clone)]
pub struct ModelCache {
    /// One cache per layer.
    pub layers: Vec<KvCache>,
    batch_size: Option<usize>,
}

impl ModelCache {
    /// Empty caches for `n_layers` layers and up to `capacity` slots.
    pub fn new(n_layers: usize, capacity: usize) -> Self {
        Self { layers: (0..n_layers).map(|_| KvCache::new(capacity)).collect(), batch_size: None }
    }

    /// Slots filled so far (the next step's first slot).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, KvCache::len)
    }

    /// Whether nothing has been decoded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots the caches can hold.
    pub fn capacity(&self) -> usize {
        self.layers.first().map_or(0, |c| c.capacity)
    }

    /// Batch size fixed by the first step, if any.
    pub fn batch_size(&self) -> Option<usize> {
        self.batch_size
    }

    pub(crate) fn set_batch_size(&mut self, batch_size: usize) {
        self.batch_size = Some(batch_size);
    }

    /// Keeps only the first `rows` samples of every layer's cache (e.g. the conditional half once
    /// classifier-free guidance stops); later steps must then use that batch size.
    ///
    /// # Panics
    ///
    /// If `rows` exceeds the cached batch size.
    pub fn truncate_batch(&mut self, rows: usize) {
        if let Some(batch_size) = self.batch_size {
            assert!(rows <= batch_size, "cannot keep {rows} of {batch_size} cached samples");
        }
        for layer in &mut self.layers {
            layer.truncate_batch(rows);
        }
        self.batch_size = Some(rows);
    }
}
