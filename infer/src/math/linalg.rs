//! Small dense linear algebra on row-major `f64` slices: the Cholesky factor of a covariance and the
//! triangular products and solves that Gaussian densities, VI (Cholesky parametrisation) and the HMC mass
//! matrix need. Dimensions are the number of model parameters (tens), so plain loops are the right tool.

use anyhow::{Result, bail};

/// Lower Cholesky factor `L` (row-major `n x n`, zeros above the diagonal) with `a = L L^T`.
/// Errors if `a` is not symmetric positive definite (a non-positive or non-finite pivot).
pub fn cholesky(a: &[f64], n: usize) -> Result<Vec<f64>> {
    if a.len() != n * n {
        bail!("cholesky: matrix has {} entries, expected {n}x{n}", a.len());
    }
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if !(s > 0.0 && s.is_finite()) {
                    bail!("cholesky: matrix is not positive definite (pivot {i} is {s:e})");
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Ok(l)
}

/// `y = L x` for lower-triangular `L` (entries above the diagonal are ignored).
pub fn lower_mul(l: &[f64], n: usize, x: &[f64], y: &mut [f64]) {
    for i in 0..n {
        let row = &l[i * n..i * n + i + 1];
        y[i] = row.iter().zip(&x[..=i]).map(|(a, b)| a * b).sum();
    }
}

/// `y = L^T x` for lower-triangular `L`.
pub fn lower_t_mul(l: &[f64], n: usize, x: &[f64], y: &mut [f64]) {
    for (j, yj) in y.iter_mut().enumerate().take(n) {
        *yj = (j..n).map(|i| l[i * n + j] * x[i]).sum();
    }
}

/// Solves `L y = b` (forward substitution) in place: on return `b` holds `y`.
pub fn lower_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * n + k] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// Solves `L^T x = b` (back substitution) in place: on return `b` holds `x`.
pub fn lower_t_solve(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= l[k * n + i] * b[k];
        }
        b[i] = s / l[i * n + i];
    }
}

/// `A B` for lower-triangular `A` and `B` (the product is lower triangular).
pub fn lower_matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            c[i * n + j] = (j..=i).map(|k| a[i * n + k] * b[k * n + j]).sum();
        }
    }
    c
}

/// `L L^T` as a dense row-major matrix (the covariance of a Cholesky factor).
pub fn lower_outer(l: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..=j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            c[i * n + j] = s;
            c[j * n + i] = s;
        }
    }
    c
}

/// `log det(L L^T) = 2 sum_i log L_ii`.
pub fn log_det_from_cholesky(l: &[f64], n: usize) -> f64 {
    2.0 * (0..n).map(|i| l[i * n + i].ln()).sum::<f64>()
}

/// Eigen-decomposition of a symmetric matrix by cyclic Jacobi rotations: `(values, vectors)` with
/// `a = V diag(values) V^T`, eigenvector k in column k of the row-major `vectors`. Accurate to rounding for
/// the tens of dimensions here (each sweep costs O(n^3); 5-10 sweeps).
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut m = a.to_vec();
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    let norm: f64 = m.iter().map(|x| x * x).sum::<f64>().sqrt();
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| m[i * n + j] * m[i * n + j])
            .sum::<f64>()
            .sqrt();
        if !(off > 1e-15 * norm) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (m[q * n + q] - m[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (mkp, mkq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * mkp - s * mkq;
                    m[k * n + q] = s * mkp + c * mkq;
                }
                for k in 0..n {
                    let (mpk, mqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * mpk - s * mqk;
                    m[q * n + k] = s * mpk + c * mqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| m[i * n + i]).collect(), v)
}

/// `f(A) = V diag(f(lambda)) V^T` for symmetric `A` (e.g. its square root) from its decomposition
/// by [`symmetric_eigen`].
pub fn eigen_function(values: &[f64], v: &[f64], n: usize, f: impl Fn(f64) -> f64) -> Vec<f64> {
    let fl: Vec<f64> = values.iter().copied().map(f).collect();
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..n).map(|k| v[i * n + k] * fl[k] * v[j * n + k]).sum();
            out[i * n + j] = s;
            out[j * n + i] = s;
        }
    }
    out
}

/// `A B` for dense row-major `n x n` matrices.
pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            if aik != 0.0 {
                for j in 0..n {
                    c[i * n + j] += aik * b[k * n + j];
                }
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_round_trip_and_solves() {
        let a = [4.0, 2.0, 0.6, 2.0, 5.0, 1.5, 0.6, 1.5, 3.0];
        let l = cholesky(&a, 3).unwrap();
        let back = lower_outer(&l, 3);
        for (x, y) in a.iter().zip(&back) {
            assert!((x - y).abs() < 1e-14);
        }
        let x = [0.3, -1.2, 2.0];
        let mut y = [0.0; 3];
        lower_mul(&l, 3, &x, &mut y);
        lower_solve(&l, 3, &mut y);
        let mut z = [0.0; 3];
        lower_t_mul(&l, 3, &x, &mut z);
        lower_t_solve(&l, 3, &mut z);
        for i in 0..3 {
            assert!((y[i] - x[i]).abs() < 1e-14 && (z[i] - x[i]).abs() < 1e-14);
        }
        // det(a) = 4*(15-2.25) - 2*(6-0.9) + 0.6*(3-3) = 40.8
        assert!((log_det_from_cholesky(&l, 3) - 40.8f64.ln()).abs() < 1e-13);
    }

    #[test]
    fn cholesky_rejects_indefinite() {
        let err = cholesky(&[1.0, 2.0, 2.0, 1.0], 2).unwrap_err().to_string();
        assert!(err.contains("not positive definite"), "{err}");
        assert!(cholesky(&[1.0, f64::NAN, f64::NAN, 1.0], 2).is_err());
    }

    /// Against a hand-built decomposition: a rotation of known eigenvalues (one pair degenerate) is
    /// recovered, and the square root squares back to the matrix.
    #[test]
    fn symmetric_eigen_recovers_a_known_spectrum() {
        let n = 4;
        let values = [3.0, 1e-4, 1e-4, 250.0];
        // an orthogonal Q from two Givens rotations composed with a reflection
        let (c1, s1) = (0.6f64, 0.8f64);
        let (c2, s2) = ((0.3f64).cos(), (0.3f64).sin());
        let g1 = [
            c1, -s1, 0.0, 0.0, s1, c1, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0,
        ];
        let g2 = [
            1.0, 0.0, 0.0, 0.0, 0.0, c2, 0.0, -s2, 0.0, 0.0, -1.0, 0.0, 0.0, s2, 0.0, c2,
        ];
        let q = matmul(&g1, &g2, n);
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n)
                    .map(|k| q[i * n + k] * values[k] * q[j * n + k])
                    .sum();
            }
        }
        let (got, v) = symmetric_eigen(&a, n);
        let mut sorted = got.clone();
        sorted.sort_by(f64::total_cmp);
        for (g, w) in sorted.iter().zip([1e-4, 1e-4, 3.0, 250.0]) {
            assert!((g - w).abs() < 1e-12 * 250.0, "{sorted:?}");
        }
        // V is orthogonal
        let mut vt = vec![0.0; n * n];
        (0..n).for_each(|i| (0..n).for_each(|j| vt[j * n + i] = v[i * n + j]));
        let id = matmul(&vt, &v, n);
        for i in 0..n {
            for j in 0..n {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((id[i * n + j] - want).abs() < 1e-13);
            }
        }
        let root = eigen_function(&got, &v, n, f64::sqrt);
        let back = matmul(&root, &root, n);
        for (x, y) in a.iter().zip(&back) {
            assert!((x - y).abs() < 1e-11, "{x} vs {y}");
        }
    }
}
