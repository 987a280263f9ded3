//! Matmuls on host memory with the gemm crate.
//!
//! The weights of the decode step's linear layers are stored as [`PackedMatrix`]: panels of
//! [`PANEL`] output columns, each a contiguous `[d_input, PANEL]` block. A decode step has few
//! rows (2 to 64), so its matmuls read far more weight bytes than they do arithmetic; the gemm
//! crate reads a panel front to back (hardware prefetchers follow it), whereas the rows of a
//! plain `[d_input, d_output]` matrix are `d_output` floats apart, which made a cold-cache
//! matmul of 8–32 rows 1.7–2.3× slower (measured, docs/benchmarks.md). The panels are split over
//! the rayon threads; each runs single-threaded gemm calls on its panels.

/// Output columns per panel: the gemm crate's micro-kernel height on AVX-512 (4 × 16 f32), so a
/// panel is read in one sweep.
pub const PANEL: usize = 64;

/// A `[k, n]` weight matrix (Burn's `Linear` layout `[d_input, d_output]`) stored as panels of
/// [`PANEL`] columns: panel `b` holds columns `b·PANEL … min((b+1)·PANEL, n)` as a contiguous
/// row-major `[k, cols]` block.
#[derive(Debug, Clone, PartialEq)]
pub struct PackedMatrix {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedMatrix {
    /// Packs a row-major `[k, n]` matrix.
    ///
    /// # Panics
    ///
    /// If `w.len() != k · n`.
    pub fn from_row_major(w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "w is not [{k}, {n}]");
        let mut data = Vec::with_capacity(k * n);
        for c0 in (0..n).step_by(PANEL) {
            let cols = PANEL.min(n - c0);
            for row in w.chunks(n) {
                data.extend_from_slice(&row[c0..c0 + cols]);
            }
        }
        Self { k, n, data }
    }

    /// Rows (`d_input`).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns (`d_output`).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes of the stored weights.
    pub fn bytes(&self) -> usize {
        4 * self.data.len()
    }

    /// `y[m, n] = x[m, k] · self`, both row-major, overwriting `y`; the panels are split over the
    /// rayon threads.
    ///
    /// # Panics
    ///
    /// If `x` is not `[m, k]` or `y` not `[m, n]`.
    #[allow(unsafe_code)]
    pub fn matmul(&self, x: &[f32], y: &mut [f32], m: usize) {
        let (k, n) = (self.k, self.n);
        assert_eq!(x.len(), m * k, "x is not [{m}, {k}]");
        assert_eq!(y.len(), m * n, "y is not [{m}, {n}]");
        if m == 0 || n == 0 {
            return;
        }
        let panels = n.div_ceil(PANEL);
        let threads = rayon::current_num_threads().clamp(1, panels);
        let per_thread = panels.div_ceil(threads);
        // Raw addresses so the closures are `Send` (see the SAFETY note for the bounds).
        let (xp, wp, yp) =
            (x.as_ptr() as usize, self.data.as_ptr() as usize, y.as_mut_ptr() as usize);
        let run = |first: usize| {
            for b in first..(first + per_thread).min(panels) {
                let c0 = b * PANEL;
                let cols = PANEL.min(n - c0);
                // SAFETY: x holds m·k and y m·n f32 (asserted above); panel b starts at k·c0 in
                // `data` (every earlier panel holds k·PANEL values) and holds k·cols values. The
                // call computes yᵀ[c0 .. c0+cols, 0 .. m] = panelᵀ · xᵀ: it reads the panel
                // (column stride cols, row stride 1), x (element (kk, i) at i·k + kk) and writes
                // y's columns c0 .. c0+cols of every row (element (j, i) at i·n + c0 + j), all in
                // bounds. The threads own disjoint panel ranges, so their writes never alias,
                // and `y` is borrowed mutably (`x`, `self` immutably) for the whole call.
                unsafe {
                    gemm::gemm(
                        cols,
                        m,
                        k,
                        (yp as *mut f32).add(c0),
                        n as isize,
                        1,
                        false,
                        (wp as *const f32).add(k * c0),
                        cols as isize,
                        1,
                        xp as *const f32,
                        k as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
        };
        if threads == 1 {
            run(0);
        } else {
            use rayon::prelude::*;
            (0..threads).into_par_iter().for_each(|t| run(t * per_thread));
        }
    }
}

/// `y[m, n] = x[m, k] · wᵀ` where `w` is `[n, k]` row-major (attention scores `q · Kᵀ`), on the
/// calling thread.
///
/// # Panics
///
/// If a slice length does not match its shape.
#[allow(unsafe_code)]
pub fn matmul_transposed(x: &[f32], w: &[f32], y: &mut [f32], m: usize, k: usize, n: usize) {
    assert_eq!(x.len(), m * k, "x is not [{m}, {k}]");
    assert_eq!(w.len(), n * k, "w is not [{n}, {k}]");
    assert_eq!(y.len(), m * n, "y is not [{m}, {n}]");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: lengths asserted above; `w` is read as the k×n matrix with element (kk, j) at
    // j·k + kk, inside its n·k values; `y` is written row-major inside its m·n values.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            y.as_mut_ptr(),
            1,
            n as isize,
            false,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `y[m, n] = x[m, k] · w[k, n]` on the calling thread (attention `P · V`).
///
/// # Panics
///
/// If a slice length does not match its shape.
#[allow(unsafe_code)]
pub fn matmul_serial(x: &[f32], w: &[f32], y: &mut [f32], m: usize, k: usize, n: usize) {
    assert_eq!(x.len(), m * k, "x is not [{m}, {k}]");
    assert_eq!(w.len(), k * n, "w is not [{k}, {n}]");
    assert_eq!(y.len(), m * n, "y is not [{m}, {n}]");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: lengths asserted above; all three are dense row-major matrices inside their slices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            y.as_mut_ptr(),
            1,
            n as isize,
            false,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], w: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = (0..k)
                    .map(|kk| x[i * k + kk] as f64 * w[kk * n + j] as f64)
                    .sum::<f64>() as f32;
            }
        }
        y
    }

    #[test]
    fn every_shape_matches_the_definition() {
        // Column counts below, at and above a panel and the thread split, odd sizes.
        for (m, k, n) in [
            (1, 3, 1),
            (2, 64, 17),
            (3, 33, 100),
            (32, 96, 257),
            (5, 8, 1000),
            (64, 20, 64),
            (7, 5, 129),
        ] {
            let x: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1).collect();
            let w: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 13) as f32 - 6.0) * 0.05).collect();
            let expected = naive(&x, &w, m, k, n);
            let mut y = vec![f32::NAN; m * n];
            PackedMatrix::from_row_major(&w, k, n).matmul(&x, &mut y, m);
            let mut z = vec![f32::NAN; m * n];
            matmul_serial(&x, &w, &mut z, m, k, n);
            // wᵀ stored [n, k]: the same product through matmul_transposed.
            let wt: Vec<f32> = (0..n * k).map(|i| w[(i % k) * n + i / k]).collect();
            let mut t = vec![f32::NAN; m * n];
            matmul_transposed(&x, &wt, &mut t, m, k, n);
            for (got, what) in [(&y, "matmul"), (&z, "serial"), (&t, "transposed")] {
                let err = got
                    .iter()
                    .zip(&expected)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f32, |m, d| if d.is_nan() { f32::INFINITY } else { m.max(d) });
                assert!(err < 1e-4, "{what} {m}×{k}×{n}: max error {err}");
            }
        }
    }
}
