//! Drawing primitives on a [`Canvas`]: alpha blending, rectangles, anti-aliased lines (solid
//! and dashed), filled discs and squares, all clipped to a [`Rect`].
//!
//! Coordinates are canvas pixels with (0, 0) at the top-left corner; pixel (x, y) covers
//! [x, x+1) x [y, y+1), so its centre is (x + 0.5, y + 0.5). Lines and discs are anti-aliased
//! by coverage: a pixel whose centre lies at distance d from the ideal shape edge is blended
//! with weight clamp(w/2 + 1/2 - d, 0, 1).

use crate::png::Canvas;

/// An RGB colour.
pub type Rgb = [u8; 3];

pub const BLACK: Rgb = [0, 0, 0];
pub const WHITE: Rgb = [255, 255, 255];
/// Mid grey for secondary ink (grid lines, notes).
pub const GREY: Rgb = [128, 128, 128];
/// Light grey for missing (NaN) pixels in image panels.
pub const NAN_GREY: Rgb = [205, 205, 205];

/// Ten well-separated colours for data sets (matplotlib's "tab10"), used in order.
pub const PALETTE: [Rgb; 10] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [127, 127, 127],
    [188, 189, 34],
    [23, 190, 207],
];

/// An axis-aligned pixel rectangle [x, x + w) x [y, y + h), used for clipping and layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
}

impl Rect {
    pub fn new(x: i64, y: i64, w: i64, h: i64) -> Self {
        Rect { x, y, w, h }
    }

    /// The whole canvas.
    pub fn of(canvas: &Canvas) -> Self {
        Rect {
            x: 0,
            y: 0,
            w: canvas.width as i64,
            h: canvas.height as i64,
        }
    }

    pub fn contains(&self, x: i64, y: i64) -> bool {
        x >= self.x && x < self.x + self.w && y >= self.y && y < self.y + self.h
    }

    /// Intersection with another rectangle (possibly empty: w or h <= 0).
    pub fn intersect(&self, o: &Rect) -> Rect {
        let x0 = self.x.max(o.x);
        let y0 = self.y.max(o.y);
        let x1 = (self.x + self.w).min(o.x + o.w);
        let y1 = (self.y + self.h).min(o.y + o.h);
        Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        }
    }

    pub fn right(&self) -> i64 {
        self.x + self.w
    }

    pub fn bottom(&self) -> i64 {
        self.y + self.h
    }
}

/// Mix `colour` into pixel (x, y) with opacity `alpha` in [0, 1]; outside `clip` or the
/// canvas nothing happens.
pub fn blend(canvas: &mut Canvas, clip: Rect, x: i64, y: i64, colour: Rgb, alpha: f32) {
    if alpha <= 0.0 || !clip.contains(x, y) || x < 0 || y < 0 {
        return;
    }
    let (xu, yu) = (x as usize, y as usize);
    if xu >= canvas.width || yu >= canvas.height {
        return;
    }
    let p = &mut canvas.rgb[yu * canvas.width + xu];
    if alpha >= 1.0 {
        *p = colour;
        return;
    }
    for k in 0..3 {
        p[k] = (p[k] as f32 * (1.0 - alpha) + colour[k] as f32 * alpha).round() as u8;
    }
}

/// Fill `r` with `colour` at opacity `alpha`.
pub fn fill_rect(canvas: &mut Canvas, clip: Rect, r: Rect, colour: Rgb, alpha: f32) {
    let r = r.intersect(&clip).intersect(&Rect::of(canvas));
    for y in r.y..r.y + r.h {
        for x in r.x..r.x + r.w {
            blend(canvas, clip, x, y, colour, alpha);
        }
    }
}

/// Draw the outline of `r`, `thickness` pixels wide, inside `r`.
pub fn rect_outline(canvas: &mut Canvas, clip: Rect, r: Rect, colour: Rgb, thickness: i64) {
    let t = thickness.max(1).min(r.w.max(1)).min(r.h.max(1));
    fill_rect(canvas, clip, Rect::new(r.x, r.y, r.w, t), colour, 1.0);
    fill_rect(
        canvas,
        clip,
        Rect::new(r.x, r.bottom() - t, r.w, t),
        colour,
        1.0,
    );
    fill_rect(canvas, clip, Rect::new(r.x, r.y, t, r.h), colour, 1.0);
    fill_rect(
        canvas,
        clip,
        Rect::new(r.right() - t, r.y, t, r.h),
        colour,
        1.0,
    );
}

/// Distance from (px, py) to the segment (x0, y0)-(x1, y1).
fn segment_distance(px: f64, py: f64, x0: f64, y0: f64, x1: f64, y1: f64) -> f64 {
    let (dx, dy) = (x1 - x0, y1 - y0);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((px - x0) * dx + (py - y0) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (qx, qy) = (x0 + t * dx, y0 + t * dy);
    ((px - qx).powi(2) + (py - qy).powi(2)).sqrt()
}

/// An anti-aliased straight line of `width` pixels between two points given in continuous
/// canvas coordinates (a pixel centre is at +0.5), blended at opacity `alpha`.
#[allow(clippy::too_many_arguments)]
pub fn line(
    canvas: &mut Canvas,
    clip: Rect,
    (x0, y0): (f64, f64),
    (x1, y1): (f64, f64),
    width: f64,
    colour: Rgb,
    alpha: f32,
) {
    if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
        return;
    }
    let half = width.max(0.0) / 2.0 + 0.5;
    let area = clip.intersect(&Rect::of(canvas));
    let xa = ((x0.min(x1) - half).floor() as i64).max(area.x);
    let xb = ((x0.max(x1) + half).ceil() as i64).min(area.right() - 1);
    let ya = ((y0.min(y1) - half).floor() as i64).max(area.y);
    let yb = ((y0.max(y1) + half).ceil() as i64).min(area.bottom() - 1);
    // Thin lines narrower than a pixel are drawn one pixel wide, fainter.
    let (w_eff, fade) = if width < 1.0 {
        (1.0, width.max(0.0) as f32)
    } else {
        (width, 1.0)
    };
    for y in ya..=yb {
        for x in xa..=xb {
            let d = segment_distance(x as f64 + 0.5, y as f64 + 0.5, x0, y0, x1, y1);
            let cover = (w_eff / 2.0 + 0.5 - d).clamp(0.0, 1.0) as f32;
            if cover > 0.0 {
                blend(canvas, clip, x, y, colour, alpha * cover * fade);
            }
        }
    }
}

/// A dashed line: `dash` pixels drawn, `gap` pixels skipped, starting with a dash.
#[allow(clippy::too_many_arguments)]
pub fn dashed_line(
    canvas: &mut Canvas,
    clip: Rect,
    a: (f64, f64),
    b: (f64, f64),
    width: f64,
    colour: Rgb,
    dash: f64,
    gap: f64,
) {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len = (dx * dx + dy * dy).sqrt();
    if !len.is_finite() || len == 0.0 || dash <= 0.0 {
        return;
    }
    let (ux, uy) = (dx / len, dy / len);
    let mut s = 0.0;
    while s < len {
        let e = (s + dash).min(len);
        line(
            canvas,
            clip,
            (a.0 + ux * s, a.1 + uy * s),
            (a.0 + ux * e, a.1 + uy * e),
            width,
            colour,
            1.0,
        );
        s += dash + gap.max(0.0);
    }
}

/// Connected line segments through `points`; non-finite points break the line.
pub fn polyline(
    canvas: &mut Canvas,
    clip: Rect,
    points: &[(f64, f64)],
    width: f64,
    colour: Rgb,
    alpha: f32,
) {
    for w in points.windows(2) {
        line(canvas, clip, w[0], w[1], width, colour, alpha);
    }
}

/// A filled anti-aliased disc of radius `r` centred at (cx, cy).
pub fn disc(
    canvas: &mut Canvas,
    clip: Rect,
    (cx, cy): (f64, f64),
    r: f64,
    colour: Rgb,
    alpha: f32,
) {
    if !(cx.is_finite() && cy.is_finite()) {
        return;
    }
    let xa = (cx - r - 1.0).floor() as i64;
    let xb = (cx + r + 1.0).ceil() as i64;
    let ya = (cy - r - 1.0).floor() as i64;
    let yb = (cy + r + 1.0).ceil() as i64;
    for y in ya..=yb {
        for x in xa..=xb {
            let d = ((x as f64 + 0.5 - cx).powi(2) + (y as f64 + 0.5 - cy).powi(2)).sqrt();
            let cover = (r + 0.5 - d).clamp(0.0, 1.0) as f32;
            if cover > 0.0 {
                blend(canvas, clip, x, y, colour, alpha * cover);
            }
        }
    }
}

/// A filled square of side `2 half + 1` pixels centred on the pixel containing (cx, cy).
pub fn square(canvas: &mut Canvas, clip: Rect, (cx, cy): (f64, f64), half: i64, colour: Rgb) {
    if !(cx.is_finite() && cy.is_finite()) {
        return;
    }
    let (x, y) = (cx.floor() as i64, cy.floor() as i64);
    fill_rect(
        canvas,
        clip,
        Rect::new(x - half, y - half, 2 * half + 1, 2 * half + 1),
        colour,
        1.0,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizontal_line_is_crisp_and_clipped() {
        let mut c = Canvas::new(20, 10, WHITE);
        let clip = Rect::new(0, 0, 15, 10);
        line(&mut c, clip, (2.5, 4.5), (18.5, 4.5), 1.0, BLACK, 1.0);
        assert_eq!(c.rgb[4 * 20 + 2], BLACK);
        assert_eq!(c.rgb[4 * 20 + 14], BLACK);
        assert_eq!(c.rgb[4 * 20 + 15], WHITE, "clipped at x = 15");
        assert_eq!(c.rgb[3 * 20 + 8], WHITE, "one pixel wide");
    }

    #[test]
    fn blend_mixes_linearly() {
        let mut c = Canvas::new(2, 2, WHITE);
        blend(
            &mut c,
            Rect::of(&Canvas::new(2, 2, WHITE)),
            1,
            1,
            BLACK,
            0.5,
        );
        assert_eq!(c.rgb[3], [128, 128, 128]);
        blend(&mut c, Rect::new(0, 0, 1, 1), 1, 1, BLACK, 1.0);
        assert_eq!(c.rgb[3], [128, 128, 128], "outside the clip rectangle");
    }

    #[test]
    fn dashes_leave_gaps_and_nan_points_are_skipped() {
        let mut c = Canvas::new(40, 3, WHITE);
        let clip = Rect::of(&c);
        dashed_line(&mut c, clip, (0.0, 1.5), (40.0, 1.5), 1.0, BLACK, 4.0, 4.0);
        let row: Vec<bool> = (0..40).map(|x| c.rgb[40 + x] == BLACK).collect();
        assert!(row[1] && !row[6] && row[9] && !row[14]);
        line(&mut c, clip, (f64::NAN, 0.0), (3.0, 3.0), 1.0, BLACK, 1.0);
        disc(&mut c, clip, (f64::INFINITY, 1.0), 2.0, BLACK, 1.0);
    }
}
