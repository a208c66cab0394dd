//! The study figures, drawn with the project's charts (`arclight_core::plot`, on plotters):
//! `calibration.png` (coverage of the central intervals against their level, per parameter and pooled,
//! with the +-2 binomial-error band of a calibrated study), `z_hist.png` (pooled z-scores against the
//! N(0, 1) density), `ranks.png` (pooled SBC rank histogram against the uniform expectation and its
//! +-2 sd band) and `z_scores.png` (GIGA-Lens Fig. 11 in z form: every system's z per parameter).

use anyhow::Result;
use std::path::{Path, PathBuf};

use super::result::{LEVELS, SystemResult, level_key};
use super::summarize::{Histogram, StudySummary};
use crate::prob::layout::vector_block;
use arclight_core::plot::chart::{ChartOptions, Series, Style, render_chart};

const GREY: [u8; 3] = [160, 160, 160];
const BLUE: [u8; 3] = [70, 110, 200];
const RED: [u8; 3] = [220, 60, 40];

/// Write every figure into `dir`; returns their paths.
pub fn write_all(dir: &Path, s: &StudySummary, results: &[SystemResult]) -> Result<Vec<PathBuf>> {
    let out = vec![
        calibration(&dir.join("calibration.png"), s)?,
        z_hist(&dir.join("z_hist.png"), s)?,
        ranks(&dir.join("ranks.png"), s)?,
        z_scores(&dir.join("z_scores.png"), s, results)?,
    ];
    Ok(out)
}

/// Step outline of a histogram scaled by `scale` (breaks are not needed: the bins are contiguous).
fn steps(h: &Histogram, scale: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for (k, &c) in h.counts.iter().enumerate() {
        xs.extend([h.edges[k], h.edges[k + 1]]);
        ys.extend([c as f64 * scale, c as f64 * scale]);
    }
    (xs, ys)
}

fn calibration(path: &Path, s: &StudySummary) -> Result<PathBuf> {
    let (mut px, mut py) = (Vec::new(), Vec::new());
    for row in s.table.values() {
        for &l in &LEVELS {
            let c = &row.coverage[&level_key(l)];
            if c.n > 0 {
                // a small offset per parameter keeps the points of one level apart
                px.push(l + 0.004 * ((px.len() % 7) as f64 - 3.0));
                py.push(c.fraction);
            }
        }
    }
    let lv: Vec<f64> = LEVELS.to_vec();
    let pooled: Vec<f64> = s.calibration.iter().map(|c| c.fraction).collect();
    // the band a calibrated parameter falls in ~95% of the time with this many systems
    let n = s.table.values().map(|r| r.n).max().unwrap_or(0).max(1) as f64;
    let hi: Vec<f64> = lv
        .iter()
        .map(|p| (p + 2.0 * (p * (1.0 - p) / n).sqrt()).min(1.0))
        .collect();
    let lo: Vec<f64> = lv
        .iter()
        .map(|p| (p - 2.0 * (p * (1.0 - p) / n).sqrt()).max(0.0))
        .collect();
    let series = [
        Series {
            label: "calibrated",
            colour: [0, 0, 0],
            xs: &[0.45, 1.0],
            ys: &[0.45, 1.0],
            style: Style::Line,
        },
        Series {
            label: "+-2 se (n systems)",
            colour: GREY,
            xs: &lv,
            ys: &hi,
            style: Style::Line,
        },
        Series {
            label: "",
            colour: GREY,
            xs: &lv,
            ys: &lo,
            style: Style::Line,
        },
        Series {
            label: "each parameter",
            colour: BLUE,
            xs: &px,
            ys: &py,
            style: Style::Points,
        },
        Series {
            label: "pooled",
            colour: RED,
            xs: &lv,
            ys: &pooled,
            style: Style::LineAndPoints,
        },
    ];
    let c = render_chart(
        &series,
        &ChartOptions {
            title: format!("interval coverage, {} systems", s.results),
            xlabel: "interval level (50, 68, 90, 95%)".into(),
            ylabel: "fraction of truths inside".into(),
            ..Default::default()
        },
    )?;
    c.save(path)?;
    Ok(path.to_path_buf())
}

fn z_hist(path: &Path, s: &StudySummary) -> Result<PathBuf> {
    let h = &s.z_histogram;
    let n: usize = h.counts.iter().sum::<usize>() + h.below + h.above;
    let width = h.edges[1] - h.edges[0];
    let (xs, ys) = steps(h, 1.0 / (n.max(1) as f64 * width));
    let gx: Vec<f64> = (0..=160).map(|k| -4.0 + k as f64 * 0.05).collect();
    let gy: Vec<f64> = gx
        .iter()
        .map(|x| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt())
        .collect();
    let series = [
        Series {
            label: "z of every parameter and system",
            colour: BLUE,
            xs: &xs,
            ys: &ys,
            style: Style::Line,
        },
        Series {
            label: "N(0, 1)",
            colour: RED,
            xs: &gx,
            ys: &gy,
            style: Style::Line,
        },
    ];
    let c = render_chart(
        &series,
        &ChartOptions {
            title: format!("z-scores: {n} ({} < -4, {} > 4)", h.below, h.above),
            xlabel: "z = (mean - truth) / sd".into(),
            ylabel: "density".into(),
            ..Default::default()
        },
    )?;
    c.save(path)?;
    Ok(path.to_path_buf())
}

fn ranks(path: &Path, s: &StudySummary) -> Result<PathBuf> {
    let h = &s.rank_histogram;
    let n: usize = h.counts.iter().sum();
    let (xs, ys) = steps(h, 1.0);
    let bins = h.counts.len() as f64;
    let e = n as f64 / bins;
    let sd = (n as f64 * (1.0 / bins) * (1.0 - 1.0 / bins)).sqrt();
    let flat = |v: f64| vec![v, v];
    let (ex, ey, hi, lo) = (
        vec![0.0, 1.0],
        flat(e),
        flat(e + 2.0 * sd),
        flat(e - 2.0 * sd),
    );
    let series = [
        Series {
            label: "ranks of the truths",
            colour: BLUE,
            xs: &xs,
            ys: &ys,
            style: Style::Line,
        },
        Series {
            label: "uniform",
            colour: RED,
            xs: &ex,
            ys: &ey,
            style: Style::Line,
        },
        Series {
            label: "+-2 sd",
            colour: GREY,
            xs: &ex,
            ys: &hi,
            style: Style::Line,
        },
        Series {
            label: "",
            colour: GREY,
            xs: &ex,
            ys: &lo,
            style: Style::Line,
        },
    ];
    let c = render_chart(
        &series,
        &ChartOptions {
            title: format!("SBC ranks of {n} truths"),
            xlabel: format!("rank among {} draws / {}", s.rank_draws, s.rank_draws + 1),
            ylabel: "count".into(),
            ..Default::default()
        },
    )?;
    c.save(path)?;
    Ok(path.to_path_buf())
}

/// Every system's z for every scalar parameter (x = parameter index), the mean z, and +-1.
fn z_scores(path: &Path, s: &StudySummary, results: &[SystemResult]) -> Result<PathBuf> {
    let names: Vec<&String> = s
        .table
        .keys()
        .filter(|k| vector_block(k).is_none())
        .collect();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for r in results {
        for (k, name) in names.iter().enumerate() {
            if let Some(z) = r.params.get(*name).and_then(|p| p.z)
                && z.is_finite()
            {
                // spread the systems across the column so they do not overlap
                let jitter = (r.index as f64 * 0.618_034).fract() * 0.5 - 0.25;
                xs.push(k as f64 + jitter);
                ys.push(z.clamp(-5.0, 5.0));
            }
        }
    }
    let mu_x: Vec<f64> = (0..names.len()).map(|k| k as f64).collect();
    let mu_y: Vec<f64> = names.iter().map(|n| s.table[*n].mu_z).collect();
    let bx = vec![-0.5, names.len() as f64 - 0.5];
    let series = [
        Series {
            label: "z of each system",
            colour: BLUE,
            xs: &xs,
            ys: &ys,
            style: Style::Points,
        },
        Series {
            label: "mean z",
            colour: RED,
            xs: &mu_x,
            ys: &mu_y,
            style: Style::LineAndPoints,
        },
        Series {
            label: "+-1",
            colour: GREY,
            xs: &bx,
            ys: &[1.0, 1.0],
            style: Style::Line,
        },
        Series {
            label: "",
            colour: GREY,
            xs: &bx,
            ys: &[-1.0, -1.0],
            style: Style::Line,
        },
    ];
    let c = render_chart(
        &series,
        &ChartOptions {
            title: format!("recovery of {} systems: z = (mean - truth) / sd", s.results),
            ylabel: "z".into(),
            x_names: names
                .iter()
                .enumerate()
                .map(|(k, n)| (k as f64, n.to_string()))
                .collect(),
            width: 900,
            height: 420,
            ..Default::default()
        },
    )?;
    c.save(path)?;
    Ok(path.to_path_buf())
}
