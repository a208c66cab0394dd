//! What every figure shares: the embedded font and its text layout, the colours, tick values, and
//! a plotters drawing area over a [`Canvas`], so figures draw with plotters and are saved
//! atomically by [`Canvas::save`].
//!
//! Text is laid out and rasterised here with ab_glyph (sub-pixel glyph positions, kerning,
//! sub- and superscripts, upward rotation); plotters draws the lines, marks and ticks.

use crate::png::Canvas;
use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont, point};
use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::sync::OnceLock;

/// An 8-bit RGB colour.
pub type Rgb = [u8; 3];

pub const BLACK: Rgb = [0, 0, 0];
pub const WHITE: Rgb = [255, 255, 255];
pub const GREY: Rgb = [128, 128, 128];
/// Pixels without a finite value in image panels.
pub const NAN_GREY: Rgb = [205, 205, 205];

/// Series colours (matplotlib's tab10, so figures read like the field's).
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

/// The family name the embedded font is registered under with plotters.
const FAMILY: &str = "DejaVu Sans";
/// DejaVu Sans (matplotlib's default face), embedded so no system font is needed (licence:
/// `core/assets/DejaVuSans-LICENSE.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The parsed embedded font; also registered with plotters, whose mesh lays out (empty) tick
/// labels through it.
fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        // also as plotters' default family, which its mesh asks for
        for family in [FAMILY, "sans-serif"] {
            plotters::style::register_font(family, FontStyle::Normal, DEJAVU_SANS)
                .unwrap_or_else(|_| panic!("the embedded {FAMILY} font does not parse"));
        }
        FontRef::try_from_slice(DEJAVU_SANS).expect("the embedded font parses")
    })
}

/// The plotters colour of `c`.
pub fn colour(c: Rgb) -> RGBColor {
    RGBColor(c[0], c[1], c[2])
}

/// A text style: size in pixels (the font's ascent to descent) and colour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Text {
    pub px: f64,
    pub colour: Rgb,
}

/// Black text of `px` pixels.
pub fn text(px: f64) -> Text {
    Text { px, colour: BLACK }
}

/// Text of `px` pixels in colour `c`.
pub fn text_in(px: f64, c: Rgb) -> Text {
    Text { px, colour: c }
}

/// The drawing area over a whole canvas (plotters draws straight into its pixels).
fn area(canvas: &mut Canvas) -> DrawingArea<BitMapBackend<'_>, Shift> {
    font();
    let (w, h) = (canvas.width as u32, canvas.height as u32);
    BitMapBackend::with_buffer(canvas.rgb.as_flattened_mut(), (w, h)).into_drawing_area()
}

/// Draw on `canvas` with `f`, then flush plotters' pixels into it.
pub fn draw_on(
    canvas: &mut Canvas,
    f: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()>,
) -> Result<()> {
    let root = area(canvas);
    f(&root)?;
    root.present().map_err(err)
}

/// A plotters error as an `anyhow` error.
pub fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing: {e:?}")
}

/// The tick values plotters places on [lo, hi] when asked for at most `n`, and the fewest
/// decimals that print every one of them exactly (so labels never repeat or round).
pub fn ticks(lo: f64, hi: f64, n: usize) -> (Vec<f64>, usize) {
    use plotters::coord::ranged1d::Ranged;
    use plotters::coord::types::RangedCoordf64;
    if n == 0 || !(lo.is_finite() && hi.is_finite()) || lo == hi {
        return (Vec::new(), 2);
    }
    let pts: Vec<f64> = RangedCoordf64::from(lo.min(hi)..lo.max(hi)).key_points(n);
    let tol = 1e-9 * (hi - lo).abs();
    let exact = |d: usize| {
        pts.iter().all(|v| {
            format!("{v:.d$}")
                .parse::<f64>()
                .is_ok_and(|p| (p - v).abs() <= tol)
        })
    };
    let d = (0..10).find(|&d| exact(d)).unwrap_or(10);
    (pts, d)
}

/// Width in pixels of the widest tick label of [`ticks`].
pub fn tick_label_width(lo: f64, hi: f64, n: usize, style: &Text) -> u32 {
    let (pts, d) = ticks(lo, hi, n);
    pts.iter()
        .map(|v| label_width(&format!("{v:.d$}"), style))
        .max()
        .unwrap_or(0)
}

/// Where a label's anchor point sits on its visible box (start = left or top).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Start,
    Centre,
    End,
}

impl Align {
    fn offset(self, extent: f64) -> f64 {
        match self {
            Align::Start => 0.0,
            Align::Centre => 0.5 * extent,
            Align::End => extent,
        }
    }
}

/// How a run of label text sits on the baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    Normal,
    Sub,
    Sup,
}

/// Split label markup into runs: `_{..}` subscript, `^{..}` superscript, `\x` a literal x.
fn runs(s: &str) -> Vec<(Script, String)> {
    let mut out = vec![(Script::Normal, String::new())];
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let inside = out.last().unwrap().0 != Script::Normal;
        match c {
            '\\' => out.last_mut().unwrap().1.extend(chars.next()),
            '_' | '^' if !inside && chars.peek() == Some(&'{') => {
                chars.next();
                let kind = if c == '_' { Script::Sub } else { Script::Sup };
                out.push((kind, String::new()));
            }
            '}' if inside => out.push((Script::Normal, String::new())),
            _ => out.last_mut().unwrap().1.push(c),
        }
    }
    out.retain(|r| !r.1.is_empty());
    out
}

/// Lay out label markup: its glyphs placed on a baseline at y = 0 (y down), x from 0, and the
/// advance width.
fn layout(s: &str, px: f64) -> (Vec<ab_glyph::Glyph>, f64) {
    let f = font();
    let mut out = Vec::new();
    let mut x = 0f32;
    for (script, run) in runs(s) {
        let (scale, dy) = match script {
            Script::Normal => (px, 0.0),
            Script::Sub => (0.7 * px, 0.2 * px),
            Script::Sup => (0.7 * px, -0.35 * px),
        };
        let sf = f.as_scaled(PxScale::from(scale as f32));
        let mut prev = None;
        for c in run.chars() {
            let id = sf.glyph_id(c);
            if let Some(p) = prev {
                x += sf.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale as f32, point(x, dy as f32));
            out.push(glyph);
            x += sf.h_advance(id);
            prev = Some(id);
        }
    }
    (out, x as f64)
}

/// Width in pixels of label markup `s` (see [`label`]).
pub fn label_width(s: &str, style: &Text) -> u32 {
    layout(s, style.px).1.ceil() as u32
}

/// Cap height of DejaVu Sans as a fraction of the pixel size (ascent - descent).
const CAP: f64 = 1493.0 / 2384.0;

/// Draw label markup `s` (`_{..}` subscripts, `^{..}` superscripts, `\x` literal) so that its
/// cap box (baseline to cap height; descenders hang below) is aligned at `(x, y)` of `area` as
/// `h`, `v` say; `upward` turns it to read bottom to top. Placing by the cap box keeps labels
/// centred on ticks and rows.
#[allow(clippy::too_many_arguments)]
pub fn label<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    s: &str,
    style: &Text,
    (x, y): (i32, i32),
    h: Align,
    v: Align,
    upward: bool,
) -> Result<()> {
    if s.is_empty() {
        return Ok(());
    }
    let (glyphs, w) = layout(s, style.px);
    let cap = CAP * style.px;
    let (bw, bh) = if upward { (cap, w) } else { (w, cap) };
    let (x0, y0) = (x as f64 - h.offset(bw), y as f64 - v.offset(bh));
    let c = colour(style.colour);
    for g in glyphs {
        let Some(o) = font().outline_glyph(g) else {
            continue;
        };
        let b = o.px_bounds();
        let mut err_out = Ok(());
        o.draw(|gx, gy, cov| {
            if cov <= 0.0 || err_out.is_err() {
                return;
            }
            // glyph pixel in text space: baseline at y = 0, x along the text
            let (tx, ty) = (b.min.x as f64 + gx as f64, b.min.y as f64 + gy as f64);
            let (px, py) = if upward {
                (x0 + cap + ty, y0 + w - tx)
            } else {
                (x0 + tx, y0 + cap + ty)
            };
            let at = (px.round() as i32, py.round() as i32);
            err_out = area
                .draw_pixel(at, &c.mix(cov.min(1.0) as f64))
                .map_err(err);
        });
        err_out?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_splits_into_runs() {
        assert_eq!(
            runs("θ_{E} x^{2} a\\_b"),
            vec![
                (Script::Normal, "θ".into()),
                (Script::Sub, "E".into()),
                (Script::Normal, " x".into()),
                (Script::Sup, "2".into()),
                (Script::Normal, " a_b".into()),
            ]
        );
    }

    #[test]
    fn labels_sit_where_they_are_aligned() {
        let mut c = Canvas::new(200, 100, WHITE);
        draw_on(&mut c, |root| {
            label(
                root,
                "HH",
                &text(40.0),
                (100, 50),
                Align::Centre,
                Align::Centre,
                false,
            )
        })
        .unwrap();
        let ink: Vec<(usize, usize)> = (0..c.rgb.len())
            .filter(|&i| c.rgb[i][0] < 128)
            .map(|i| (i % 200, i / 200))
            .collect();
        let (xs, ys): (Vec<_>, Vec<_>) = ink.iter().copied().unzip();
        let mid = |v: &Vec<usize>| (v.iter().min().unwrap() + v.iter().max().unwrap()) as f64 / 2.0;
        assert!((mid(&xs) - 100.0).abs() <= 2.0, "{}", mid(&xs));
        assert!((mid(&ys) - 50.0).abs() <= 2.0, "{}", mid(&ys));
        // cap height of 40 px text
        let h = ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1;
        assert!((h as f64 - CAP * 40.0).abs() <= 2.0, "{h}");
        assert!(label_width("HH", &text(40.0)) > label_width("H", &text(40.0)));
    }
}
