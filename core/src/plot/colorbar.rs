//! Vertical colour bars: a strip showing a colour map over [lo, hi] with ticks and numeric
//! labels on its right.

use super::axes::Axes;
use super::draw::{self, BLACK, Rect};
use crate::png::Canvas;

/// Width in pixels of the coloured strip per font scale unit.
const STRIP_PER_SCALE: i64 = 6;
/// Space between the panel and the strip per font scale unit.
const PAD_PER_SCALE: i64 = 3;
/// Space between the strip and its labels per font scale unit. Tick marks point into the
/// strip: outside marks next to the labels would read as minus signs.
const LABEL_PAD_PER_SCALE: i64 = 2;

/// Total width (padding + strip + ticks + labels) a colour bar of `height` pixels over
/// [lo, hi] takes at font `scale`.
pub fn colour_bar_width(lo: f32, hi: f32, height: i64, scale: usize) -> i64 {
    let t = bar_axes(0, 0, height, lo, hi, scale).fitted_y_ticks(scale, 6, 0);
    let labels = t
        .iter()
        .map(|(_, s)| crate::text::label_size(s, scale).0)
        .max()
        .unwrap_or(0) as i64;
    (PAD_PER_SCALE + STRIP_PER_SCALE + LABEL_PAD_PER_SCALE) * scale as i64 + labels
}

/// The axes of the strip (x range unused).
fn bar_axes(x: i64, y: i64, height: i64, lo: f32, hi: f32, scale: usize) -> Axes {
    let rect = Rect::new(
        x + PAD_PER_SCALE * scale as i64,
        y,
        STRIP_PER_SCALE * scale as i64,
        height,
    );
    Axes::new(rect, (0.0, 1.0), (lo as f64, hi as f64))
}

/// Draw a colour bar for `cmap` over [lo, hi] whose left edge is at canvas x `x` (it is
/// preceded by a small padding), top at `y`, `height` pixels tall; ticks and labels go on
/// the right. Returns the width used, as [`colour_bar_width`].
#[allow(clippy::too_many_arguments)]
pub fn colour_bar(
    canvas: &mut Canvas,
    x: i64,
    y: i64,
    height: i64,
    lo: f32,
    hi: f32,
    cmap: fn(f32) -> [u8; 3],
    scale: usize,
) -> i64 {
    let a = bar_axes(x, y, height, lo, hi, scale);
    let r = a.rect;
    let all = Rect::of(canvas);
    for py in r.y..r.bottom() {
        let f = 1.0 - ((py - r.y) as f32 + 0.5) / r.h as f32;
        draw::fill_rect(canvas, all, Rect::new(r.x, py, r.w, 1), cmap(f), 1.0);
    }
    a.frame(canvas, BLACK);
    let ticks = a.fitted_y_ticks(scale, 6, 0);
    let len = 2 * scale as i64;
    for (v, s) in &ticks {
        let ty = a.y_to_px(*v).round().min((r.bottom() - 1) as f64) as i64;
        draw::fill_rect(
            canvas,
            all,
            Rect::new(r.right() - len, ty, len, 1),
            BLACK,
            1.0,
        );
        let top = ty - (crate::text::CAP_ROWS * scale) as i64 / 2;
        let lx = r.right() + LABEL_PAD_PER_SCALE * scale as i64;
        crate::text::draw_label(
            canvas,
            lx,
            top,
            s,
            scale,
            BLACK,
            crate::text::Anchor::TopLeft,
            false,
        );
    }
    colour_bar_width(lo, hi, height, scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::png::viridis;

    #[test]
    fn bar_shows_the_map_and_fits_its_width() {
        let mut c = Canvas::new(120, 220, draw::WHITE);
        let w = colour_bar(&mut c, 10, 10, 200, -3.0, 3.0, viridis, 2);
        assert_eq!(w, colour_bar_width(-3.0, 3.0, 200, 2));
        // Top of the strip is the top of the map, bottom is the bottom.
        let sx = 10 + 6 + 6;
        assert_eq!(c.rgb[12 * 120 + sx], viridis(1.0 - 2.5 / 200.0));
        assert_eq!(c.rgb[207 * 120 + sx], viridis(2.5 / 200.0));
        // No ink right of the reported width.
        for y in 0..220 {
            for x in (10 + w as usize + 1)..120 {
                assert_eq!(c.rgb[y * 120 + x], draw::WHITE, "ink at ({x}, {y})");
            }
        }
    }
}
