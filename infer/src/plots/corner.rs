//! Corner plot of posterior samples, as Chianese et al. (2020) Figs. 8-9: a lower-triangle
//! grid with the normalised 1-D marginal of each parameter on the diagonal and, below it,
//! the 2-D marginals of every pair as shaded 68 / 95 / 99 % credible regions (with their
//! outlines and, optionally, the sampled points). Several sample sets (e.g. VI and HMC, or
//! several S/N values) overlay in their own colours; true values are black dashed lines and
//! black squares.
//!
//! Credible regions come from a 2-D histogram smoothed by a Gaussian of about one bin; the
//! density level of each region is found by sorting bin masses
//! ([`arclight_core::plot::density::credible_levels`]). Draws with NaN or infinite values
//! are skipped (per parameter, or per pair in 2-D) and counted in the legend; parameters
//! that never moved get a small range around their value.

use anyhow::{Result, bail};
use arclight_core::plot::axes::{self, Ticks};
use arclight_core::plot::density::{
    RegionStyle, credible_levels, draw_credible_regions, gaussian_smooth_2d, histogram_1d,
    histogram_2d, quantile_sorted,
};
use arclight_core::plot::safe_range;
use arclight_core::plot::style::{self, Align, GREY, WHITE, err, label};
use arclight_core::png::Canvas;
use plotters::prelude::*;
use std::path::Path;

/// One set of posterior draws to overlay.
#[derive(Clone, Copy, Debug)]
pub struct SampleSet<'a> {
    /// Legend label, e.g. "VI" or "HMC".
    pub label: &'a str,
    pub colour: [u8; 3],
    /// Draw-major samples: `samples[d][p]` is parameter p of draw d.
    pub samples: &'a [Vec<f64>],
}

/// Options of [`corner_plot_with`]; [`Default`] gives the paper's look.
#[derive(Clone, Debug)]
pub struct CornerOptions {
    /// Title across the top; empty for none.
    pub title: String,
    /// Probabilities of the credible regions (any order).
    pub levels: Vec<f64>,
    /// Plot the sampled points under the regions.
    pub show_points: bool,
    /// At most this many points per set and panel (evenly thinned).
    pub max_points: usize,
    /// Side of each panel in pixels; None = from the number of parameters.
    pub panel_px: Option<usize>,
    /// Size of parameter names in pixels; None = from the panel size (11 to 17).
    pub font_px: Option<f64>,
    /// Histogram bins on the diagonal; None = from the number of draws (10 to 40).
    pub bins_1d: Option<usize>,
    /// Bins per axis of the 2-D histograms; None = from the number of draws (8 to 30).
    pub bins_2d: Option<usize>,
    /// Gaussian smoothing of the 2-D histograms, in bins.
    pub smooth_2d: f64,
    /// Typeset names (`theta_E` -> θ_E, see [`super::pretty_name`]).
    pub pretty_names: bool,
    /// Fixed (lo, hi) range per parameter; None = 0.1-99.9 % quantiles of all sets plus the
    /// truth, padded by 8 %.
    pub ranges: Option<Vec<(f64, f64)>>,
}

impl Default for CornerOptions {
    fn default() -> Self {
        CornerOptions {
            title: String::new(),
            levels: vec![0.68, 0.95, 0.99],
            show_points: true,
            max_points: 3000,
            panel_px: None,
            font_px: None,
            bins_1d: None,
            bins_2d: None,
            smooth_2d: 1.0,
            pretty_names: true,
            ranges: None,
        }
    }
}

/// One panel of a rendered corner plot: its pixel box and the data ranges it shows.
#[derive(Clone, Copy, Debug)]
pub struct PanelBox {
    /// (x, y, w, h) in canvas pixels.
    pub rect: (i32, i32, i32, i32),
    pub xlim: (f64, f64),
    pub ylim: (f64, f64),
}

impl PanelBox {
    /// Canvas column of data value `x`.
    pub fn x_to_px(&self, x: f64) -> f64 {
        self.rect.0 as f64 + (x - self.xlim.0) / (self.xlim.1 - self.xlim.0) * self.rect.2 as f64
    }
}

/// Where each panel of a rendered corner plot is: `axes[row][col]` for col <= row (row =
/// y parameter, col = x parameter; the diagonal holds the 1-D marginals).
#[derive(Clone, Debug)]
pub struct CornerLayout {
    pub axes: Vec<Vec<Option<PanelBox>>>,
}

/// Fill opacity of the credible regions, outermost (99 %) first.
const REGION_ALPHA: [f32; 3] = [0.12, 0.25, 0.45];

/// Per-set finite columns and the number of draws with a non-finite value.
struct Prepared<'a> {
    set: &'a SampleSet<'a>,
    columns: Vec<Vec<f64>>,
    skipped: usize,
}

fn prepare<'a>(set: &'a SampleSet<'a>, n: usize) -> Result<Prepared<'a>> {
    let mut columns = vec![Vec::with_capacity(set.samples.len()); n];
    let mut skipped = 0;
    for (d, draw) in set.samples.iter().enumerate() {
        if draw.len() != n {
            bail!(
                "corner plot: set '{}', draw {d} has {} values but there are {n} parameter names",
                set.label,
                draw.len()
            );
        }
        if draw.iter().any(|v| !v.is_finite()) {
            skipped += 1;
        }
        for (p, &v) in draw.iter().enumerate() {
            if v.is_finite() {
                columns[p].push(v);
            }
        }
    }
    Ok(Prepared {
        set,
        columns,
        skipped,
    })
}

/// Range shown for parameter `p`: union over sets of the 0.1-99.9 % quantiles, plus the
/// truth, padded by 8 % each side (so the 99 % regions of a Gaussian fit inside);
/// degenerate ranges are widened.
fn auto_range(prep: &[Prepared], p: usize, truth: Option<f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in prep {
        let mut v = s.columns[p].clone();
        if v.is_empty() {
            continue;
        }
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        lo = lo.min(quantile_sorted(&v, 0.001));
        hi = hi.max(quantile_sorted(&v, 0.999));
    }
    if let Some(t) = truth.filter(|t| t.is_finite()) {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    let (lo, hi) = safe_range(lo, hi);
    let pad = 0.08 * (hi - lo);
    (lo - pad, hi + pad)
}

/// Render the corner plot on a canvas; see [`corner_plot_with`].
pub fn render_corner(
    names: &[&str],
    sets: &[SampleSet],
    truths: Option<&[f64]>,
    opts: &CornerOptions,
) -> Result<(Canvas, CornerLayout)> {
    let n = names.len();
    if n == 0 {
        bail!("corner plot: no parameter names given");
    }
    if let Some(t) = truths.filter(|t| t.len() != n) {
        bail!("corner plot: {} truth values for {n} parameters", t.len());
    }
    if let Some(r) = opts.ranges.as_ref().filter(|r| r.len() != n) {
        bail!("corner plot: {} ranges for {n} parameters", r.len());
    }
    let prep: Vec<Prepared> = sets.iter().map(|s| prepare(s, n)).collect::<Result<_>>()?;
    let truth = |p: usize| truths.map(|t| t[p]).filter(|v| v.is_finite());
    let ranges: Vec<(f64, f64)> = (0..n)
        .map(|p| match &opts.ranges {
            Some(r) => safe_range(r[p].0, r[p].1),
            None => auto_range(&prep, p, truth(p)),
        })
        .collect();
    let label_of = |p: usize| {
        if opts.pretty_names {
            super::pretty_name(names[p])
        } else {
            names[p].to_string()
        }
    };

    // Sizes.
    let panel = opts
        .panel_px
        .unwrap_or_else(|| (1500 / n).clamp(80, 240))
        .max(40) as i32;
    let f = opts
        .font_px
        .unwrap_or((panel as f64 / 8.0).clamp(13.0, 18.0));
    let (name_style, tick_style, note_style) = (
        style::text(f),
        style::text(0.8 * f),
        style::text_in(0.9 * f, GREY),
    );
    let gap = (0.3 * f) as i32;
    let margin = f as i32;
    let max_draws = prep
        .iter()
        .flat_map(|p| p.columns.iter().map(|c| c.len()))
        .max()
        .unwrap_or(0);
    let bins1 = opts
        .bins_1d
        .unwrap_or(((max_draws as f64).sqrt() as usize).clamp(10, 40))
        .max(1);
    let bins2 = opts
        .bins_2d
        .unwrap_or(((max_draws as f64).sqrt() as usize / 2).clamp(8, 30))
        .max(2);

    // As many ticks per panel as their labels fit side by side (2 to 5).
    let n_ticks = |p: usize| {
        let one = Ticks {
            x: 5,
            y: 5,
            font: tick_style,
            inside: true,
        };
        let w = axes::label_room(ranges[p], &one).0 as i32;
        (panel / (w + 4)).clamp(2, 5) as usize
    };
    let ticks: Vec<usize> = (0..n).map(n_ticks).collect();
    let room = |i: usize, j: usize| {
        let t = Ticks {
            x: if i == n - 1 { ticks[j] } else { 0 },
            y: if j == 0 && i != j { ticks[i] } else { 0 },
            font: tick_style,
            inside: true,
        };
        let r = axes::label_room(ranges[i], &t);
        (t, r)
    };
    let ytick_w = (1..n).map(|i| room(i, 0).1.0).max().unwrap_or(0) as i32;
    let xtick_h = (0..n).map(|j| room(n - 1, j).1.1).max().unwrap_or(0) as i32;
    // names read across under the columns and upwards beside the rows when they fit there
    let names_w: Vec<i32> = (0..n)
        .map(|p| style::label_width(&label_of(p), &name_style) as i32)
        .collect();
    let widest = names_w.iter().copied().max().unwrap_or(0);
    let fits = widest <= panel + gap;
    let name_room = if fits { (1.3 * f) as i32 } else { widest + gap };
    let title_h = if opts.title.is_empty() {
        0
    } else {
        (2.0 * f) as i32
    };
    let left = margin + if n > 1 { name_room + gap + ytick_w } else { 0 };
    let top = margin + title_h;
    let grid_w = n as i32 * panel + (n as i32 - 1) * gap;
    let bottom = xtick_h + gap + name_room + margin;

    // Legend lines: (swatch colour or None for a note, text).
    let mut legend: Vec<(Option<[u8; 3]>, String)> = Vec::new();
    for p in &prep {
        legend.push((Some(p.set.colour), p.set.label.to_string()));
        let finite = p.set.samples.len() - p.skipped;
        if p.skipped > 0 {
            legend.push((
                None,
                format!(
                    "{} of {} draws have NaN/inf (skipped)",
                    p.skipped,
                    p.set.samples.len()
                ),
            ));
        } else if finite == 0 {
            legend.push((None, "no draws".to_string()));
        }
    }
    if truths.is_some() {
        legend.push((Some(style::BLACK), "truth".to_string()));
    }
    if n > 1 && !opts.levels.is_empty() && sets.iter().any(|s| !s.samples.is_empty()) {
        let pcts: Vec<String> = opts
            .levels
            .iter()
            .map(|l| format!("{}", (l * 100.0).round()))
            .collect();
        legend.push((None, format!("regions: {} %", pcts.join(", "))));
    }
    let line_h = (1.5 * f) as i32;
    let swatch = (0.8 * f) as i32;
    let legend_w = legend
        .iter()
        .map(|(_, t)| style::label_width(t, &name_style) as i32)
        .max()
        .map_or(0, |w| w + swatch + 2 * gap + 4);
    let legend_h = legend.len() as i32 * line_h;
    // Legend in the empty upper triangle, from column max(1, n/2) of the first row; with a
    // single parameter there is no triangle and it goes above the panel.
    let (legend_x, legend_y, extra_h) = if n == 1 {
        (left, top, legend_h + gap)
    } else {
        (left + (n / 2).max(1) as i32 * (panel + gap), top, 0)
    };
    let extra_w = (legend_w - (left + grid_w - legend_x)).max(0);
    let top_grid = top + extra_h;
    let title_w = style::label_width(&opts.title, &name_style) as i32;
    let width = (left + grid_w + extra_w + margin).max(title_w + 2 * margin);
    let height = top_grid + n as i32 * panel + (n as i32 - 1) * gap + bottom;
    let mut canvas = Canvas::new(width as usize, height as usize, WHITE);

    let mut layout = CornerLayout {
        axes: vec![vec![None; n]; n],
    };
    let levels = &opts.levels;
    let black = style::colour(style::BLACK);
    style::draw_on(&mut canvas, |root| {
        if !opts.title.is_empty() {
            // centred over the grid, shifted if it would leave the canvas
            let cx = (left + grid_w / 2).clamp(margin + title_w / 2, width - margin - title_w / 2);
            label(
                root,
                &opts.title,
                &name_style,
                (cx, margin),
                Align::Centre,
                Align::Start,
                false,
            )?;
        }
        for i in 0..n {
            for j in 0..=i {
                let rect = (
                    left + j as i32 * (panel + gap),
                    top_grid + i as i32 * (panel + gap),
                    panel,
                    panel,
                );
                let (t, r) = room(i, j);
                let area = axes::area_for(root, rect, r);
                let (xlim, ylim) = if i == j {
                    // 1-D marginal, normalised to unit area
                    let (lo, hi) = ranges[j];
                    let width_bin = (hi - lo) / bins1 as f64;
                    let hists: Vec<Vec<f64>> = prep
                        .iter()
                        .map(|p| {
                            let h = histogram_1d(p.columns[j].iter().copied(), lo, hi, bins1);
                            let total: f64 = p.columns[j].len() as f64 * width_bin;
                            h.into_iter()
                                .map(|c| if total > 0.0 { c / total } else { 0.0 })
                                .collect()
                        })
                        .collect();
                    let ymax = hists.iter().flatten().fold(0f64, |a, &b| a.max(b));
                    let ylim = (0.0, if ymax > 0.0 { 1.1 * ymax } else { 1.0 });
                    let mut ax = axes::axes(root, &area, r, ranges[j], ylim, &t)?;
                    for (p, h) in prep.iter().zip(&hists) {
                        if p.columns[j].is_empty() {
                            continue;
                        }
                        let mut steps = vec![(lo, 0.0)];
                        for (k, &v) in h.iter().enumerate() {
                            let x0 = lo + k as f64 * width_bin;
                            steps.extend([(x0, v), (x0 + width_bin, v)]);
                        }
                        steps.push((hi, 0.0));
                        let c = style::colour(p.set.colour);
                        ax.draw_series([Polygon::new(steps.clone(), c.mix(0.15).filled())])
                            .map_err(err)?;
                        ax.draw_series(LineSeries::new(steps, c.stroke_width(2)))
                            .map_err(err)?;
                    }
                    if let Some(tv) = truth(j) {
                        let line = [(tv, ylim.0), (tv, ylim.1)];
                        ax.draw_series(DashedLineSeries::new(line, 6, 4, black.stroke_width(2)))
                            .map_err(err)?;
                    }
                    axes::frame(root, &ax)?;
                    (ranges[j], ylim)
                } else {
                    let mut ax = axes::axes(root, &area, r, ranges[j], ranges[i], &t)?;
                    let pix = axes::pixel_box(&ax);
                    for p in &prep {
                        let pairs: Vec<(f64, f64)> = p
                            .set
                            .samples
                            .iter()
                            .map(|d| (d[j], d[i]))
                            .filter(|(x, y)| x.is_finite() && y.is_finite())
                            .collect();
                        let c = style::colour(p.set.colour);
                        let step = pairs.len().div_ceil(opts.max_points.max(1)).max(1);
                        if opts.show_points && !pairs.is_empty() {
                            let dots = pairs.iter().step_by(step);
                            let dots = dots.map(|&q| Circle::new(q, 1, c.mix(0.35).filled()));
                            ax.draw_series(dots).map_err(err)?;
                        }
                        // A parameter that never moved has no 2-D density: its points (a line)
                        // say it all, and smoothing would invent a spread.
                        let spread = |f: fn(&(f64, f64)) -> f64| {
                            let (lo, hi) = pairs
                                .iter()
                                .map(f)
                                .fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
                                    (a.0.min(v), a.1.max(v))
                                });
                            hi > lo
                        };
                        let degenerate = !spread(|p| p.0) || !spread(|p| p.1);
                        if degenerate {
                            let dots = pairs.iter().step_by(step);
                            let dots = dots.map(|&q| Circle::new(q, 2, c.mix(0.8).filled()));
                            ax.draw_series(dots).map_err(err)?;
                        }
                        if !levels.is_empty() && pairs.len() >= 3 && !degenerate {
                            let h = histogram_2d(
                                pairs.iter().copied(),
                                ranges[j],
                                ranges[i],
                                bins2,
                                bins2,
                            );
                            let dens = gaussian_smooth_2d(&h, bins2, bins2, opts.smooth_2d);
                            let lv = credible_levels(&dens, levels);
                            let k = lv.len().min(REGION_ALPHA.len());
                            let region = RegionStyle {
                                colour: p.set.colour,
                                fill_alpha: &REGION_ALPHA[REGION_ALPHA.len() - k..],
                                outline: true,
                            };
                            draw_credible_regions(root, pix, &dens, (bins2, bins2), &lv, region)?;
                        }
                    }
                    let dashed = |a, b| DashedLineSeries::new([a, b], 6, 4, black.stroke_width(2));
                    if let Some(tx) = truth(j) {
                        ax.draw_series(dashed((tx, ranges[i].0), (tx, ranges[i].1)))
                            .map_err(err)?;
                    }
                    if let Some(ty) = truth(i) {
                        ax.draw_series(dashed((ranges[j].0, ty), (ranges[j].1, ty)))
                            .map_err(err)?;
                    }
                    if let (Some(tx), Some(ty)) = (truth(j), truth(i)) {
                        let s = (0.25 * f) as i32;
                        let sq = EmptyElement::at((tx, ty))
                            + Rectangle::new([(-s, -s), (s, s)], black.filled());
                        ax.draw_series([sq]).map_err(err)?;
                    }
                    axes::frame(root, &ax)?;
                    (ranges[j], ranges[i])
                };
                layout.axes[i][j] = Some(PanelBox { rect, xlim, ylim });
                let (cx, cy) = (rect.0 + panel / 2, rect.1 + panel / 2);
                if i == n - 1 {
                    let y = rect.1 + panel + xtick_h + gap;
                    let (c, s) = (Align::Centre, Align::Start);
                    label(root, &label_of(j), &name_style, (cx, y), c, s, !fits)?;
                }
                if j == 0 && i > 0 {
                    let x = left - ytick_w - gap;
                    let (e, c) = (Align::End, Align::Centre);
                    label(root, &label_of(i), &name_style, (x, cy), e, c, fits)?;
                }
            }
        }
        // legend
        let x = legend_x + gap;
        for (k, (c, t)) in legend.iter().enumerate() {
            let y = legend_y + k as i32 * line_h + line_h / 2;
            let tx = x + swatch + 2 * gap;
            match c {
                Some(c) => {
                    let sq = [(x, y - swatch / 2), (x + swatch, y + swatch / 2)];
                    root.draw(&Rectangle::new(sq, style::colour(*c).filled()))
                        .map_err(err)?;
                    label(
                        root,
                        t,
                        &name_style,
                        (tx, y),
                        Align::Start,
                        Align::Centre,
                        false,
                    )?;
                }
                None => label(
                    root,
                    t,
                    &note_style,
                    (tx, y),
                    Align::Start,
                    Align::Centre,
                    false,
                )?,
            }
        }
        Ok(())
    })?;
    Ok((canvas, layout))
}

/// Corner plot with the default options (see [`CornerOptions`]), written atomically to `path`.
pub fn corner_plot(
    path: &Path,
    names: &[&str],
    sets: &[SampleSet],
    truths: Option<&[f64]>,
) -> Result<()> {
    corner_plot_with(path, names, sets, truths, &CornerOptions::default())
}

/// Corner plot of `sets` over the parameters `names` (paper Figs. 8-9), with optional true
/// values, written atomically to the PNG `path`. Errors when a draw's length differs from
/// the number of names, or truths/ranges have the wrong length; NaN values never error.
pub fn corner_plot_with(
    path: &Path,
    names: &[&str],
    sets: &[SampleSet],
    truths: Option<&[f64]>,
    opts: &CornerOptions,
) -> Result<()> {
    let (canvas, _) = render_corner(names, sets, truths, opts)?;
    canvas.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arclight_core::plot::PALETTE;
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    /// A standard normal draw (Box-Muller).
    fn normal(rng: &mut StdRng) -> f64 {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Draws of a correlated Gaussian: mean `mu`, unit-ish scales `sd`, correlation `rho`
    /// between consecutive parameters.
    fn correlated(n: usize, mu: &[f64], sd: &[f64], rho: f64, seed: u64) -> Vec<Vec<f64>> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let mut prev = normal(&mut rng);
                let mut d = vec![mu[0] + sd[0] * prev];
                for p in 1..mu.len() {
                    let e = normal(&mut rng);
                    let z = rho * prev + (1.0 - rho * rho).sqrt() * e;
                    d.push(mu[p] + sd[p] * z);
                    prev = z;
                }
                d
            })
            .collect()
    }

    /// Black pixels in column x between rows y0 and y1.
    fn black_in_column(c: &Canvas, x: usize, (y0, y1): (i32, i32)) -> usize {
        (y0..y1)
            .filter(|&y| c.rgb[y as usize * c.width + x] == style::BLACK)
            .count()
    }

    #[test]
    fn correlated_gaussian_corner_has_truth_lines_at_the_truth() {
        let names = ["theta_E", "gamma", "phi"];
        let truth = [1.5, 2.0, 0.3];
        let vi = correlated(4000, &[1.5, 2.0, 0.3], &[0.01, 0.05, 0.1], 0.7, 1);
        let hmc = correlated(4000, &[1.505, 2.01, 0.28], &[0.012, 0.06, 0.12], 0.6, 2);
        let sets = [
            SampleSet {
                label: "VI",
                colour: PALETTE[0],
                samples: &vi,
            },
            SampleSet {
                label: "HMC",
                colour: PALETTE[1],
                samples: &hmc,
            },
        ];
        let opts = CornerOptions {
            panel_px: Some(200),
            font_px: Some(16.0),
            ..Default::default()
        };
        let (c, layout) = render_corner(&names, &sets, Some(&truth), &opts).unwrap();
        // Size: 3 panels of 200 plus gaps and margins.
        assert!(c.width > 3 * 200 && c.width < 3 * 200 + 300, "{}", c.width);
        assert!(
            c.height > 3 * 200 && c.height < 3 * 200 + 300,
            "{}",
            c.height
        );
        for i in 0..3 {
            for j in 0..3 {
                assert_eq!(layout.axes[i][j].is_some(), j <= i);
            }
        }
        // The dashed truth line of theta_E in the bottom-left panel is at x(1.5).
        let ax = layout.axes[2][0].unwrap();
        let x = ax.x_to_px(1.5).floor() as usize;
        let inner = (ax.rect.1 + 8, ax.rect.1 + ax.rect.3 - 8);
        assert!(
            black_in_column(&c, x, inner) > 80,
            "dashed line covers about 60 % of the height"
        );
        assert!(
            black_in_column(&c, x + 6, inner) < 10,
            "nothing black 6 px to the right"
        );
        // Contours are drawn in both colours.
        let px: std::collections::HashSet<[u8; 3]> = c.rgb.iter().copied().collect();
        assert!(px.contains(&PALETTE[0]) && px.contains(&PALETTE[1]));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("corner.png");
        corner_plot_with(&path, &names, &sets, Some(&truth), &opts).unwrap();
        let img = image::open(&path).unwrap();
        assert_eq!(
            (img.width() as usize, img.height() as usize),
            (c.width, c.height)
        );
        if let Some(d) = std::env::var_os("ARCLIGHT_FIGURE_DIR") {
            let o = CornerOptions {
                title: "Mock system 1: lens posterior".into(),
                ..opts
            };
            corner_plot_with(
                &Path::new(&d).join("corner.png"),
                &names,
                &sets,
                Some(&truth),
                &o,
            )
            .unwrap();
        }
    }

    #[test]
    fn nan_and_degenerate_parameters_do_not_panic() {
        let mut draws = correlated(500, &[0.0, 1.0, 5.0], &[1.0, 1.0, 0.0], 0.3, 3);
        draws[10][0] = f64::NAN;
        draws[11][1] = f64::INFINITY;
        let all_nan = vec![vec![f64::NAN; 3]; 20];
        let sets = [
            SampleSet {
                label: "HMC",
                colour: PALETTE[2],
                samples: &draws,
            },
            SampleSet {
                label: "broken",
                colour: PALETTE[3],
                samples: &all_nan,
            },
            SampleSet {
                label: "empty",
                colour: PALETTE[4],
                samples: &[],
            },
        ];
        let (c, _) = render_corner(
            &["a", "b", "fixed"],
            &sets,
            Some(&[0.0, f64::NAN, 5.0]),
            &CornerOptions::default(),
        )
        .unwrap();
        assert!(c.width > 0);
        if let Some(d) = std::env::var_os("ARCLIGHT_FIGURE_DIR") {
            c.save(&Path::new(&d).join("corner_nan.png")).unwrap();
        }
        // One parameter alone, and zero-variance everything.
        let one = vec![vec![2.0]; 50];
        let set = SampleSet {
            label: "c",
            colour: PALETTE[0],
            samples: &one,
        };
        let (c, _) = render_corner(&["x"], &[set], None, &Default::default()).unwrap();
        if let Some(d) = std::env::var_os("ARCLIGHT_FIGURE_DIR") {
            c.save(&Path::new(&d).join("corner_one.png")).unwrap();
        }
    }

    #[test]
    fn many_parameters_and_bad_lengths() {
        let n = 25;
        let draws = correlated(2000, &vec![0.0; n], &vec![1.0; n], 0.5, 4);
        let names: Vec<String> = (0..n).map(|i| format!("z{i}")).collect();
        let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
        let sets = [SampleSet {
            label: "VI",
            colour: PALETTE[0],
            samples: &draws,
        }];
        let (c, _) = render_corner(&refs, &sets, None, &CornerOptions::default()).unwrap();
        assert!(c.width >= 25 * 80);
        if let Some(d) = std::env::var_os("ARCLIGHT_FIGURE_DIR") {
            c.save(&Path::new(&d).join("corner_25.png")).unwrap();
        }
        let e = render_corner(&refs[..3], &sets, None, &CornerOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("'VI'") && e.contains("25 values"), "{e}");
        assert!(render_corner(&refs, &sets, Some(&[1.0]), &CornerOptions::default()).is_err());
    }
}
