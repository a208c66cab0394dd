//! A single-axes chart of one or more series (lines and/or points) with a legend beside the axes,
//! drawn with plotters: study calibration figures, prior comparisons, optimiser traces.

use super::axes::{self, Ticks};
use super::style::{self, Align, Rgb, err, label};
use crate::png::Canvas;
use anyhow::{Result, bail};
use plotters::prelude::*;
use std::path::Path;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Line,
    Points,
    LineAndPoints,
}

/// One data series; `xs` and `ys` have equal length. Non-finite values are skipped and break
/// lines. An empty label keeps the series out of the legend.
#[derive(Clone, Copy, Debug)]
pub struct Series<'a> {
    pub label: &'a str,
    pub colour: Rgb,
    pub xs: &'a [f64],
    pub ys: &'a [f64],
    pub style: Style,
}

/// Chart-wide options.
#[derive(Clone, Debug)]
pub struct ChartOptions {
    pub title: String,
    pub xlabel: String,
    pub ylabel: String,
    /// Named x positions (e.g. parameter names at 0, 1, 2, ...), drawn as vertical labels in
    /// place of numeric x ticks; empty for numeric ticks.
    pub x_names: Vec<(f64, String)>,
    /// Size of the plotting area in pixels (the canvas adds room for labels and the legend).
    pub width: usize,
    pub height: usize,
    /// Size of axis-label text in pixels (tick labels are 0.85 of it, the title 1.25).
    pub font_px: f64,
}

impl Default for ChartOptions {
    fn default() -> Self {
        ChartOptions {
            title: String::new(),
            xlabel: String::new(),
            ylabel: String::new(),
            x_names: Vec::new(),
            width: 640,
            height: 400,
            font_px: 17.0,
        }
    }
}

/// Order a range and give it positive, finite width: a zero-width range [v, v] (a parameter that
/// never moved) becomes v +- 1% of |v|, or [-1, 1] when v = 0; non-finite ends are replaced by the
/// finite one, or [0, 1] when neither is finite.
pub fn safe_range(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return match (lo.is_finite(), hi.is_finite()) {
            (true, false) => safe_range(lo, lo),
            (false, true) => safe_range(hi, hi),
            _ => (0.0, 1.0),
        };
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let scale = lo.abs().max(hi.abs());
    if hi - lo > scale * 1e-12 && hi - lo > f64::MIN_POSITIVE * 1e3 {
        return (lo, hi);
    }
    let pad = if scale > 0.0 { scale * 1e-2 } else { 1.0 };
    (lo - pad, hi + pad)
}

/// The finite runs of a series (a non-finite value ends a run).
fn runs(s: &Series) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for (&x, &y) in s.xs.iter().zip(s.ys) {
        if x.is_finite() && y.is_finite() {
            out.last_mut().unwrap().push((x, y));
        } else if !out.last().unwrap().is_empty() {
            out.push(Vec::new());
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// Render the chart on a new canvas.
pub fn render_chart(series: &[Series], opts: &ChartOptions) -> Result<Canvas> {
    for s in series {
        if s.xs.len() != s.ys.len() {
            bail!(
                "chart: series '{}' has {} x values but {} y values",
                s.label,
                s.xs.len(),
                s.ys.len()
            );
        }
    }
    let (mut xr, mut yr) = (
        (f64::INFINITY, f64::NEG_INFINITY),
        (f64::INFINITY, f64::NEG_INFINITY),
    );
    for s in series {
        for r in runs(s) {
            for (x, y) in r {
                xr = (xr.0.min(x), xr.1.max(x));
                yr = (yr.0.min(y), yr.1.max(y));
            }
        }
    }
    let xr = safe_range(xr.0, xr.1);
    let yr = safe_range(yr.0, yr.1);
    let (xpad, ypad) = (0.02 * (xr.1 - xr.0), 0.05 * (yr.1 - yr.0));
    let (xr, yr) = ((xr.0 - xpad, xr.1 + xpad), (yr.0 - ypad, yr.1 + ypad));

    let f = opts.font_px;
    let (text, title) = (style::text(f), style::text(1.25 * f));
    let ticks = Ticks {
        x: if opts.x_names.is_empty() { 8 } else { 0 },
        y: 8,
        font: style::text(0.85 * f),
        inside: false,
    };
    let legend: Vec<&Series> = series.iter().filter(|s| !s.label.is_empty()).collect();
    let line_h = (1.5 * f) as i32;
    let legend_w = legend
        .iter()
        .map(|s| style::label_width(s.label, &text) as i32 + 48)
        .max()
        .unwrap_or(0);
    let (tick_w, tick_h) = axes::label_room(yr, &ticks);
    let names_h = opts
        .x_names
        .iter()
        .map(|(_, n)| style::label_width(n, &ticks.font) as i32 + 10)
        .max()
        .unwrap_or(tick_h as i32);
    let desc = |s: &str| if s.is_empty() { 0 } else { (1.6 * f) as i32 };
    let (x_area, y_area) = (
        names_h + desc(&opts.xlabel),
        tick_w as i32 + desc(&opts.ylabel),
    );
    let title_h = desc(&opts.title) + (0.4 * f) as i32 * (!opts.title.is_empty()) as i32;
    let margin = 12;
    let (pw, ph) = (opts.width as i32, opts.height as i32);
    let width = margin + y_area + pw + margin + legend_w + margin;
    let height = (margin + title_h + ph + x_area + margin)
        .max(margin + title_h + legend.len() as i32 * line_h + margin);
    let mut canvas = Canvas::new(width as usize, height as usize, style::WHITE);
    style::draw_on(&mut canvas, |root| {
        let (x0, y0) = (margin + y_area, margin + title_h);
        let room = (y_area as u32, x_area as u32);
        let area = axes::area_for(root, (x0, y0, pw, ph), room);
        let mut chart = ChartBuilder::on(&area)
            .y_label_area_size(room.0)
            .x_label_area_size(room.1)
            .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
            .map_err(err)?;
        axes::mesh(&mut chart, &ticks, true)?;
        axes::tick_labels(root, &chart, &ticks, false)?;
        let c = Align::Centre;
        let top = (x0 + pw / 2, margin);
        label(root, &opts.title, &title, top, c, Align::Start, false)?;
        let bottom = (x0 + pw / 2, y0 + ph + x_area);
        label(root, &opts.xlabel, &text, bottom, c, Align::End, false)?;
        label(
            root,
            &opts.ylabel,
            &text,
            (margin, y0 + ph / 2),
            Align::Start,
            c,
            true,
        )?;
        for s in series {
            let c = style::colour(s.colour);
            for run in runs(s) {
                if s.style != Style::Points {
                    chart
                        .draw_series(LineSeries::new(run.iter().copied(), c.stroke_width(2)))
                        .map_err(err)?;
                }
                if s.style != Style::Line {
                    let dots = run.iter().map(|&p| Circle::new(p, 3, c.filled()));
                    chart.draw_series(dots).map_err(err)?;
                }
            }
        }
        // named x positions, reading upwards below the axis
        for (x, name) in &opts.x_names {
            let (px, py) = chart.backend_coord(&(*x, yr.0));
            label(root, name, &ticks.font, (px, py + 6), c, Align::Start, true)?;
        }
        // the legend, beside the axes so it never covers data
        let lx = x0 + pw + margin;
        for (k, s) in legend.iter().enumerate() {
            let y = y0 + k as i32 * line_h + line_h / 2;
            let c = style::colour(s.colour);
            if s.style != Style::Points {
                let line = PathElement::new(vec![(lx + 4, y), (lx + 34, y)], c.stroke_width(2));
                root.draw(&line).map_err(err)?;
            }
            if s.style != Style::Line {
                root.draw(&Circle::new((lx + 19, y), 3, c.filled()))
                    .map_err(err)?;
            }
            label(
                root,
                s.label,
                &text,
                (lx + 42, y),
                Align::Start,
                Align::Centre,
                false,
            )?;
        }
        Ok(())
    })?;
    Ok(canvas)
}

/// Render the chart (see [`render_chart`]) and save it atomically as a PNG at `path`.
pub fn line_chart(path: &Path, series: &[Series], opts: &ChartOptions) -> Result<()> {
    render_chart(series, opts)?.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::PALETTE;

    #[test]
    fn chart_draws_series_and_rejects_ragged_input() {
        let xs: Vec<f64> = (0..50).map(|i| i as f64).collect();
        let loss: Vec<f64> = xs.iter().map(|x| 100.0 * (-x / 10.0).exp() + 0.5).collect();
        let mut val = loss.iter().map(|v| v * 1.2).collect::<Vec<_>>();
        val[20] = f64::NAN;
        let opts = ChartOptions {
            title: "Training".into(),
            xlabel: "epoch".into(),
            ylabel: "-ELBO".into(),
            ..Default::default()
        };
        let series = [
            Series {
                label: "train",
                colour: PALETTE[0],
                xs: &xs,
                ys: &loss,
                style: Style::Line,
            },
            Series {
                label: "validation",
                colour: PALETTE[1],
                xs: &xs,
                ys: &val,
                style: Style::LineAndPoints,
            },
        ];
        let c = render_chart(&series, &opts).unwrap();
        assert!(c.width > 640 && c.height > 400);
        assert!(c.rgb.contains(&PALETTE[0]) && c.rgb.contains(&PALETTE[1]));
        // text was drawn: dark pixels exist outside the data colours
        assert!(c.rgb.iter().any(|p| p.iter().all(|&v| v < 60)));
        if let Some(d) = std::env::var_os("ARCLIGHT_FIGURE_DIR") {
            line_chart(&Path::new(&d).join("chart.png"), &series, &opts).unwrap();
        }
        let bad = [Series {
            label: "x",
            colour: PALETTE[0],
            xs: &xs,
            ys: &loss[..3],
            style: Style::Line,
        }];
        assert!(
            render_chart(&bad, &opts)
                .unwrap_err()
                .to_string()
                .contains("'x'")
        );
        // Empty and all-NaN inputs still give a figure.
        render_chart(&[], &ChartOptions::default()).unwrap();
        let nan = [f64::NAN; 3];
        let s = Series {
            label: "nan",
            colour: PALETTE[2],
            xs: &nan,
            ys: &nan,
            style: Style::LineAndPoints,
        };
        render_chart(&[s], &ChartOptions::default()).unwrap();
    }

    #[test]
    fn named_x_positions_widen_the_label_area() {
        let xs = [0.0, 1.0, 2.0];
        let s = Series {
            label: "z",
            colour: PALETTE[0],
            xs: &xs,
            ys: &xs,
            style: Style::Points,
        };
        let plain = render_chart(&[s], &ChartOptions::default()).unwrap();
        let named = ChartOptions {
            x_names: vec![
                (0.0, "lens.theta_E".into()),
                (1.0, "a".into()),
                (2.0, "b".into()),
            ],
            ..Default::default()
        };
        let c = render_chart(&[s], &named).unwrap();
        assert!(c.height > plain.height);
    }

    #[test]
    fn safe_range_always_has_a_span() {
        assert_eq!(safe_range(1.0, 2.0), (1.0, 2.0));
        let (lo, hi) = safe_range(3.0, 3.0);
        assert!(lo < 3.0 && hi > 3.0);
        assert_eq!(safe_range(0.0, 0.0), (-1.0, 1.0));
        assert_eq!(safe_range(2.0, 1.0), (1.0, 2.0));
        assert_eq!(safe_range(f64::NAN, f64::INFINITY), (0.0, 1.0));
    }
}
