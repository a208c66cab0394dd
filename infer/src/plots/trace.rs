//! Trace plot: the value of every parameter against the draw index, one line per chain, so
//! that stuck chains, drifts during warm-up and poor mixing show at a glance (the visual
//! companion of the R-hat and ESS diagnostics).

use super::pretty_name;
use anyhow::{Result, bail};
use arclight_core::plot::axes::{self, Ticks};
use arclight_core::plot::safe_range;
use arclight_core::plot::style::{self, Align, PALETTE, WHITE, err, label};
use arclight_core::png::Canvas;
use plotters::prelude::*;
use std::path::Path;

/// Width of each trace panel in pixels.
const TRACE_W: i32 = 900;
/// Height of each trace panel in pixels.
const TRACE_H: i32 = 90;

/// Render the trace plot; see [`trace_plot`].
pub fn render_trace(
    names: &[&str],
    chains: &[Vec<Vec<f64>>],
    truths: Option<&[f64]>,
) -> Result<Canvas> {
    let n = names.len();
    if n == 0 {
        bail!("trace plot: no parameter names given");
    }
    if let Some(t) = truths.filter(|t| t.len() != n) {
        bail!("trace plot: {} truth values for {n} parameters", t.len());
    }
    for (c, chain) in chains.iter().enumerate() {
        if let Some((d, draw)) = chain.iter().enumerate().find(|(_, d)| d.len() != n) {
            bail!(
                "trace plot: chain {c}, draw {d} has {} values but there are {n} parameter names",
                draw.len()
            );
        }
    }
    let longest = chains.iter().map(|c| c.len()).max().unwrap_or(0);
    let xlim = (0.0, (longest.max(2) - 1) as f64);
    let ranges: Vec<(f64, f64)> = (0..n)
        .map(|p| {
            let mut lo = f64::INFINITY;
            let mut hi = f64::NEG_INFINITY;
            for v in chains
                .iter()
                .flatten()
                .map(|d| d[p])
                .chain(truths.map(|t| t[p]))
            {
                if v.is_finite() {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
            }
            let (lo, hi) = safe_range(lo, hi);
            let pad = 0.05 * (hi - lo);
            (lo - pad, hi + pad)
        })
        .collect();
    let f = 15.0;
    let (name_style, tick_style) = (style::text(f), style::text(0.8 * f));
    let ticks = |last: bool| Ticks {
        x: if last { 10 } else { 0 },
        y: 4,
        font: tick_style,
        inside: true,
    };
    let ytick_w = (0..n)
        .map(|p| axes::label_room(ranges[p], &ticks(true)).0)
        .max()
        .unwrap_or(0) as i32;
    let labels: Vec<String> = names.iter().map(|nm| pretty_name(nm)).collect();
    let (gap, margin) = (8, 12);
    let left = margin + f as i32 + gap + ytick_w;
    let bottom = axes::label_room(ranges[0], &ticks(true)).1 as i32 + 2 * f as i32 + margin;
    let width = left + TRACE_W + margin;
    let height = margin + n as i32 * TRACE_H + (n as i32 - 1) * gap + bottom;
    let mut canvas = Canvas::new(width as usize, height as usize, WHITE);
    style::draw_on(&mut canvas, |root| {
        for p in 0..n {
            let last = p == n - 1;
            let rect = (left, margin + p as i32 * (TRACE_H + gap), TRACE_W, TRACE_H);
            let t = ticks(last);
            let room = (ytick_w as u32, axes::label_room(ranges[p], &t).1);
            let area = axes::area_for(root, rect, room);
            let mut ax = axes::axes(root, &area, room, xlim, ranges[p], &t)?;
            for (c, chain) in chains.iter().enumerate() {
                let colour = style::colour(PALETTE[c % PALETTE.len()]).mix(0.7);
                // non-finite draws break the line
                let mut run: Vec<(f64, f64)> = Vec::new();
                for (d, v) in chain.iter().map(|d| d[p]).enumerate() {
                    if v.is_finite() {
                        run.push((d as f64, v));
                    }
                    if !v.is_finite() || d + 1 == chain.len() {
                        let pts = std::mem::take(&mut run);
                        ax.draw_series(LineSeries::new(pts, colour.stroke_width(1)))
                            .map_err(err)?;
                    }
                }
            }
            if let Some(t) = truths.map(|t| t[p]).filter(|t| t.is_finite()) {
                let line =
                    DashedLineSeries::new([(xlim.0, t), (xlim.1, t)], 6, 4, BLACK.stroke_width(2));
                ax.draw_series(line).map_err(err)?;
            }
            let cy = rect.1 + TRACE_H / 2;
            let at = (margin + f as i32 / 2, cy);
            label(
                root,
                &labels[p],
                &name_style,
                at,
                Align::Centre,
                Align::Centre,
                true,
            )?;
            if last {
                let at = (left + TRACE_W / 2, height - margin - f as i32);
                label(
                    root,
                    "draw",
                    &name_style,
                    at,
                    Align::Centre,
                    Align::Start,
                    false,
                )?;
            }
        }
        Ok(())
    })?;
    Ok(canvas)
}

/// Write a trace plot of `chains` (`chains[c][d][p]`: chain c, draw d, parameter p) to the
/// PNG `path`, atomically: one panel per parameter, chains in the palette's colours, true
/// values as black dashed lines. Non-finite values break the lines; they never error.
pub fn trace_plot(
    path: &Path,
    names: &[&str],
    chains: &[Vec<Vec<f64>>],
    truths: Option<&[f64]>,
) -> Result<()> {
    render_trace(names, chains, truths)?.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_render_with_nan_and_ragged_chains() {
        let chain = |phase: f64, len: usize| -> Vec<Vec<f64>> {
            (0..len)
                .map(|d| {
                    vec![
                        1.5 + 0.01 * (d as f64 * 0.3 + phase).sin(),
                        2.0,
                        (d as f64).sqrt(),
                    ]
                })
                .collect()
        };
        let mut chains = vec![chain(0.0, 300), chain(1.0, 250), chain(2.0, 300)];
        chains[1][40][0] = f64::NAN;
        let c = render_trace(
            &["theta_E", "gamma", "drift"],
            &chains,
            Some(&[1.5, 2.0, f64::NAN]),
        )
        .unwrap();
        assert!(c.width as i32 > TRACE_W && c.height as i32 > 3 * TRACE_H);
        // The constant gamma chains and the gamma truth share one row: the dashed truth line
        // is drawn over them, so black and chain colours both appear.
        assert!(
            c.rgb
                .iter()
                .any(|&p| p != WHITE && p != arclight_core::plot::BLACK),
            "chains drawn in colour"
        );
        assert!(c.rgb.contains(&arclight_core::plot::BLACK));
        if let Some(d) = std::env::var_os("ARCLIGHT_FIGURE_DIR") {
            c.save(&Path::new(&d).join("trace.png")).unwrap();
        }
        let bad = vec![vec![vec![1.0, 2.0]]];
        let e = render_trace(&["a", "b", "c"], &bad, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("chain 0") && e.contains("2 values"), "{e}");
    }
}
