//! Trace plot: the value of every parameter against the draw index, one line per chain, so
//! that stuck chains, drifts during warm-up and poor mixing show at a glance (the visual
//! companion of the R-hat and ESS diagnostics).

use super::pretty_name;
use anyhow::{Result, bail};
use arclight_core::plot::axes::Axes;
use arclight_core::plot::draw::{BLACK, PALETTE, Rect, WHITE};
use arclight_core::plot::ticks::safe_range;
use arclight_core::png::Canvas;
use std::path::Path;

/// Width of each trace panel in pixels.
const TRACE_W: i64 = 900;
/// Height of each trace panel in pixels.
const TRACE_H: i64 = 90;

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
    let s = 2usize;
    let si = s as i64;
    let gap = 4 * si;
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
    let probe = |p: usize| Axes::new(Rect::new(0, 0, TRACE_W, TRACE_H), xlim, ranges[p]);
    let yticks: Vec<_> = (0..n)
        .map(|p| probe(p).fitted_y_ticks(s, 4, gap / 2))
        .collect();
    let xticks = probe(0).fitted_x_ticks(s, 10, 0);
    let ytick_w = yticks
        .iter()
        .map(|t| Axes::y_tick_label_width(t, s))
        .max()
        .unwrap_or(0);
    let labels: Vec<String> = names.iter().map(|nm| pretty_name(nm)).collect();
    let name_w = labels
        .iter()
        .map(|l| arclight_core::text::label_size(l, s + 1).1 as i64)
        .max()
        .unwrap_or(0);
    let margin = 6 * si;
    let left = margin + name_w + 2 * gap + ytick_w;
    let bottom = Axes::x_tick_label_height(s)
        + 2 * gap
        + arclight_core::text::text_height(s) as i64
        + margin;
    let width = left + TRACE_W + margin;
    let height = margin + n as i64 * TRACE_H + (n as i64 - 1) * gap + bottom;
    let mut canvas = Canvas::new(width as usize, height as usize, WHITE);
    for p in 0..n {
        let rect = Rect::new(left, margin + p as i64 * (TRACE_H + gap), TRACE_W, TRACE_H);
        let ax = Axes::new(rect, xlim, ranges[p]);
        for (c, chain) in chains.iter().enumerate() {
            let xs: Vec<f64> = (0..chain.len()).map(|d| d as f64).collect();
            let ys: Vec<f64> = chain.iter().map(|d| d[p]).collect();
            ax.line(&mut canvas, &xs, &ys, 1.0, PALETTE[c % PALETTE.len()], 0.7);
        }
        if let Some(t) = truths.map(|t| t[p]).filter(|t| t.is_finite()) {
            ax.hline(&mut canvas, t, 2.0, BLACK, true);
        }
        ax.frame(&mut canvas, BLACK);
        ax.y_ticks(&mut canvas, &yticks[p], s, true);
        let last = p == n - 1;
        ax.x_ticks(&mut canvas, &xticks, s, last);
        ax.y_label(&mut canvas, left - ytick_w - gap, &labels[p], s + 1);
        if last {
            ax.x_label(
                &mut canvas,
                rect.bottom() + Axes::x_tick_label_height(s) + gap,
                "draw",
                s,
            );
        }
    }
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
        assert!(c.width as i64 > TRACE_W && c.height as i64 > 3 * TRACE_H);
        // The constant gamma chains and the gamma truth share one row: the dashed truth line
        // is drawn over them, so black and chain colours both appear.
        assert!(
            c.rgb.iter().any(|&p| p != WHITE && p != BLACK),
            "chains drawn in colour"
        );
        assert!(c.rgb.contains(&BLACK));
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
