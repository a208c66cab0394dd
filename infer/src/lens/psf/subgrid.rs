//! A pixelated PSF kernel on a supersampled grid: lenstronomy's `kernel_util.subgrid_kernel`
//! (lenstronomy 1.14, `odd=True`), which the GIGA-Lens simulator uses (with its default 100
//! iterations) to convolve on the sub-pixel grid, and lenstronomy's `PSF` class (with 5).
//!
//! The kernel is bilinearly interpolated onto the finer grid, then corrected iteratively so that
//! averaging it back to the pixel grid reproduces the input kernel; for odd factors the residual
//! is finally spread over each pixel's sub-pixels. The result has `n k` (`n k - 1` when even)
//! sub-pixels per axis and unit sum.

/// GIGA-Lens's number of correction iterations (lenstronomy's default argument).
pub const GIGALENS_ITERATIONS: usize = 100;

/// A row-major `[ny, nx]` kernel.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelGrid {
    pub ny: usize,
    pub nx: usize,
    pub values: Vec<f64>,
}

impl KernelGrid {
    fn at(&self, i: usize, j: usize) -> f64 {
        self.values[i * self.nx + j]
    }
    fn normalised(mut self) -> Self {
        let s: f64 = self.values.iter().sum();
        self.values.iter_mut().for_each(|v| *v /= s);
        self
    }
}

/// `linspace(d / 2, 1 - d / 2, n)` with `d = 1 / m` (lenstronomy's cell centres on [0, 1]).
fn centres(n: usize, m: usize) -> Vec<f64> {
    let d = 1.0 / m as f64;
    let (a, b) = (d / 2.0, 1.0 - d / 2.0);
    if n == 1 {
        return vec![a];
    }
    (0..n)
        .map(|i| a + (b - a) * i as f64 / (n - 1) as f64)
        .collect()
}

/// Piecewise-linear interpolation weights of `x` on the sorted nodes `xs`, clamped at the ends
/// (scipy's `RectBivariateSpline(kx=1, ky=1, s=0)` evaluates its end values outside the nodes).
fn weights(xs: &[f64], x: f64) -> (usize, usize, f64) {
    let n = xs.len();
    if n == 1 || x <= xs[0] {
        return (0, 0, 0.0);
    }
    if x >= xs[n - 1] {
        return (n - 1, n - 1, 0.0);
    }
    let i = xs.partition_point(|&v| v <= x).saturating_sub(1).min(n - 2);
    let t = (x - xs[i]) / (xs[i + 1] - xs[i]);
    (i, i + 1, t)
}

/// Bilinear re-sampling of `k` (values at `x_in` x `y_in`, axis 0 = x) at `x_out` x `y_out`.
fn resample(
    k: &KernelGrid,
    x_in: &[f64],
    y_in: &[f64],
    x_out: &[f64],
    y_out: &[f64],
) -> KernelGrid {
    let wy: Vec<_> = y_out.iter().map(|&y| weights(y_in, y)).collect();
    let mut values = Vec::with_capacity(x_out.len() * y_out.len());
    for &x in x_out {
        let (i0, i1, tx) = weights(x_in, x);
        for &(j0, j1, ty) in &wy {
            let a = k.at(i0, j0) * (1.0 - ty) + k.at(i0, j1) * ty;
            let b = k.at(i1, j0) * (1.0 - ty) + k.at(i1, j1) * ty;
            values.push(a * (1.0 - tx) + b * tx);
        }
    }
    KernelGrid {
        ny: x_out.len(),
        nx: y_out.len(),
        values,
    }
}

/// lenstronomy's `util.averaging`: mean over `s x s` blocks (odd factors).
fn block_mean(k: &KernelGrid, s: usize) -> KernelGrid {
    let (ny, nx) = (k.ny / s, k.nx / s);
    let mut values = vec![0.0; ny * nx];
    for i in 0..k.ny {
        for j in 0..k.nx {
            values[(i / s) * nx + j / s] += k.at(i, j);
        }
    }
    let inv = 1.0 / (s * s) as f64;
    values.iter_mut().for_each(|v| *v *= inv);
    KernelGrid { ny, nx, values }
}

/// lenstronomy's `averaging_even_kernel`: an odd `n s - 1` sub-grid kernel back to `n` pixels,
/// for even `s`, where the last sub-pixel of each group straddles two pixels (shared by halves,
/// and quarters at corners).
fn average_even(k: &KernelGrid, s: usize) -> KernelGrid {
    let n_in = k.ny;
    let mut n_low = ((n_in as f64 / s as f64 + 0.5).round_ties_even()) as usize;
    if n_low.is_multiple_of(2) {
        n_low += 1;
    }
    let n_high = n_low * s - 1;
    let off = (n_high - n_in) / 2;
    let e = |i: usize, j: usize| -> f64 {
        if i < off || j < off || i >= off + n_in || j >= off + n_in {
            0.0
        } else {
            k.at(i - off, j - off)
        }
    };
    let mut low = vec![0.0; n_low * n_low];
    let mut add = |a: usize, b: usize, v: f64| low[a * n_low + b] += v;
    for a in 0..n_low {
        for b in 0..n_low {
            for i in 0..s - 1 {
                for j in 0..s - 1 {
                    add(a, b, e(a * s + i, b * s + j));
                }
            }
        }
    }
    // straddling rows (i = s - 1) and columns (j = s - 1): halves to both neighbours
    for a in 0..n_low - 1 {
        for b in 0..n_low {
            for j in 0..s - 1 {
                let v = e(a * s + s - 1, b * s + j) / 2.0;
                add(a + 1, b, v);
                add(a, b, v);
                let v = e(b * s + j, a * s + s - 1) / 2.0;
                add(b, a + 1, v);
                add(b, a, v);
            }
        }
    }
    for a in 0..n_low - 1 {
        for b in 0..n_low - 1 {
            let v = e(a * s + s - 1, b * s + s - 1) / 4.0;
            add(a + 1, b + 1, v);
            add(a, b + 1, v);
            add(a + 1, b, v);
            add(a, b, v);
        }
    }
    let inv = 1.0 / (s * s) as f64;
    low.iter_mut().for_each(|v| *v *= inv);
    KernelGrid {
        ny: n_low,
        nx: n_low,
        values: low,
    }
}

/// The kernel `k` (square, odd) on a grid `s` times finer, unit sum (`subgrid_kernel(k, s,
/// odd=True, num_iter=iterations)`).
pub fn subgrid_kernel(k: &KernelGrid, s: usize, iterations: usize) -> KernelGrid {
    let k = k.clone().normalised();
    if s <= 1 {
        return k;
    }
    let (nx, ny) = (k.ny, k.nx); // lenstronomy: nx, ny = np.shape(kernel)
    let x_in = centres(nx, nx);
    let y_in = centres(ny, nx); // lenstronomy spaces y with 1 / nx as well
    let odd = |n: usize| if n.is_multiple_of(2) { n - 1 } else { n };
    let (nx_new, ny_new) = (odd(nx * s), odd(ny * s));
    let x_out = centres(nx_new, nx_new);
    let y_out = centres(ny_new, ny_new);
    let mut input = k.clone();
    let mut sub = resample(&input, &x_in, &y_in, &x_out, &y_out).normalised();
    for _ in 0..iterations.max(1) {
        let pixel = if s.is_multiple_of(2) {
            average_even(&sub, s)
        } else {
            block_mean(&sub, s)
        };
        let temp = KernelGrid {
            values: (0..k.values.len())
                .map(|i| input.values[i] + k.values[i] - pixel.values[i])
                .collect(),
            ..k.clone()
        };
        sub = resample(&temp, &x_in, &y_in, &x_out, &y_out).normalised();
        input = temp;
    }
    if s.is_multiple_of(2) {
        return sub;
    }
    let pixel = block_mean(&sub, s).normalised();
    let inv = 1.0 / (s * s) as f64;
    let values = (0..sub.values.len())
        .map(|p| {
            let (i, j) = (p / sub.nx, p % sub.nx);
            let q = (i / s) * k.nx + j / s;
            sub.values[p] - (pixel.values[q] - k.values[q]) * inv
        })
        .collect();
    KernelGrid { values, ..sub }.normalised()
}
