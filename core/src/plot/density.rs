//! Sample densities for posterior plots: 1-D and 2-D histograms, Gaussian smoothing, the
//! density thresholds that enclose given probability mass (credible levels), and drawing
//! the resulting credible regions as filled, outlined areas.
//!
//! Credible regions are highest-density regions of the binned, lightly smoothed sample
//! density: sort the bin masses in decreasing order and accumulate them; the level for
//! probability p is the mass of the bin at which the running sum first reaches p times the
//! total. The region {density >= level} then holds a fraction p of the samples.

use super::style::{self, Rgb, err};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Linear-interpolation quantile `q` in [0, 1] of an ascending slice (NaN if empty).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let i = pos.floor() as usize;
    let j = (i + 1).min(sorted.len() - 1);
    let f = pos - i as f64;
    sorted[i] * (1.0 - f) + sorted[j] * f
}

/// Bin index of `v` among `bins` equal bins over [lo, hi]; `hi` itself goes into the last
/// bin; values outside (or NaN) give None.
fn bin_of(v: f64, lo: f64, hi: f64, bins: usize) -> Option<usize> {
    if !(v >= lo && v <= hi) || bins == 0 || hi <= lo {
        return None;
    }
    Some((((v - lo) / (hi - lo) * bins as f64) as usize).min(bins - 1))
}

/// Counts of the finite values in each of `bins` equal bins over [lo, hi].
pub fn histogram_1d(
    values: impl IntoIterator<Item = f64>,
    lo: f64,
    hi: f64,
    bins: usize,
) -> Vec<f64> {
    let mut h = vec![0.0; bins];
    for v in values {
        if let Some(i) = bin_of(v, lo, hi, bins) {
            h[i] += 1.0;
        }
    }
    h
}

/// Counts of points in an `nx` x `ny` grid of bins over `xlim` x `ylim`; index
/// `iy * nx + ix`, with iy = 0 the lowest y. Points outside or with NaN are ignored.
pub fn histogram_2d(
    points: impl IntoIterator<Item = (f64, f64)>,
    xlim: (f64, f64),
    ylim: (f64, f64),
    nx: usize,
    ny: usize,
) -> Vec<f64> {
    let mut h = vec![0.0; nx * ny];
    for (x, y) in points {
        if let (Some(ix), Some(iy)) = (bin_of(x, xlim.0, xlim.1, nx), bin_of(y, ylim.0, ylim.1, ny))
        {
            h[iy * nx + ix] += 1.0;
        }
    }
    h
}

/// Normalised Gaussian kernel of standard deviation `sigma` (in bins), cut at 3 sigma.
fn kernel(sigma: f64) -> Vec<f64> {
    let r = (3.0 * sigma).ceil().max(0.0) as i64;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Convolve a 1-D sequence with a Gaussian of `sigma` bins (zero outside); sigma <= 0
/// returns a copy.
pub fn gaussian_smooth_1d(v: &[f64], sigma: f64) -> Vec<f64> {
    if sigma.is_nan() || sigma <= 0.0 {
        return v.to_vec();
    }
    let k = kernel(sigma);
    let r = (k.len() / 2) as i64;
    (0..v.len() as i64)
        .map(|i| {
            k.iter()
                .enumerate()
                .filter_map(|(j, w)| {
                    let s = i + j as i64 - r;
                    (s >= 0 && s < v.len() as i64).then(|| w * v[s as usize])
                })
                .sum()
        })
        .collect()
}

/// Separable Gaussian smoothing of an `nx` x `ny` grid (row-major, `iy * nx + ix`).
pub fn gaussian_smooth_2d(v: &[f64], nx: usize, ny: usize, sigma: f64) -> Vec<f64> {
    if sigma.is_nan() || sigma <= 0.0 || v.len() != nx * ny {
        return v.to_vec();
    }
    let mut rows = Vec::with_capacity(v.len());
    for iy in 0..ny {
        rows.extend(gaussian_smooth_1d(&v[iy * nx..(iy + 1) * nx], sigma));
    }
    let mut out = vec![0.0; v.len()];
    for ix in 0..nx {
        let col: Vec<f64> = (0..ny).map(|iy| rows[iy * nx + ix]).collect();
        for (iy, c) in gaussian_smooth_1d(&col, sigma).into_iter().enumerate() {
            out[iy * nx + ix] = c;
        }
    }
    out
}

/// Density thresholds enclosing probability `probs[i]` of the total mass of `density`
/// (bins of equal area): the highest-density region {bin >= level_i} holds at least
/// `probs[i]` of the mass. Returned in the order of `probs`; an all-zero grid gives
/// +infinity (no region).
pub fn credible_levels(density: &[f64], probs: &[f64]) -> Vec<f64> {
    let mut sorted: Vec<f64> = density
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
    let total: f64 = sorted.iter().sum();
    probs
        .iter()
        .map(|&p| {
            if total <= 0.0 {
                return f64::INFINITY;
            }
            let target = p.clamp(0.0, 1.0) * total;
            let mut cum = 0.0;
            for &v in &sorted {
                cum += v;
                if cum >= target {
                    return v;
                }
            }
            *sorted.last().unwrap()
        })
        .collect()
}

/// How credible regions are drawn.
#[derive(Clone, Copy, Debug)]
pub struct RegionStyle<'a> {
    pub colour: Rgb,
    /// Fill opacity of each region, outermost (lowest level) first; 0 for no fill.
    pub fill_alpha: &'a [f32],
    /// Draw the boundary of every region in `colour`.
    pub outline: bool,
}

/// Draw the credible regions of a density grid (`nx` x `ny` bins spanning the pixel box
/// `(x, y, w, h)` of `area`, index `iy * nx + ix`, iy = 0 lowest): each pixel takes
/// the bilinearly interpolated density, counts how many of `levels` it reaches, and is filled at
/// that region's opacity; region boundaries are outlined one pixel wide.
#[allow(clippy::too_many_arguments)]
pub fn draw_credible_regions<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x0, y0, w, h): (i32, i32, i32, i32),
    density: &[f64],
    (nx, ny): (usize, usize),
    levels: &[f64],
    style: RegionStyle,
) -> Result<()> {
    if density.len() != nx * ny || nx == 0 || ny == 0 || w <= 0 || h <= 0 {
        return Ok(());
    }
    let mut lv: Vec<f64> = levels.iter().copied().filter(|l| l.is_finite()).collect();
    lv.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if lv.is_empty() {
        return Ok(());
    }
    // pixel centre (i, j) of the box -> continuous bin coordinates with bin centres at integers
    let sample = |i: usize, j: usize| -> f64 {
        let fx = ((i as f64 + 0.5) / w as f64 * nx as f64 - 0.5).clamp(0.0, (nx - 1) as f64);
        let fy =
            ((1.0 - (j as f64 + 0.5) / h as f64) * ny as f64 - 0.5).clamp(0.0, (ny - 1) as f64);
        let (ix, iy) = (fx.floor() as usize, fy.floor() as usize);
        let (jx, jy) = ((ix + 1).min(nx - 1), (iy + 1).min(ny - 1));
        let (tx, ty) = (fx - ix as f64, fy - iy as f64);
        let d = |x: usize, y: usize| density[y * nx + x];
        (d(ix, iy) * (1.0 - tx) + d(jx, iy) * tx) * (1.0 - ty)
            + (d(ix, jy) * (1.0 - tx) + d(jx, jy) * tx) * ty
    };
    let (w, h) = (w as usize, h as usize);
    let mut band = vec![0u8; w * h];
    for j in 0..h {
        for i in 0..w {
            band[j * w + i] = lv.iter().filter(|&&l| sample(i, j) >= l).count() as u8;
        }
    }
    let c = style::colour(style.colour);
    for j in 0..h {
        for i in 0..w {
            let b = band[j * w + i] as usize;
            if b == 0 {
                continue;
            }
            let edge = style.outline
                && ((i > 0 && (band[j * w + i - 1] as usize) < b)
                    || (i + 1 < w && (band[j * w + i + 1] as usize) < b)
                    || (j > 0 && (band[(j - 1) * w + i] as usize) < b)
                    || (j + 1 < h && (band[(j + 1) * w + i] as usize) < b));
            let alpha = if edge {
                1.0
            } else {
                match style.fill_alpha.get(b - 1) {
                    Some(&a) => a as f64,
                    None => continue,
                }
            };
            let at = (x0 + i as i32, y0 + j as i32);
            area.draw_pixel(at, &c.mix(alpha)).map_err(err)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    fn gaussian_pairs(n: usize, seed: u64) -> Vec<(f64, f64)> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                // Box-Muller: two independent standard normals.
                let u1: f64 = 1.0 - rng.random::<f64>();
                let u2: f64 = rng.random::<f64>();
                let r = (-2.0 * u1.ln()).sqrt();
                let t = 2.0 * std::f64::consts::PI * u2;
                (r * t.cos(), r * t.sin())
            })
            .collect()
    }

    #[test]
    fn level_68_encloses_68_percent_of_a_gaussian_sample() {
        let pts = gaussian_pairs(20_000, 7);
        let (n, lim) = (40, (-4.5, 4.5));
        let raw = histogram_2d(pts.iter().copied(), lim, lim, n, n);
        let dens = gaussian_smooth_2d(&raw, n, n, 1.0);
        let levels = credible_levels(&dens, &[0.68, 0.95, 0.99]);
        assert!(levels[0] > levels[1] && levels[1] > levels[2]);
        for (p, l) in [0.68, 0.95, 0.99].iter().zip(&levels) {
            let inside = pts
                .iter()
                .filter(|&&(x, y)| {
                    let ix = bin_of(x, lim.0, lim.1, n);
                    let iy = bin_of(y, lim.0, lim.1, n);
                    matches!((ix, iy), (Some(ix), Some(iy)) if dens[iy * n + ix] >= *l)
                })
                .count() as f64
                / pts.len() as f64;
            assert!((inside - p).abs() < 0.02, "level for {p}: {inside}");
        }
        // The 68% region of a unit 2-D Gaussian is the disc r < sqrt(-2 ln 0.32) = 1.51
        // (a bit wider after smoothing): the bin at r ~ 1.3 is inside, r ~ 1.9 outside.
        let at = |x: f64| dens[(n / 2) * n + bin_of(x, lim.0, lim.1, n).unwrap()];
        assert!(at(1.3) >= levels[0] && at(1.9) < levels[0]);
    }

    #[test]
    fn levels_of_empty_and_single_bin_grids() {
        assert_eq!(credible_levels(&[0.0; 9], &[0.68]), vec![f64::INFINITY]);
        let mut one = vec![0.0; 9];
        one[4] = 5.0;
        assert_eq!(credible_levels(&one, &[0.68, 0.99]), vec![5.0, 5.0]);
    }

    #[test]
    fn histograms_skip_nan_and_outside_and_smoothing_keeps_mass() {
        let h = histogram_1d([0.0, 0.5, 1.0, f64::NAN, 2.0, -0.1], 0.0, 1.0, 4);
        assert_eq!(h, vec![1.0, 0.0, 1.0, 1.0]);
        let mut g = vec![0.0; 15 * 15];
        g[7 * 15 + 7] = 1.0;
        let s = gaussian_smooth_2d(&g, 15, 15, 1.5);
        assert!((s.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(s[7 * 15 + 7] < 1.0 && s[7 * 15 + 8] > 0.0);
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert_eq!(quantile_sorted(&[1.0, 3.0], 0.25), 1.5);
    }

    #[test]
    fn regions_fill_the_middle_of_the_panel() {
        let pts = gaussian_pairs(5_000, 3);
        let (n, lim) = (30, (-4.0, 4.0));
        let dens = gaussian_smooth_2d(&histogram_2d(pts, lim, lim, n, n), n, n, 1.0);
        let levels = credible_levels(&dens, &[0.68, 0.95]);
        let mut c = crate::png::Canvas::new(100, 100, style::WHITE);
        let region = RegionStyle {
            colour: [0, 0, 255],
            fill_alpha: &[0.3, 0.6],
            outline: true,
        };
        style::draw_on(&mut c, |area| {
            let b = (0, 0, 100, 100);
            draw_credible_regions(area, b, &dens, (n, n), &levels, region)
        })
        .unwrap();
        assert_ne!(c.rgb[50 * 100 + 50], style::WHITE);
        assert_eq!(c.rgb[2 * 100 + 2], style::WHITE);
        // An outline pixel (full colour) exists on the row through the centre.
        assert!((0..100).any(|x| c.rgb[50 * 100 + x] == [0, 0, 255]));
    }
}
