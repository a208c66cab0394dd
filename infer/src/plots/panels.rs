//! The lens-fit figure of Chianese et al. (2020), Figs. 6-7: for each fitted system (one row,
//! e.g. one S/N value) the observation, the model image, the residual normalised by the
//! noise sigma, the true source, the fitted source and the source residual normalised by
//! 10 per cent of the true source's maximum.
//!
//! As in the paper, the observation and the model share one colour scale within a row, and
//! so do the true and fitted sources. Images use the viridis map (dark blue to bright
//! yellow); the residuals use a diverging map with limits symmetric about zero, so zero is
//! white. Rows whose true source is unknown (real data) leave the true-source and
//! source-residual cells empty.

use anyhow::{Result, bail};
use arclight_core::plot::grid::{GridOptions, Panel, finite_min_max, render_grid};
use arclight_core::png::{diverging, viridis};
use std::path::Path;

/// The observation noise used to normalise the image residual.
#[derive(Clone, Copy, Debug)]
pub enum NoiseSigma<'a> {
    /// One sigma for every pixel (background noise sigma_bkg).
    Scalar(f32),
    /// A per-pixel sigma map, same shape as the observation (e.g. including Poisson noise).
    Map(&'a [f32]),
}

/// One row of the figure. Image-plane arrays have shape (ny, nx), source-plane arrays
/// (src_ny, src_nx); all are row-major with row 0 at the TOP of the picture. The true and
/// fitted sources must be sampled on the same grid.
#[derive(Clone, Debug)]
pub struct FitRow<'a> {
    /// Row label, e.g. "S/N = 30" (markup allowed); empty for none.
    pub label: String,
    pub ny: usize,
    pub nx: usize,
    /// The observed (noisy) image, or the true image for a noise-free comparison.
    pub observed: &'a [f32],
    /// The model image at the fitted parameters.
    pub model: &'a [f32],
    pub sigma: NoiseSigma<'a>,
    pub src_ny: usize,
    pub src_nx: usize,
    /// The true source (mocks only).
    pub true_source: Option<&'a [f32]>,
    /// The fitted source on the same grid as the true one.
    pub fit_source: Option<&'a [f32]>,
    /// Image-plane extent (x_left, x_right, y_bottom, y_top) in arcsec, for axis ticks.
    pub image_extent: Option<[f64; 4]>,
    /// Source-plane extent in arcsec, for axis ticks.
    pub source_extent: Option<[f64; 4]>,
}

/// Figure-wide options.
#[derive(Clone, Debug)]
pub struct FitFigureOptions {
    /// Title across the top; empty for none.
    pub title: String,
    /// Side of each image panel in pixels.
    pub panel_px: usize,
    /// Size of titles and labels in pixels.
    pub font_px: f64,
    /// Symmetric colour limit of the image residual in units of sigma; None = the 99.5th
    /// percentile of |residual| rounded up to a nice number, per row.
    pub residual_limit: Option<f32>,
    /// Symmetric colour limit of the source residual in units of 10% of the source maximum;
    /// None = automatic as for the image residual.
    pub source_residual_limit: Option<f32>,
}

impl Default for FitFigureOptions {
    fn default() -> Self {
        FitFigureOptions {
            title: String::new(),
            panel_px: 220,
            font_px: 16.0,
            residual_limit: None,
            source_residual_limit: None,
        }
    }
}

/// Column titles (markup).
const TITLES: [&str; 6] = [
    "observation",
    "model",
    "(obs - model)/σ",
    "true source",
    "fitted source",
    "(true - fit)/(0.1 max)",
];

/// Smallest of 1, 2, 2.5, 5 times a power of ten that is >= v (v > 0), for residual limits.
fn nice_ceil(v: f32) -> f32 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let mag = 10f32.powf(v.log10().floor());
    let m = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|&m| m * mag >= v * (1.0 - 1e-6))
        .unwrap_or(10.0);
    m * mag
}

/// Automatic symmetric limit: the 99.5th percentile of |r| over finite pixels, rounded up.
fn auto_symmetric_limit(r: &[f32]) -> f32 {
    let mut a: Vec<f32> = r
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| v.abs())
        .collect();
    if a.is_empty() {
        return 1.0;
    }
    a.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let q = a[((a.len() - 1) as f64 * 0.995).round() as usize];
    nice_ceil(q.max(a[a.len() - 1] * 1e-3))
}

/// Shared colour limits of two images (finite min and max over both).
fn shared_limits(a: &[f32], b: &[f32]) -> (f32, f32) {
    let (l1, h1) = finite_min_max(a);
    let (l2, h2) = finite_min_max(b);
    (l1.min(l2), h1.max(h2))
}

/// Check one array's length against its declared shape.
fn check(row: &FitRow, what: &str, data: &[f32], ny: usize, nx: usize) -> Result<()> {
    if ny == 0 || nx == 0 || data.len() != ny * nx {
        bail!(
            "lens-fit figure, row '{}': {what} has {} values but its shape is {ny}x{nx}",
            row.label,
            data.len()
        );
    }
    Ok(())
}

/// The panels of the figure, one row per fit (see the module docs); titles only where a
/// column first shows something. Errors name the row and the array whose size is wrong.
pub fn lens_fit_panels(rows: &[FitRow], opts: &FitFigureOptions) -> Result<Vec<Vec<Panel>>> {
    if rows.is_empty() {
        bail!("lens-fit figure: no rows to draw");
    }
    let any_true = rows.iter().any(|r| r.true_source.is_some());
    let any_fit = rows.iter().any(|r| r.fit_source.is_some());
    // Column k of the output shows TITLES[cols[k]].
    let cols: Vec<usize> = match (any_true, any_fit) {
        (true, true) => vec![0, 1, 2, 3, 4, 5],
        (true, false) => vec![0, 1, 2, 3],
        (false, true) => vec![0, 1, 2, 4],
        (false, false) => vec![0, 1, 2],
    };
    let mut titled = [false; 6];
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (ny, nx) = (row.ny, row.nx);
        check(row, "observed image", row.observed, ny, nx)?;
        check(row, "model image", row.model, ny, nx)?;
        match row.sigma {
            NoiseSigma::Map(s) => check(row, "noise sigma map", s, ny, nx)?,
            NoiseSigma::Scalar(s) if !(s > 0.0 && s.is_finite()) => bail!(
                "lens-fit figure, row '{}': noise sigma must be positive and finite, got {s}",
                row.label
            ),
            NoiseSigma::Scalar(_) => {}
        }
        if let Some(t) = row.true_source {
            check(row, "true source", t, row.src_ny, row.src_nx)?;
        }
        if let Some(f) = row.fit_source {
            check(row, "fitted source", f, row.src_ny, row.src_nx)?;
        }

        let mut cells: [Option<Panel>; 6] = Default::default();
        let (lo, hi) = shared_limits(row.observed, row.model);
        let img = |d: &[f32]| {
            let p = Panel::new("", d.to_vec(), ny, nx, viridis).with_limits(lo, hi);
            match row.image_extent {
                Some(e) => p.with_extent(e),
                None => p,
            }
        };
        cells[0] = Some(img(row.observed));
        cells[1] = Some(img(row.model).with_colour_bar());

        // Residual in units of sigma; non-positive sigma pixels are left out (NaN).
        let resid: Vec<f32> = (0..ny * nx)
            .map(|i| {
                let s = match row.sigma {
                    NoiseSigma::Scalar(s) => s,
                    NoiseSigma::Map(m) => m[i],
                };
                if s > 0.0 {
                    (row.observed[i] - row.model[i]) / s
                } else {
                    f32::NAN
                }
            })
            .collect();
        let lim = opts
            .residual_limit
            .unwrap_or_else(|| auto_symmetric_limit(&resid));
        let mut p = Panel::new("", resid, ny, nx, diverging)
            .with_limits(-lim, lim)
            .with_colour_bar();
        if let Some(e) = row.image_extent {
            p = p.with_extent(e);
        }
        cells[2] = Some(p);

        let src = |d: &[f32], lo: f32, hi: f32| {
            let p = Panel::new("", d.to_vec(), row.src_ny, row.src_nx, viridis).with_limits(lo, hi);
            match row.source_extent {
                Some(e) => p.with_extent(e),
                None => p,
            }
        };
        match (row.true_source, row.fit_source) {
            (Some(t), Some(f)) => {
                let (lo, hi) = shared_limits(t, f);
                cells[3] = Some(src(t, lo, hi));
                cells[4] = Some(src(f, lo, hi).with_colour_bar());
                let (_, tmax) = finite_min_max(t);
                let norm = 0.1 * tmax;
                let r: Vec<f32> = t
                    .iter()
                    .zip(f)
                    .map(|(a, b)| if norm > 0.0 { (a - b) / norm } else { f32::NAN })
                    .collect();
                let lim = opts
                    .source_residual_limit
                    .unwrap_or_else(|| auto_symmetric_limit(&r));
                let mut p = Panel::new("", r, row.src_ny, row.src_nx, diverging)
                    .with_limits(-lim, lim)
                    .with_colour_bar();
                if let Some(e) = row.source_extent {
                    p = p.with_extent(e);
                }
                cells[5] = Some(p);
            }
            (Some(t), None) => {
                let (lo, hi) = finite_min_max(t);
                cells[3] = Some(src(t, lo, hi).with_colour_bar());
            }
            (None, Some(f)) => {
                let (lo, hi) = finite_min_max(f);
                cells[4] = Some(src(f, lo, hi).with_colour_bar());
            }
            (None, None) => {}
        }

        let mut panels = Vec::with_capacity(cols.len());
        for &c in &cols {
            match cells[c].take() {
                Some(mut p) => {
                    if !titled[c] {
                        p.title = TITLES[c].to_string();
                        titled[c] = true;
                    }
                    panels.push(p);
                }
                None => panels.push(Panel::blank()),
            }
        }
        out.push(panels);
    }
    Ok(out)
}

/// Write the lens-fit figure (paper Figs. 6-7) for `rows` to the PNG `path`, atomically.
pub fn lens_fit_figure(path: &Path, rows: &[FitRow], opts: &FitFigureOptions) -> Result<()> {
    let panels = lens_fit_panels(rows, opts)?;
    let grid = GridOptions {
        title: opts.title.clone(),
        row_labels: rows.iter().map(|r| r.label.clone()).collect(),
        panel_px: opts.panel_px,
        font_px: opts.font_px,
    };
    render_grid(&panels, &grid)?.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring image (an Einstein ring of radius r0) on an n x n grid over [-2.5, 2.5]".
    fn ring(n: usize, r0: f32, noise_seed: u32) -> Vec<f32> {
        let mut state = noise_seed.wrapping_mul(2654435761).max(1);
        (0..n * n)
            .map(|i| {
                let (iy, ix) = (i / n, i % n);
                let x = (ix as f32 + 0.5) / n as f32 * 5.0 - 2.5;
                let y = 2.5 - (iy as f32 + 0.5) / n as f32 * 5.0;
                let r = (x * x + y * y).sqrt();
                // Brighter on the upper side, so orientation errors would show.
                let v = (-(r - r0).powi(2) / 0.05).exp() * (1.0 + 0.5 * (y > 0.0) as u8 as f32);
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                v + if noise_seed > 0 {
                    (state as f32 / u32::MAX as f32 - 0.5) * 0.2
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn blob(n: usize, w: f32, dx: f32) -> Vec<f32> {
        (0..n * n)
            .map(|i| {
                let (iy, ix) = (i / n, i % n);
                let x = (ix as f32 + 0.5) / n as f32 * 2.0 - 1.0 - dx;
                let y = 1.0 - (iy as f32 + 0.5) / n as f32 * 2.0;
                (-(x * x + 2.0 * y * y) / w).exp()
            })
            .collect()
    }

    #[test]
    fn mock_and_real_rows_render_with_aligned_columns() {
        let n = 64;
        let obs = ring(n, 1.2, 3);
        let model = ring(n, 1.2, 0);
        let (ts, fs) = (blob(32, 0.1, 0.0), blob(32, 0.12, 0.05));
        let mock = FitRow {
            label: "S/N = 30".into(),
            ny: n,
            nx: n,
            observed: &obs,
            model: &model,
            sigma: NoiseSigma::Scalar(0.1 / 12f32.sqrt()),
            src_ny: 32,
            src_nx: 32,
            true_source: Some(&ts),
            fit_source: Some(&fs),
            image_extent: Some([-2.5, 2.5, -2.5, 2.5]),
            source_extent: Some([-1.0, 1.0, -1.0, 1.0]),
        };
        let real = FitRow {
            label: "real data".into(),
            sigma: NoiseSigma::Scalar(0.03),
            true_source: None,
            image_extent: None,
            source_extent: None,
            ..mock.clone()
        };
        let rows = vec![mock, real];
        let panels = lens_fit_panels(&rows, &FitFigureOptions::default()).unwrap();
        assert_eq!(panels.len(), 2);
        assert!(panels.iter().all(|r| r.len() == 6));
        assert!(panels[1][3].is_blank() && panels[1][5].is_blank() && !panels[1][4].is_blank());
        // Shared scale of observation and model; symmetric residual limits.
        assert_eq!(panels[0][0].limits, panels[0][1].limits);
        let (rl, rh) = panels[0][2].limits.unwrap();
        assert_eq!(rl, -rh);
        assert_eq!(panels[0][3].limits, panels[0][4].limits);
        assert_eq!(panels[0][2].title, TITLES[2]);
        // Residuals: image in units of sigma, source in units of 10% of the true maximum.
        let sigma = 0.1 / 12f32.sqrt();
        let k = 40 * n + 17;
        assert!((panels[0][2].data[k] - (obs[k] - model[k]) / sigma).abs() < 1e-5);
        assert!((panels[1][2].data[k] - (obs[k] - model[k]) / 0.03).abs() < 1e-5);
        let tmax = ts.iter().cloned().fold(f32::MIN, f32::max);
        let j = 16 * 32 + 20;
        assert!((panels[0][5].data[j] - (ts[j] - fs[j]) / (0.1 * tmax)).abs() < 1e-5);
        assert!(
            panels[1][0].title.is_empty(),
            "titles only on the first row showing a column"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fit.png");
        lens_fit_figure(&path, &rows, &FitFigureOptions::default()).unwrap();
        let img = image::open(&path).unwrap();
        assert!(img.width() > 6 * 220 && img.height() > 2 * 220);
        if let Some(d) = std::env::var_os("ARCLIGHT_FIGURE_DIR") {
            let opts = FitFigureOptions {
                title: "Mock system 1: MAP fit".into(),
                ..Default::default()
            };
            lens_fit_figure(&Path::new(&d).join("lens_fit.png"), &rows, &opts).unwrap();
        }
    }

    #[test]
    fn real_data_only_has_four_columns_and_bad_sizes_are_named() {
        let obs = vec![1.0f32; 16];
        let fit = vec![0.5f32; 4];
        let row = FitRow {
            label: "HST".into(),
            ny: 4,
            nx: 4,
            observed: &obs,
            model: &obs,
            sigma: NoiseSigma::Map(&obs),
            src_ny: 2,
            src_nx: 2,
            true_source: None,
            fit_source: Some(&fit),
            image_extent: None,
            source_extent: None,
        };
        let p = lens_fit_panels(std::slice::from_ref(&row), &FitFigureOptions::default()).unwrap();
        assert_eq!(p[0].len(), 4);
        let bad = FitRow {
            model: &obs[..15],
            ..row.clone()
        };
        let e = lens_fit_panels(&[bad], &FitFigureOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HST") && e.contains("model image") && e.contains("15"),
            "{e}"
        );
        let bad = FitRow {
            sigma: NoiseSigma::Scalar(0.0),
            ..row
        };
        assert!(lens_fit_panels(&[bad], &FitFigureOptions::default()).is_err());
    }

    #[test]
    fn nice_limits() {
        assert_eq!(nice_ceil(3.7), 5.0);
        assert_eq!(nice_ceil(2.0), 2.0);
        assert_eq!(nice_ceil(0.013), 0.02);
        assert_eq!(auto_symmetric_limit(&[f32::NAN, -1.5, 0.2]), 2.0);
    }
}
