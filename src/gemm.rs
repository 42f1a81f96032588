//! Matrix views and the one GEMM entry point the cells use for their big, hoisted products.
//!
//! Views carry their strides, so a transpose is free (`Mat::t`). The wrapper checks, once per
//! call, that every addressed element lies inside the slices: that is what makes it safe, and it
//! costs a few comparisons against a product of thousands of flops.

use crate::float::Float;

/// A read-only strided matrix view.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mat<'a, F> {
    data: &'a [F],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, F: Float> Mat<'a, F> {
    /// A row-major `[rows, cols]` matrix at the start of `data`.
    pub(crate) fn new(data: &'a [F], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose (no data moves).
    pub(crate) fn t(self) -> Self {
        Mat {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

/// A mutable strided matrix view.
#[derive(Debug)]
pub(crate) struct MatMut<'a, F> {
    data: &'a mut [F],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a, F: Float> MatMut<'a, F> {
    /// A row-major `[rows, cols]` matrix at the start of `data`.
    pub(crate) fn new(data: &'a mut [F], rows: usize, cols: usize) -> Self {
        MatMut {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }
}

/// Largest element index a view addresses plus one (0 for an empty view).
fn extent(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * rs + (cols - 1) * cs + 1
    }
}

/// `C = alpha * A B + beta * C`. `C` is not read when `beta == 0`, so it may hold anything.
///
/// Panics only on an internal shape bug (a mismatched product or a view outside its slice);
/// public functions validate shapes before they get here.
pub(crate) fn gemm<F: Float>(alpha: F, a: Mat<'_, F>, b: Mat<'_, F>, beta: F, c: MatMut<'_, F>) {
    assert!(
        a.cols == b.rows && c.rows == a.rows && c.cols == b.cols,
        "gemm shape bug: [{}x{}] x [{}x{}] -> [{}x{}]",
        a.rows,
        a.cols,
        b.rows,
        b.cols,
        c.rows,
        c.cols
    );
    assert!(
        extent(a.rows, a.cols, a.rs, a.cs) <= a.data.len()
            && extent(b.rows, b.cols, b.rs, b.cs) <= b.data.len()
            && extent(c.rows, c.cols, c.rs, c.cs) <= c.data.len(),
        "gemm view bug: a view reaches past its slice"
    );
    if c.rows == 0 || c.cols == 0 {
        return;
    }
    // Slice lengths are at most isize::MAX elements, so every stride converts losslessly.
    let s = |v: usize| v as isize;
    // SAFETY: the asserts above prove every element addressed through the shapes and strides
    // lies inside its slice; `c` is a `&mut` borrow, so it cannot overlap `a` or `b`.
    unsafe {
        F::gemm_raw(
            a.rows,
            a.cols,
            b.cols,
            alpha,
            a.data.as_ptr(),
            s(a.rs),
            s(a.cs),
            b.data.as_ptr(),
            s(b.rs),
            s(b.cs),
            beta,
            c.data.as_mut_ptr(),
            s(c.rs),
            s(c.cs),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemm_matches_loops_with_transposes() {
        let (m, k, n) = (3, 5, 4);
        let a: Vec<f64> = (0..m * k).map(|i| i as f64 * 0.5 - 3.0).collect();
        let bt: Vec<f64> = (0..n * k).map(|i| (i as f64).sin()).collect(); // [n, k]
        let mut c = vec![1.0; m * n];
        gemm(
            2.0,
            Mat::new(&a, m, k),
            Mat::new(&bt, n, k).t(),
            0.5,
            MatMut::new(&mut c, m, n),
        );
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k).map(|p| a[i * k + p] * bt[j * k + p]).sum();
                assert!((c[i * n + j] - (2.0 * dot + 0.5)).abs() < 1e-12);
            }
        }
    }
}
