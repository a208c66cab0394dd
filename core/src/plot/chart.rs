//! A single-axes chart of one or more series (lines and/or points) with a legend: training
//! curves (loss or ELBO against epoch), optimiser traces, benchmark scans. The y axis may
//! be logarithmic.

use super::axes::Axes;
use super::draw::{self, BLACK, Rect, Rgb, WHITE};
use super::ticks;
use crate::png::Canvas;
use crate::text::{self, Anchor};
use anyhow::{Result, bail};
use std::path::Path;

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Line,
    Points,
    LineAndPoints,
}

/// One data series; `xs` and `ys` have equal length. Non-finite values (and, on a log
/// axis, non-positive y) are skipped and break lines.
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
    /// Logarithmic y axis (base 10).
    pub log_y: bool,
    /// Size of the plotting area in pixels (the canvas adds margins for labels).
    pub width: usize,
    pub height: usize,
    pub font_scale: usize,
}

impl Default for ChartOptions {
    fn default() -> Self {
        ChartOptions {
            title: String::new(),
            xlabel: String::new(),
            ylabel: String::new(),
            log_y: false,
            width: 640,
            height: 400,
            font_scale: 2,
        }
    }
}

/// Ticks of a log10 axis over exponents [lo, hi]: every 1, 2, 5, ... decades labelled
/// `10^k` when the range spans at least one decade, else nice linear values (labelled as
/// numbers) placed at their logarithm. At most `max_ticks`.
pub fn log_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<(f64, String)> {
    let (lo, hi) = ticks::safe_range(lo, hi);
    if hi - lo >= 1.0 {
        let span = hi.floor() - lo.ceil();
        let step = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
            .into_iter()
            .find(|&s| span / s + 1.0 <= max_ticks.max(2) as f64)
            .unwrap_or(100.0);
        let mut out = Vec::new();
        let mut k = (lo / step).ceil() * step;
        while k <= hi + 1e-9 {
            out.push((k, format!("10^{{{}}}", k as i64)));
            k += step;
        }
        out
    } else {
        let (a, b) = (10f64.powf(lo), 10f64.powf(hi));
        ticks::ticks_with_labels(a, b, max_ticks)
            .into_iter()
            .filter(|(v, _)| *v > 0.0)
            .map(|(v, s)| (v.log10(), s))
            .collect()
    }
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
    let ty = |y: f64| {
        if opts.log_y {
            if y > 0.0 { y.log10() } else { f64::NAN }
        } else {
            y
        }
    };
    let mut xr = (f64::INFINITY, f64::NEG_INFINITY);
    let mut yr = (f64::INFINITY, f64::NEG_INFINITY);
    for s in series {
        for (&x, &y) in s.xs.iter().zip(s.ys) {
            let y = ty(y);
            if x.is_finite() && y.is_finite() {
                xr = (xr.0.min(x), xr.1.max(x));
                yr = (yr.0.min(y), yr.1.max(y));
            }
        }
    }
    let xr = ticks::safe_range(xr.0, xr.1);
    let yr = ticks::safe_range(yr.0, yr.1);
    let ypad = 0.05 * (yr.1 - yr.0);
    let yr = (yr.0 - ypad, yr.1 + ypad);

    let s = opts.font_scale.max(1);
    let si = s as i64;
    let (w, h) = (opts.width.max(64) as i64, opts.height.max(48) as i64);
    let probe = Axes::new(Rect::new(0, 0, w, h), xr, yr);
    let xt = probe.fitted_x_ticks(s, 8, 4 * si);
    let yt = if opts.log_y {
        let all = log_ticks(yr.0, yr.1, 8);
        // Keep ticks at least two text heights apart.
        let min_gap = 2.0 * text::text_height(s) as f64;
        let mut kept: Vec<(f64, String)> = Vec::new();
        for t in all {
            if kept
                .last()
                .is_none_or(|l| (probe.y_to_px(l.0) - probe.y_to_px(t.0)).abs() >= min_gap)
            {
                kept.push(t);
            }
        }
        kept
    } else {
        probe.fitted_y_ticks(s, 8, 4 * si)
    };
    let margin = 6 * si;
    let gap = 3 * si;
    let ylabel_w = if opts.ylabel.is_empty() {
        0
    } else {
        text::label_size(&opts.ylabel, s).1 as i64 + gap
    };
    let left = margin + ylabel_w + Axes::y_tick_label_width(&yt, s) + gap;
    let title_h = if opts.title.is_empty() {
        0
    } else {
        text::label_size(&opts.title, s + 1).1 as i64 + 2 * gap
    };
    let top = margin + title_h + text::text_height(s) as i64 / 2;
    let xlabel_h = if opts.xlabel.is_empty() {
        0
    } else {
        text::label_size(&opts.xlabel, s).1 as i64 + gap
    };
    let bottom = Axes::x_tick_label_height(s) + gap + xlabel_h + margin;
    let right = margin + text::text_width("0000", s) as i64 / 2;
    let mut canvas = Canvas::new(
        (left + w + right) as usize,
        (top + h + bottom) as usize,
        WHITE,
    );
    let ax = Axes::new(Rect::new(left, top, w, h), xr, yr);

    for se in series {
        let ys: Vec<f64> = se.ys.iter().map(|&y| ty(y)).collect();
        if se.style != Style::Points {
            // Break the line at non-finite points.
            let mut run_x = Vec::new();
            let mut run_y = Vec::new();
            for (&x, &y) in se.xs.iter().zip(&ys) {
                if x.is_finite() && y.is_finite() {
                    run_x.push(x);
                    run_y.push(y);
                } else {
                    ax.line(&mut canvas, &run_x, &run_y, 1.5, se.colour, 1.0);
                    run_x.clear();
                    run_y.clear();
                }
            }
            ax.line(&mut canvas, &run_x, &run_y, 1.5, se.colour, 1.0);
        }
        if se.style != Style::Line {
            ax.scatter(
                &mut canvas,
                se.xs,
                &ys,
                1.5 + si as f64 / 2.0,
                se.colour,
                1.0,
            );
        }
    }
    ax.frame(&mut canvas, BLACK);
    let below = ax.x_ticks(&mut canvas, &xt, s, true);
    let lx = ax.y_ticks(&mut canvas, &yt, s, true);
    if !opts.xlabel.is_empty() {
        ax.x_label(&mut canvas, below + gap, &opts.xlabel, s);
    }
    if !opts.ylabel.is_empty() {
        ax.y_label(&mut canvas, lx - gap, &opts.ylabel, s);
    }
    if !opts.title.is_empty() {
        let cx = left + w / 2;
        text::draw_label(
            &mut canvas,
            cx,
            margin,
            &opts.title,
            s + 1,
            BLACK,
            Anchor::TopCentre,
            false,
        );
    }

    // Legend in the top-right corner of the plotting area, on white.
    let named: Vec<&Series> = series.iter().filter(|s| !s.label.is_empty()).collect();
    if !named.is_empty() {
        let line_h = text::text_height(s) as i64 + 2 * si;
        let swatch = 8 * si;
        let tw = named
            .iter()
            .map(|se| text::label_size(se.label, s).0 as i64)
            .max()
            .unwrap_or(0);
        let bw = swatch + 3 * si + tw + 4 * si;
        let bh = named.len() as i64 * line_h + 2 * si;
        let bx = ax.rect.right() - bw - 2 * si;
        let by = ax.rect.y + 2 * si;
        let all = Rect::of(&canvas);
        draw::fill_rect(&mut canvas, all, Rect::new(bx, by, bw, bh), WHITE, 0.85);
        draw::rect_outline(
            &mut canvas,
            all,
            Rect::new(bx, by, bw, bh),
            [200, 200, 200],
            1,
        );
        for (k, se) in named.iter().enumerate() {
            let y = by + si + k as i64 * line_h;
            let cy = (y + (text::CAP_ROWS * s) as i64 / 2) as f64 + 0.5;
            let x0 = (bx + 2 * si) as f64;
            draw::line(
                &mut canvas,
                all,
                (x0, cy),
                (x0 + swatch as f64, cy),
                2.0,
                se.colour,
                1.0,
            );
            text::draw_label(
                &mut canvas,
                bx + 2 * si + swatch + 3 * si,
                y,
                se.label,
                s,
                BLACK,
                Anchor::TopLeft,
                false,
            );
        }
    }
    Ok(canvas)
}

/// Render the chart and save it atomically as a PNG at `path`.
pub fn line_chart(path: &Path, series: &[Series], opts: &ChartOptions) -> Result<()> {
    render_chart(series, opts)?.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::draw::PALETTE;

    #[test]
    fn log_ticks_are_decades_or_linear_values() {
        let t = log_ticks(-3.2, 0.5, 8);
        assert_eq!(
            t.iter().map(|t| t.1.as_str()).collect::<Vec<_>>(),
            ["10^{-3}", "10^{-2}", "10^{-1}", "10^{0}"]
        );
        let t = log_ticks(-12.0, 3.0, 5);
        assert!(t.len() <= 5 && t.iter().all(|(v, _)| v.fract() == 0.0));
        let t = log_ticks(2f64.log10(), 5f64.log10(), 5);
        assert!(t.iter().any(|(_, s)| s == "3"));
    }

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
            log_y: true,
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
    }
}
