//! [`AttendMask`]: a square boolean attention mask in the "true = may attend" polarity.

/// A `len × len` boolean attention mask, row-major, **true = the query (row) may attend to the key
/// (column)**, as the reference's PyTorch `group_mask`.
///
/// Burn's attention takes the opposite polarity (true = masked out); convert only with
/// [`crate::tensor::masked_tensor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendMask {
    len: usize,
    attend: Vec<bool>,
}

impl AttendMask {
    /// Builds the mask from `attend(query, key)`.
    pub fn from_fn(len: usize, attend: impl Fn(usize, usize) -> bool) -> Self {
        let attend = (0..len * len).map(|i| attend(i / len, i % len)).collect();
        Self { len, attend }
    }

    /// Rows (= columns).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mask has no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `query` may attend to `key`.
    ///
    /// # Panics
    ///
    /// If either index is `≥ len`.
    pub fn get(&self, query: usize, key: usize) -> bool {
        assert!(
            query < self.len && key < self.len,
            "({query}, {key}) outside a {0}×{0} mask",
            self.len
        );
        self.attend[query * self.len + key]
    }

    /// One row: what `query` may attend to.
    pub fn row(&self, query: usize) -> &[bool] {
        &self.attend[query * self.len..(query + 1) * self.len]
    }

    /// All entries, row-major.
    pub fn as_slice(&self) -> &[bool] {
        &self.attend
    }
}
