//! A rectangular plotting area with data limits: coordinate mapping, frame, ticks with
//! numeric labels, axis labels, and the usual series (lines, points, step histograms,
//! reference lines).
//!
//! y grows upwards in data space and downwards on the canvas; the mapping takes care of it.

use super::draw::{self, BLACK, Rect, Rgb};
use super::ticks;
use crate::png::Canvas;
use crate::text::{self, Anchor};

/// Length of tick marks (drawn inwards) per font scale unit.
const TICK_LEN_PER_SCALE: i64 = 3;
/// Gap between the frame and tick labels per font scale unit.
const LABEL_GAP_PER_SCALE: i64 = 2;

/// A plotting area: the pixel rectangle and the data range it shows.
#[derive(Clone, Copy, Debug)]
pub struct Axes {
    pub rect: Rect,
    pub xlim: (f64, f64),
    pub ylim: (f64, f64),
}

impl Axes {
    /// Axes over `rect` showing `xlim` x `ylim`; degenerate limits are widened (see
    /// [`ticks::safe_range`]).
    pub fn new(rect: Rect, xlim: (f64, f64), ylim: (f64, f64)) -> Self {
        Axes {
            rect,
            xlim: ticks::safe_range(xlim.0, xlim.1),
            ylim: ticks::safe_range(ylim.0, ylim.1),
        }
    }

    /// Continuous canvas x of data x.
    pub fn x_to_px(&self, x: f64) -> f64 {
        self.rect.x as f64 + (x - self.xlim.0) / (self.xlim.1 - self.xlim.0) * self.rect.w as f64
    }

    /// Continuous canvas y of data y (data y up, canvas y down).
    pub fn y_to_px(&self, y: f64) -> f64 {
        self.rect.y as f64 + (self.ylim.1 - y) / (self.ylim.1 - self.ylim.0) * self.rect.h as f64
    }

    /// Data x at continuous canvas x.
    pub fn px_to_x(&self, px: f64) -> f64 {
        self.xlim.0 + (px - self.rect.x as f64) / self.rect.w as f64 * (self.xlim.1 - self.xlim.0)
    }

    /// Data y at continuous canvas y.
    pub fn px_to_y(&self, py: f64) -> f64 {
        self.ylim.1 - (py - self.rect.y as f64) / self.rect.h as f64 * (self.ylim.1 - self.ylim.0)
    }

    /// The canvas point of a data point.
    pub fn to_px(&self, x: f64, y: f64) -> (f64, f64) {
        (self.x_to_px(x), self.y_to_px(y))
    }

    /// Fill the plotting area.
    pub fn background(&self, canvas: &mut Canvas, colour: Rgb) {
        draw::fill_rect(canvas, Rect::of(canvas), self.rect, colour, 1.0);
    }

    /// A one-pixel frame drawn just outside the plotting area.
    pub fn frame(&self, canvas: &mut Canvas, colour: Rgb) {
        let r = self.rect;
        draw::rect_outline(
            canvas,
            Rect::of(canvas),
            Rect::new(r.x - 1, r.y - 1, r.w + 2, r.h + 2),
            colour,
            1,
        );
    }

    /// Nice x ticks whose labels (at font `scale`) do not collide: as many as possible up to
    /// `max_ticks`, each label at least one glyph width from its neighbour; a label may
    /// stick out of the area by at most `overhang` pixels on either side.
    pub fn fitted_x_ticks(
        &self,
        scale: usize,
        max_ticks: usize,
        overhang: i64,
    ) -> Vec<(f64, String)> {
        let half = |s: &str| text::label_size(s, scale).0 as f64 / 2.0;
        let gap = (6 * scale) as f64;
        fit_ticks(
            self.xlim,
            max_ticks,
            |v| self.x_to_px(v),
            self.rect.x,
            self.rect.right(),
            overhang,
            half,
            gap,
        )
    }

    /// Nice y ticks whose labels do not collide (one text height of space between labels);
    /// labels may stick out by at most `overhang` pixels above or below.
    pub fn fitted_y_ticks(
        &self,
        scale: usize,
        max_ticks: usize,
        overhang: i64,
    ) -> Vec<(f64, String)> {
        let half = |_: &str| (text::CAP_ROWS * scale) as f64 / 2.0;
        let gap = text::text_height(scale) as f64;
        fit_ticks(
            self.ylim,
            max_ticks,
            |v| self.y_to_px(v),
            self.rect.y,
            self.rect.bottom(),
            overhang,
            half,
            gap,
        )
    }

    /// Tick marks along the bottom edge (and the top edge, mirrored) with labels below when
    /// `labels`. Returns the canvas y just below the labels.
    pub fn x_ticks(
        &self,
        canvas: &mut Canvas,
        ticks: &[(f64, String)],
        scale: usize,
        labels: bool,
    ) -> i64 {
        let len = TICK_LEN_PER_SCALE * scale as i64;
        let all = Rect::of(canvas);
        for (v, s) in ticks {
            let x = self.x_to_px(*v).round() as i64;
            if x < self.rect.x || x > self.rect.right() {
                continue;
            }
            let x = x.min(self.rect.right() - 1);
            draw::fill_rect(
                canvas,
                all,
                Rect::new(x, self.rect.bottom() - len, 1, len),
                BLACK,
                1.0,
            );
            draw::fill_rect(canvas, all, Rect::new(x, self.rect.y, 1, len), BLACK, 1.0);
            if labels {
                let y = self.rect.bottom() + LABEL_GAP_PER_SCALE * scale as i64;
                text::draw_label(canvas, x, y, s, scale, BLACK, Anchor::TopCentre, false);
            }
        }
        self.rect.bottom()
            + LABEL_GAP_PER_SCALE * scale as i64
            + if labels {
                text::text_height(scale) as i64
            } else {
                0
            }
    }

    /// Tick marks along the left edge (and the right edge, mirrored) with labels to the left
    /// when `labels`. Returns the canvas x left of the widest label.
    pub fn y_ticks(
        &self,
        canvas: &mut Canvas,
        ticks: &[(f64, String)],
        scale: usize,
        labels: bool,
    ) -> i64 {
        let len = TICK_LEN_PER_SCALE * scale as i64;
        let all = Rect::of(canvas);
        let mut left = self.rect.x - LABEL_GAP_PER_SCALE * scale as i64;
        for (v, s) in ticks {
            let y = self.y_to_px(*v).round() as i64;
            if y < self.rect.y || y > self.rect.bottom() {
                continue;
            }
            let y = y.min(self.rect.bottom() - 1);
            draw::fill_rect(canvas, all, Rect::new(self.rect.x, y, len, 1), BLACK, 1.0);
            draw::fill_rect(
                canvas,
                all,
                Rect::new(self.rect.right() - len, y, len, 1),
                BLACK,
                1.0,
            );
            if labels {
                // Centre the capitals (not the descender box) on the tick.
                let x = self.rect.x - LABEL_GAP_PER_SCALE * scale as i64;
                let top = y - (text::CAP_ROWS * scale) as i64 / 2;
                let (l, _, _, _) =
                    text::draw_label(canvas, x, top, s, scale, BLACK, Anchor::TopRight, false);
                left = left.min(l);
            }
        }
        left
    }

    /// Width in pixels taken left of the area by y tick labels at `scale`.
    pub fn y_tick_label_width(ticks: &[(f64, String)], scale: usize) -> i64 {
        let w = ticks
            .iter()
            .map(|(_, s)| text::label_size(s, scale).0)
            .max()
            .unwrap_or(0);
        w as i64 + LABEL_GAP_PER_SCALE * scale as i64
    }

    /// Height in pixels taken below the area by x tick labels at `scale`.
    pub fn x_tick_label_height(scale: usize) -> i64 {
        text::text_height(scale) as i64 + LABEL_GAP_PER_SCALE * scale as i64
    }

    /// An axis label centred under the area, its top at canvas y `top`.
    pub fn x_label(&self, canvas: &mut Canvas, top: i64, label: &str, scale: usize) {
        let cx = self.rect.x + self.rect.w / 2;
        text::draw_label(
            canvas,
            cx,
            top,
            label,
            scale,
            BLACK,
            Anchor::TopCentre,
            false,
        );
    }

    /// An axis label reading upwards, centred beside the area, its right edge at canvas x
    /// `right`.
    pub fn y_label(&self, canvas: &mut Canvas, right: i64, label: &str, scale: usize) {
        let cy = self.rect.y + self.rect.h / 2;
        text::draw_label(
            canvas,
            right,
            cy,
            label,
            scale,
            BLACK,
            Anchor::CentreRight,
            true,
        );
    }

    /// A title centred above the area, its bottom `gap` pixels above the frame.
    pub fn title(&self, canvas: &mut Canvas, title: &str, scale: usize, gap: i64) {
        let cx = self.rect.x + self.rect.w / 2;
        text::draw_label(
            canvas,
            cx,
            self.rect.y - gap,
            title,
            scale,
            BLACK,
            Anchor::BottomCentre,
            false,
        );
    }

    /// A line through (xs[i], ys[i]), clipped to the area; non-finite points break it.
    pub fn line(
        &self,
        canvas: &mut Canvas,
        xs: &[f64],
        ys: &[f64],
        width: f64,
        colour: Rgb,
        alpha: f32,
    ) {
        let pts: Vec<(f64, f64)> = xs.iter().zip(ys).map(|(&x, &y)| self.to_px(x, y)).collect();
        draw::polyline(canvas, self.rect, &pts, width, colour, alpha);
    }

    /// Points as discs of radius `radius` pixels, clipped to the area.
    pub fn scatter(
        &self,
        canvas: &mut Canvas,
        xs: &[f64],
        ys: &[f64],
        radius: f64,
        colour: Rgb,
        alpha: f32,
    ) {
        for (&x, &y) in xs.iter().zip(ys) {
            draw::disc(canvas, self.rect, self.to_px(x, y), radius, colour, alpha);
        }
    }

    /// A vertical reference line at data x, solid or dashed.
    pub fn vline(&self, canvas: &mut Canvas, x: f64, width: f64, colour: Rgb, dashed: bool) {
        let px = self.x_to_px(x);
        let (a, b) = ((px, self.rect.y as f64), (px, self.rect.bottom() as f64));
        if dashed {
            draw::dashed_line(canvas, self.rect, a, b, width, colour, 6.0, 4.0);
        } else {
            draw::line(canvas, self.rect, a, b, width, colour, 1.0);
        }
    }

    /// A horizontal reference line at data y, solid or dashed.
    pub fn hline(&self, canvas: &mut Canvas, y: f64, width: f64, colour: Rgb, dashed: bool) {
        let py = self.y_to_px(y);
        let (a, b) = ((self.rect.x as f64, py), (self.rect.right() as f64, py));
        if dashed {
            draw::dashed_line(canvas, self.rect, a, b, width, colour, 6.0, 4.0);
        } else {
            draw::line(canvas, self.rect, a, b, width, colour, 1.0);
        }
    }

    /// A histogram drawn as a step outline over bin `edges` (len = heights + 1), with the
    /// area under it filled at opacity `fill_alpha` (0 for none).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        canvas: &mut Canvas,
        edges: &[f64],
        heights: &[f64],
        width: f64,
        colour: Rgb,
        fill_alpha: f32,
    ) {
        if edges.len() != heights.len() + 1 || heights.is_empty() {
            return;
        }
        let base = self.y_to_px(self.ylim.0.max(0.0).min(self.ylim.1));
        if fill_alpha > 0.0 {
            for (i, &h) in heights.iter().enumerate() {
                let xa = self.x_to_px(edges[i]).round() as i64;
                let xb = self.x_to_px(edges[i + 1]).round() as i64;
                let top = self.y_to_px(h).round() as i64;
                let r = Rect::new(xa, top, xb - xa, base.round() as i64 - top);
                draw::fill_rect(canvas, self.rect, r, colour, fill_alpha);
            }
        }
        let mut pts = Vec::with_capacity(2 * heights.len() + 2);
        pts.push((self.x_to_px(edges[0]), base));
        for (i, &h) in heights.iter().enumerate() {
            let y = self.y_to_px(h);
            pts.push((self.x_to_px(edges[i]), y));
            pts.push((self.x_to_px(edges[i + 1]), y));
        }
        pts.push((self.x_to_px(edges[heights.len()]), base));
        draw::polyline(canvas, self.rect, &pts, width, colour, 1.0);
    }
}

/// Shared tick fitting. Candidates are the nice ticks for every count from 3 `max_ticks`
/// down to 2, each also thinned to the multiples of twice its step (keeping round values such as
/// 1.48, 1.52 when 1.48, 1.50, 1.52 would crowd); labels sticking out of [lo_px, hi_px] by
/// more than `overhang` are dropped. A candidate fits when its labels, each
/// `half_extent(label)` pixels either side of its tick along the axis, stay `gap` pixels
/// apart. The fitting candidate with the most ticks (at most `max_ticks`) wins, then the one
/// with the shortest labels, then an unthinned one; if none has two ticks, the middle tick
/// of the sparsest set is kept alone.
#[allow(clippy::too_many_arguments)]
fn fit_ticks(
    lim: (f64, f64),
    max_ticks: usize,
    to_px: impl Fn(f64) -> f64,
    lo_px: i64,
    hi_px: i64,
    overhang: i64,
    half_extent: impl Fn(&str) -> f64,
    gap: f64,
) -> Vec<(f64, String)> {
    let fits = |c: &[(f64, String)]| {
        c.windows(2).all(|w| {
            let d = (to_px(w[1].0) - to_px(w[0].0)).abs();
            d >= half_extent(&w[0].1) + half_extent(&w[1].1) + gap
        })
    };
    // Preference: more ticks, then shorter labels, then an unthinned nice step; on full ties
    // the denser nice step (found first) stays.
    let score = |c: &[(f64, String)], k: usize| {
        let longest = c.iter().map(|(_, s)| s.chars().count()).max().unwrap_or(0);
        (c.len(), usize::MAX - longest, (k == 1) as u8)
    };
    let mut best: Vec<(f64, String)> = Vec::new();
    let mut best_score = (0, 0, 0);
    let mut sparsest: Vec<(f64, String)> = Vec::new();
    let max_ticks = max_ticks.max(2);
    for n in (2..=3 * max_ticks).rev() {
        let cand: Vec<(f64, String)> = ticks::ticks_with_labels(lim.0, lim.1, n)
            .into_iter()
            .filter(|(v, s)| {
                let (p, e) = (to_px(*v), half_extent(s));
                p - e >= (lo_px - overhang) as f64 && p + e <= (hi_px + overhang) as f64
            })
            .collect();
        if cand.is_empty() {
            continue;
        }
        // Thinning keeps the multiples of twice the step (0, 0.2, 0.4 from a 0.1 step).
        let step = ticks::tick_step(lim.0, lim.1, n);
        let even = |v: f64| ((v / step).round() as i64).rem_euclid(2) == 0;
        for k in 1..=2usize {
            let thinned: Vec<(f64, String)> = cand
                .iter()
                .filter(|(v, _)| k == 1 || even(*v))
                .cloned()
                .collect();
            if thinned.is_empty() || thinned.len() > max_ticks || !fits(&thinned) {
                continue;
            }
            let sc = score(&thinned, k);
            if sc > best_score {
                best_score = sc;
                best = thinned;
            }
        }
        if n <= max_ticks {
            sparsest = cand;
        }
    }
    if best.len() >= 2 {
        return best;
    }
    if sparsest.len() > 1 {
        let mid = sparsest.len() / 2;
        sparsest = vec![sparsest[mid].clone()];
    }
    sparsest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_round_trips_and_y_points_up() {
        let a = Axes::new(Rect::new(10, 20, 100, 50), (0.0, 2.0), (-1.0, 1.0));
        assert_eq!(a.x_to_px(0.0), 10.0);
        assert_eq!(a.x_to_px(2.0), 110.0);
        assert_eq!(a.y_to_px(1.0), 20.0);
        assert_eq!(a.y_to_px(-1.0), 70.0);
        assert!((a.px_to_x(a.x_to_px(1.3)) - 1.3).abs() < 1e-12);
        assert!((a.px_to_y(a.y_to_px(0.4)) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn fitted_ticks_do_not_overlap() {
        let a = Axes::new(Rect::new(0, 0, 90, 90), (1.4921, 1.5277), (0.0, 1.0));
        for scale in 1..4 {
            let t = a.fitted_x_ticks(scale, 6, 0);
            assert!(!t.is_empty());
            for w in t.windows(2) {
                let d = a.x_to_px(w[1].0) - a.x_to_px(w[0].0);
                let need = (text::text_width(&w[0].1, scale) + text::text_width(&w[1].1, scale))
                    as f64
                    / 2.0;
                assert!(d > need, "scale {scale}: {t:?}");
            }
        }
    }

    #[test]
    fn crowded_ticks_are_thinned_to_keep_two_round_labels() {
        // 1.46..1.55 on 200 px at scale 2: 1.48, 1.50, 1.52, 1.54 crowd, 1.50 alone is poor;
        // every other tick of the 0.02 step fits.
        let a = Axes::new(Rect::new(0, 0, 200, 200), (1.46, 1.55), (0.0, 1.0));
        let t = a.fitted_x_ticks(2, 5, 3);
        assert!(t.len() >= 2, "{t:?}");
        assert!(t.iter().all(|(_, s)| s.len() == 4), "two decimals: {t:?}");
    }

    #[test]
    fn ticks_and_labels_are_drawn() {
        let mut c = Canvas::new(200, 160, draw::WHITE);
        let a = Axes::new(Rect::new(40, 10, 150, 100), (0.0, 1.0), (0.0, 1.0));
        a.frame(&mut c, BLACK);
        let t = a.fitted_x_ticks(2, 6, 20);
        let below = a.x_ticks(&mut c, &t, 2, true);
        assert_eq!(below, 110 + 4 + 18);
        let ink_below =
            (111..below).any(|y| (0..200).any(|x| c.rgb[y as usize * 200 + x] == BLACK));
        assert!(ink_below);
        // Tick mark at x = 0.5 -> canvas x 115, just above the bottom frame line.
        assert_eq!(c.rgb[108 * 200 + 115], BLACK);
    }
}
