//! Stamp preprocessing of Chianese et al. 2020, Sec. 2.2: crop to a centred square, downscale
//! to 64x64 by area averaging, the "signal-to-noise" quantity max(I_1/4)/sigma_noise, and the
//! division by the maximum pixel.
//!
//! Conventions (all images row-major, `data[iy * nx + ix]`):
//! - **Crop**: a `ny x nx` stamp becomes `s x s`, `s = min(ny, nx)`, keeping rows
//!   `y0 .. y0 + s` with `y0 = (ny - s) / 2` (integer division; when the excess is odd the extra
//!   row/column is dropped at the far end) and likewise for columns.
//! - **Area averaging**: output pixel `j` of `m` covers the input interval `[j s/m, (j+1) s/m)`;
//!   each input pixel contributes with the exact length of its overlap divided by `s/m`. The
//!   operation is separable, the weights of each output pixel sum to one (pixel values stay in
//!   the input's surface-brightness units) and the total flux is conserved:
//!   `sum(out) * (s/m)^2 == sum(in)`.
//! - **Noise through the downscale**: for uncorrelated input noise of sigma `σ`, output pixel
//!   `(j, k)` has variance `σ² a_j a_k` with `a_j = Σ_i w_ji²`; we report the mean over output
//!   pixels, `σ_out = σ · mean_j(a_j)` (the RMS of the per-pixel sigmas; exactly `σ m/s` when
//!   `m` divides `s`, slightly below it otherwise because split input pixels make neighbouring
//!   outputs correlated; the area-averaged noise is correlated in any case).

/// The centred `c x c` part of an `s x s` image (`c <= s`; offset `(s - c) / 2` as in [`crop_centre`]).
pub fn crop_square<T: Copy>(s: usize, data: &[T], c: usize) -> Vec<T> {
    assert!(c <= s && data.len() == s * s, "crop_square: {c} of {s}x{s}");
    let o = (s - c) / 2;
    (o..o + c)
        .flat_map(|r| data[r * s + o..r * s + o + c].iter().copied())
        .collect()
}

/// Side length and pixels of the centred square crop of a `ny x nx` image.
pub fn crop_centre<T: Copy>(ny: usize, nx: usize, data: &[T]) -> (usize, Vec<T>) {
    assert_eq!(
        data.len(),
        ny * nx,
        "crop_centre: data does not match {ny}x{nx}"
    );
    let s = ny.min(nx);
    let (y0, x0) = ((ny - s) / 2, (nx - s) / 2);
    let mut out = Vec::with_capacity(s * s);
    for iy in y0..y0 + s {
        out.extend_from_slice(&data[iy * nx + x0..iy * nx + x0 + s]);
    }
    (s, out)
}

/// Area-averaging weights from `s` input pixels to `m` output pixels: for each output pixel a
/// list of `(input index, weight)` with weights summing to one.
pub fn area_weights(s: usize, m: usize) -> Vec<Vec<(usize, f64)>> {
    assert!(s > 0 && m > 0, "area_weights: sizes must be positive");
    let f = s as f64 / m as f64;
    (0..m)
        .map(|j| {
            // Work in units of 1/m input pixels so the boundaries are exact integers.
            let (a, b) = (j * s, (j + 1) * s);
            let (i0, i1) = (a / m, b.div_ceil(m));
            (i0..i1)
                .filter_map(|i| {
                    let lo = (i * m).max(a);
                    let hi = ((i + 1) * m).min(b);
                    (hi > lo).then(|| (i, (hi - lo) as f64 / m as f64 / f))
                })
                .collect()
        })
        .collect()
}

/// Downscale (or upscale) a square `s x s` image to `m x m` by area averaging.
pub fn downscale_area(s: usize, data: &[f64], m: usize) -> Vec<f64> {
    assert_eq!(
        data.len(),
        s * s,
        "downscale_area: data does not match {s}x{s}"
    );
    if s == m {
        return data.to_vec();
    }
    let w = area_weights(s, m);
    // Rows first: (m x s), then columns: (m x m).
    let mut tmp = vec![0.0f64; m * s];
    for (j, wj) in w.iter().enumerate() {
        let row = &mut tmp[j * s..(j + 1) * s];
        for &(i, wi) in wj {
            let src = &data[i * s..(i + 1) * s];
            for (r, v) in row.iter_mut().zip(src) {
                *r += wi * v;
            }
        }
    }
    let mut out = vec![0.0f64; m * m];
    for j in 0..m {
        let src = &tmp[j * s..(j + 1) * s];
        for (k, wk) in w.iter().enumerate() {
            out[j * m + k] = wk.iter().map(|&(i, wi)| wi * src[i]).sum();
        }
    }
    out
}

/// Factor by which uncorrelated pixel noise sigma shrinks through [`downscale_area`] from `s`
/// to `m` pixels: `mean_j(Σ_i w_ji²)` (module docs). Equals `m/s` when `m` divides `s`.
pub fn area_noise_factor(s: usize, m: usize) -> f64 {
    if s == m {
        return 1.0;
    }
    let w = area_weights(s, m);
    w.iter()
        .map(|wj| wj.iter().map(|&(_, x)| x * x).sum::<f64>())
        .sum::<f64>()
        / m as f64
}

/// Block-average a square `n x n` image by `k` (`k` must divide `n`): the paper's `I_1/4` for
/// `k = 4`.
pub fn block_average(n: usize, data: &[f64], k: usize) -> Vec<f64> {
    assert!(
        k > 0 && n.is_multiple_of(k),
        "block_average: {k} does not divide {n}"
    );
    assert_eq!(data.len(), n * n);
    let m = n / k;
    let mut out = vec![0.0f64; m * m];
    for iy in 0..n {
        for ix in 0..n {
            out[(iy / k) * m + ix / k] += data[iy * n + ix];
        }
    }
    let inv = 1.0 / (k * k) as f64;
    out.iter_mut().for_each(|v| *v *= inv);
    out
}

/// Maximum of a slice (NaN-free input assumed; `-inf` when empty).
pub fn max_value(data: &[f64]) -> f64 {
    data.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// Divide an image by its maximum pixel (Sec. 2.2), returning f32 pixels and the maximum.
/// `None` when the maximum is not positive (such a stamp cannot be normalised).
pub fn normalise_by_max(data: &[f64]) -> Option<(Vec<f32>, f64)> {
    let peak = max_value(data);
    (peak > 0.0 && peak.is_finite())
        .then(|| (data.iter().map(|v| (v / peak) as f32).collect(), peak))
}

/// Robust standard deviation of the pixels in a border ring of width `width` of a `ny x nx`
/// stamp: `1.4826 * MAD` (median absolute deviation from the median), which ignores the few
/// galaxy pixels that reach the border. Used for cutouts without a catalog noise estimate.
pub fn border_sigma(ny: usize, nx: usize, data: &[f64], width: usize) -> f64 {
    assert_eq!(data.len(), ny * nx);
    let w = width.max(1).min(ny / 2).min(nx / 2).max(1);
    let mut ring: Vec<f64> = Vec::with_capacity(2 * w * (nx + ny));
    for iy in 0..ny {
        for ix in 0..nx {
            if iy < w || ix < w || iy >= ny.saturating_sub(w) || ix >= nx.saturating_sub(w) {
                ring.push(data[iy * nx + ix]);
            }
        }
    }
    let med = median(&mut ring);
    let mut dev: Vec<f64> = ring.iter().map(|v| (v - med).abs()).collect();
    1.482_602_218_505_602 * median(&mut dev)
}

/// Median (sorts in place; mean of the two middle values for even lengths).
fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_crop_is_centred() {
        let d: Vec<usize> = (0..36).collect();
        assert_eq!(crop_square(6, &d, 2), vec![14, 15, 20, 21]);
        assert_eq!(crop_square(6, &d, 3), vec![7, 8, 9, 13, 14, 15, 19, 20, 21]);
        assert_eq!(crop_square(6, &d, 6), d);
    }

    #[test]
    fn crop_is_centred() {
        // 5 rows x 8 cols, value = 10*row + col.
        let d: Vec<i32> = (0..5)
            .flat_map(|r| (0..8).map(move |c| 10 * r + c))
            .collect();
        let (s, c) = crop_centre(5, 8, &d);
        assert_eq!(s, 5);
        // (8-5)/2 = 1: columns 1..6.
        assert_eq!(&c[..5], &[1, 2, 3, 4, 5]);
        assert_eq!(&c[20..], &[41, 42, 43, 44, 45]);
        // Tall stamp: 7 x 4 keeps rows 1..5.
        let d: Vec<i32> = (0..7)
            .flat_map(|r| (0..4).map(move |c| 10 * r + c))
            .collect();
        let (s, c) = crop_centre(7, 4, &d);
        assert_eq!((s, c[0], c[15]), (4, 10, 43));
    }

    #[test]
    fn area_average_hand_example() {
        // 3 -> 2: output 0 covers input [0, 1.5): weights 2/3, 1/3; output 1: 1/3, 2/3.
        let w = area_weights(3, 2);
        assert_eq!(w[0].len(), 2);
        assert!((w[0][0].1 - 2.0 / 3.0).abs() < 1e-15 && (w[0][1].1 - 1.0 / 3.0).abs() < 1e-15);
        assert_eq!((w[1][0].0, w[1][1].0), (1, 2));
        let img = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
        let out = downscale_area(3, &img, 2);
        // Top-left: rows (2/3 r0 + 1/3 r1) -> [2, 3, 4]; cols (2/3, 1/3) -> 2*2/3 + 3/3 = 7/3.
        assert!((out[0] - 7.0 / 3.0).abs() < 1e-12, "{out:?}");
        assert!((out[3] - (8.0 - 1.0 / 3.0)).abs() < 1e-12, "{out:?}");
    }

    #[test]
    fn area_average_conserves_flux() {
        for &(s, m) in &[
            (101usize, 64usize),
            (64, 64),
            (233, 64),
            (128, 64),
            (70, 64),
            (40, 64),
        ] {
            let img: Vec<f64> = (0..s * s)
                .map(|i| ((i * 7919) % 1000) as f64 / 999.0)
                .collect();
            let out = downscale_area(s, &img, m);
            let scale = (s as f64 / m as f64).powi(2);
            let (a, b) = (img.iter().sum::<f64>(), out.iter().sum::<f64>() * scale);
            assert!((a - b).abs() < 1e-9 * a, "s={s}: {a} vs {b}");
        }
        // Integer factor: plain 2x2 block means, and the noise factor is exactly m/s.
        let img: Vec<f64> = (0..16).map(|i| i as f64).collect();
        assert_eq!(downscale_area(4, &img, 2), vec![2.5, 4.5, 10.5, 12.5]);
        assert!((area_noise_factor(128, 64) - 0.5).abs() < 1e-15);
        assert!((area_noise_factor(64, 64) - 1.0).abs() < 1e-15);
        // Non-integer factors split input pixels between outputs: the per-pixel sigma drops
        // below m/s (the outputs become correlated instead).
        let f = area_noise_factor(101, 64);
        assert!(f > 0.45 && f < 64.0 / 101.0, "{f}");
    }

    #[test]
    fn noise_factor_matches_monte_carlo() {
        // Deterministic pseudo-noise (LCG, Box-Muller-free uniform ±√3 has unit variance).
        let (s, m) = (101usize, 64usize);
        let mut state = 12345u64;
        let mut acc = 0.0;
        let trials = 40;
        for _ in 0..trials {
            let img: Vec<f64> = (0..s * s)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 12f64.sqrt()
                })
                .collect();
            let out = downscale_area(s, &img, m);
            acc += out.iter().map(|v| v * v).sum::<f64>() / (m * m) as f64;
        }
        let measured = (acc / trials as f64).sqrt();
        // RMS sigma_out = sigma * sqrt(mean(a_j a_k)) = sigma * mean(a_j) for separable weights.
        let predicted = area_noise_factor(s, m);
        assert!(
            (measured / predicted - 1.0).abs() < 0.02,
            "{measured} vs {predicted}"
        );
    }

    #[test]
    fn block_average_and_normalise() {
        let img: Vec<f64> = (0..16).map(|i| i as f64).collect();
        assert_eq!(block_average(4, &img, 2), vec![2.5, 4.5, 10.5, 12.5]);
        let (n, peak) = normalise_by_max(&[1.0, 4.0, -2.0]).unwrap();
        assert_eq!((n, peak), (vec![0.25, 1.0, -0.5], 4.0));
        assert!(normalise_by_max(&[-1.0, 0.0]).is_none());
    }

    #[test]
    fn border_sigma_ignores_centre() {
        // Border alternates ±1 (MAD = 1), centre a huge galaxy.
        let n = 20;
        let img: Vec<f64> = (0..n * n)
            .map(|i| {
                let (y, x) = (i / n, i % n);
                if (4..16).contains(&y) && (4..16).contains(&x) {
                    1e6
                } else if (x + y) % 2 == 0 {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect();
        assert!((border_sigma(n, n, &img, 3) - 1.482_602_218_505_602).abs() < 1e-12);
    }
}
