//! Text on a [`Canvas`]: an embedded bitmap font, so figures need no system fonts.
//!
//! The font is a 5-column, 9-row bitmap per glyph: rows 0-6 hold capitals and ascenders (cap
//! height 7), rows 7-8 hold descenders (g, p, y, ...). Lower case sits on rows 2-6. Every pixel
//! of the bitmap becomes a `scale` x `scale` block, so text stays crisp at any integer size.
//! Spacing is proportional (blank columns are trimmed, one blank column between glyphs) except
//! for digits, which keep the full width so numbers in tick labels line up.
//!
//! Besides printable ASCII the table has the Greek letters used for lens parameters (θ, γ, φ,
//! σ, χ, ...), `°`, `±`, `×` and `·`; `−` (U+2212) draws as `-`, `µ` as `μ`. Unknown characters
//! draw as a hollow box.
//!
//! Two entry points:
//! - [`draw_text`] / [`text_width`]: plain text, drawn from its top-left corner;
//! - [`draw_label`] / [`label_size`]: a small markup for axis labels, `θ_{E}`, `σ^{2}`,
//!   `x_{src}^{2}` (sub- and superscripts only with braces, so that file names and identifiers
//!   such as `sigma_bkg` print unchanged; `\_`, `\^`, `\{`, `\}`, `\\` escape), anchored at any
//!   corner or centre of its box, optionally rotated 90° counter-clockwise (reading upwards,
//!   for y-axis labels).

use crate::png::Canvas;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Width of a glyph cell in font pixels.
pub const GLYPH_COLS: usize = 5;
/// Height of a glyph cell in font pixels (7 above the baseline, 2 below).
pub const GLYPH_ROWS: usize = 9;
/// Height of capitals and digits in font pixels.
pub const CAP_ROWS: usize = 7;
/// Advance of a space in font pixels.
const SPACE_ADVANCE: usize = 3;

/// The glyph art: bands of up to eight glyphs. In every band the first line names the glyphs,
/// each at column `6 k`, and the next nine lines draw them, each five characters wide at column
/// `6 k` (`#` = ink). Parsed once, on first use, by [`glyphs`].
const FONT_ART: &str = r#"
      !     "     #     $     %     &     '
..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#..
..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#..
..... ..#.. ..... ##### #.#.. ...#. #.#.. .....
..... ..#.. ..... .#.#. .###. ..#.. .#... .....
..... ..#.. ..... ##### ..#.# .#... #.#.# .....
..... ..... ..... .#.#. ####. #..## #..#. .....
..... ..#.. ..... .#.#. ..#.. ...## .##.# .....
..... ..... ..... ..... ..... ..... ..... .....
..... ..... ..... ..... ..... ..... ..... .....
(     )     *     +     ,     -     .     /
...#. .#... ..... ..... ..... ..... ..... ....#
..#.. ..#.. ..#.. ..#.. ..... ..... ..... ....#
.#... ...#. #.#.# ..#.. ..... ..... ..... ...#.
.#... ...#. .###. ##### ..... ##### ..... ..#..
.#... ...#. #.#.# ..#.. ..... ..... ..... .#...
..#.. ..#.. ..#.. ..#.. .##.. ..... .##.. #....
...#. .#... ..... ..... .##.. ..... .##.. #....
..... ..... ..... ..... ..#.. ..... ..... .....
..... ..... ..... ..... .#... ..... ..... .....
0     1     2     3     4     5     6     7
.###. ..#.. .###. ##### ...#. ##### ..##. #####
#...# .##.. #...# ...#. ..##. #.... .#... ....#
#..## ..#.. ....# ..#.. .#.#. ####. #.... ...#.
#.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#..
##..# ..#.. ..#.. ....# ##### ....# #...# .#...
#...# ..#.. .#... #...# ...#. #...# #...# .#...
.###. .###. ##### .###. ...#. .###. .###. .#...
..... ..... ..... ..... ..... ..... ..... .....
..... ..... ..... ..... ..... ..... ..... .....
8     9     :     ;     <     =     >     ?
.###. .###. ..... ..... ...#. ..... .#... .###.
#...# #...# .##.. .##.. ..#.. ..... ..#.. #...#
#...# #...# .##.. .##.. .#... ##### ...#. ....#
.###. .#### ..... ..... #.... ..... ....# ...#.
#...# ....# .##.. .##.. .#... ##### ...#. ..#..
#...# ...#. .##.. .##.. ..#.. ..... ..#.. .....
.###. .##.. ..... ..#.. ...#. ..... .#... ..#..
..... ..... ..... .#... ..... ..... ..... .....
..... ..... ..... ..... ..... ..... ..... .....
@     A     B     C     D     E     F     G
.###. .###. ####. .###. ###.. ##### ##### .###.
#...# #...# #...# #...# #..#. #.... #.... #...#
....# #...# #...# #.... #...# #.... #.... #....
.##.# ##### ####. #.... #...# ####. ####. #.###
#.#.# #...# #...# #.... #...# #.... #.... #...#
#.#.# #...# #...# #...# #..#. #.... #.... #...#
.###. #...# ####. .###. ###.. ##### #.... .####
..... ..... ..... ..... ..... ..... ..... .....
..... ..... ..... ..... ..... ..... ..... .....
H     I     J     K     L     M     N     O
#...# .###. ..### #...# #.... #...# #...# .###.
#...# ..#.. ...#. #..#. #.... ##.## #...# #...#
#...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#
##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#
#...# ..#.. ...#. #.#.. #.... #...# #..## #...#
#...# ..#.. #..#. #..#. #.... #...# #...# #...#
#...# .###. .##.. #...# ##### #...# #...# .###.
..... ..... ..... ..... ..... ..... ..... .....
..... ..... ..... ..... ..... ..... ..... .....
P     Q     R     S     T     U     V     W
####. .###. ####. .#### ##### #...# #...# #...#
#...# #...# #...# #.... ..#.. #...# #...# #...#
#...# #...# #...# #.... ..#.. #...# #...# #...#
####. #...# ####. .###. ..#.. #...# #...# #.#.#
#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.#
#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.#
#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#.
..... ..... ..... ..... ..... ..... ..... .....
..... ..... ..... ..... ..... ..... ..... .....
X     Y     Z     [     \     ]     ^     _
#...# #...# ##### .###. #.... .###. ..#.. .....
#...# #...# ....# .#... #.... ...#. .#.#. .....
.#.#. .#.#. ...#. .#... .#... ...#. #...# .....
..#.. ..#.. ..#.. .#... ..#.. ...#. ..... .....
.#.#. ..#.. .#... .#... ...#. ...#. ..... .....
#...# ..#.. #.... .#... ....# ...#. ..... .....
#...# ..#.. ##### .###. ....# .###. ..... .....
..... ..... ..... ..... ..... ..... ..... #####
..... ..... ..... ..... ..... ..... ..... .....
`     a     b     c     d     e     f     g
.#... ..... #.... ..... ....# ..... ..##. .....
..#.. ..... #.... ..... ....# ..... .#..# .....
..... .###. #.##. .###. .##.# .###. .#... .####
..... ....# ##..# #.... #..## #...# ###.. #...#
..... .#### #...# #.... #...# ##### .#... #...#
..... #...# #...# #...# #...# #.... .#... #...#
..... .#### ####. .###. .#### .###. .#... .####
..... ..... ..... ..... ..... ..... ..... ....#
..... ..... ..... ..... ..... ..... ..... .###.
h     i     j     k     l     m     n     o
#.... ..#.. ...#. #.... .##.. ..... ..... .....
#.... ..... ..... #.... ..#.. ..... ..... .....
#.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###.
##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...#
#...# ..#.. ...#. ##... ..#.. #.#.# #...# #...#
#...# ..#.. ...#. #.#.. ..#.. #.#.# #...# #...#
#...# .###. ...#. #..#. .###. #.#.# #...# .###.
..... ..... #..#. ..... ..... ..... ..... .....
..... ..... .##.. ..... ..... ..... ..... .....
p     q     r     s     t     u     v     w
..... ..... ..... ..... .#... ..... ..... .....
..... ..... ..... ..... .#... ..... ..... .....
####. .#### #.##. .#### ###.. #...# #...# #...#
#...# #...# ##..# #.... .#... #...# #...# #...#
#...# #...# #.... .###. .#... #...# #...# #.#.#
#...# #...# #.... ....# .#..# #..## .#.#. #.#.#
####. .#### #.... ####. ..##. .##.# ..#.. .#.#.
#.... ....# ..... ..... ..... ..... ..... .....
#.... ....# ..... ..... ..... ..... ..... .....
x     y     z     {     |     }     ~     □
..... ..... ..... ...#. ..#.. .#... ..... #####
..... ..... ..... ..#.. ..#.. ..#.. ..... #...#
#...# #...# ##### ..#.. ..#.. ..#.. .#... #...#
.#.#. #...# ...#. .#... ..#.. ...#. #.#.# #...#
..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#. #...#
.#.#. #...# .#... ..#.. ..#.. ..#.. ..... #...#
#...# .#### ##### ...#. ..#.. .#... ..... #####
..... ....# ..... ..... ..... ..... ..... .....
..... .###. ..... ..... ..... ..... ..... .....
α     β     γ     δ     ε     η     θ     κ
..... .##.. ..... .###. ..... ..... .##.. .....
..... #..#. ..... .#... ..... ..... #..#. .....
.##.# #..#. #...# ..#.. .###. #.##. #..#. #..#.
#..#. ###.. #...# .###. #.... ##..# ####. #.#..
#..#. #..#. .#.#. #...# .##.. #...# #..#. ##...
#..#. #...# .#.#. #...# #.... #...# #..#. #.#..
.##.# ####. ..#.. .###. .###. #...# .##.. #..#.
..... #.... .#.#. ..... ..... ....# ..... .....
..... #.... ..#.. ..... ..... ....# ..... .....
λ     μ     ν     π     ρ     σ     τ     φ
#.... ..... ..... ..... ..... ..... ..... .....
.#... ..... ..... ..... ..... ..... ..... ..#..
.#... #...# #...# ##### .###. .#### ##### .###.
..#.. #...# #...# .#.#. #...# #..#. ..#.. #.#.#
.#.#. #...# #..#. .#.#. #...# #...# ..#.. #.#.#
#...# #..## #.#.. .#.#. #...# #...# ..#.. #.#.#
#...# ###.# ##... .#..# ####. .###. ...## .###.
..... #.... ..... ..... #.... ..... ..... ..#..
..... #.... ..... ..... #.... ..... ..... ..#..
χ     ψ     ω     Γ     Δ     Θ     Σ     Φ
..... ..... ..... ##### ..#.. .###. ##### ..#..
..... ..#.. ..... #.... ..#.. #...# #.... .###.
#...# #.#.# .#.#. #.... .#.#. #...# .#... #.#.#
.#.#. #.#.# #...# #.... .#.#. ##### ..#.. #.#.#
.#.#. #.#.# #.#.# #.... #...# #...# .#... #.#.#
..#.. .###. #.#.# #.... #...# #...# #.... .###.
.#.#. ..#.. .#.#. #.... ##### .###. ##### ..#..
.#.#. ..#.. ..... ..... ..... ..... ..... .....
#...# ..... ..... ..... ..... ..... ..... .....
Ω     °     ±     ×     ·     ≈
.###. .##.. ..#.. ..... ..... .....
#...# #..#. ..#.. #...# ..... .....
#...# #..#. ##### .#.#. ..... .##.#
#...# .##.. ..#.. ..#.. ..#.. #..#.
.#.#. ..... ..#.. .#.#. ..... .##.#
.#.#. ..... ..... #...# ..... #..#.
##.## ..... ##### ..... ..... .....
..... ..... ..... ..... ..... .....
..... ..... ..... ..... ..... .....
"#;

/// One parsed glyph: ink rows (bit 4 = leftmost column) and its horizontal ink extent.
#[derive(Clone, Copy, Debug)]
struct Glyph {
    rows: [u8; GLYPH_ROWS],
    /// First column drawn (blank columns on the left are trimmed).
    first: usize,
    /// Number of columns drawn.
    width: usize,
}

/// The glyph table, parsed from [`FONT_ART`] on first use.
fn glyphs() -> &'static HashMap<char, Glyph> {
    static TABLE: OnceLock<HashMap<char, Glyph>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let lines: Vec<Vec<char>> = FONT_ART
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.chars().collect())
            .collect();
        let mut map = HashMap::new();
        for band in lines.chunks(GLYPH_ROWS + 1) {
            assert_eq!(band.len(), GLYPH_ROWS + 1, "font art: incomplete band");
            let header = &band[0];
            let count = band[1].len().div_ceil(GLYPH_COLS + 1);
            for k in 0..count {
                let c = header.get(k * (GLYPH_COLS + 1)).copied().unwrap_or(' ');
                let mut rows = [0u8; GLYPH_ROWS];
                for (r, row) in rows.iter_mut().enumerate() {
                    for col in 0..GLYPH_COLS {
                        if band[1 + r].get(k * (GLYPH_COLS + 1) + col) == Some(&'#') {
                            *row |= 1 << (GLYPH_COLS - 1 - col);
                        }
                    }
                }
                let ink = rows.iter().fold(0u8, |a, &r| a | r);
                let (first, width) = if c == ' ' {
                    (0, SPACE_ADVANCE - 1)
                } else if c.is_ascii_digit() || ink == 0 {
                    // Digits keep the full width (tabular figures); so does an empty glyph.
                    (0, GLYPH_COLS)
                } else {
                    let first = (0..GLYPH_COLS)
                        .find(|&col| ink & (1 << (GLYPH_COLS - 1 - col)) != 0)
                        .unwrap();
                    let last = (0..GLYPH_COLS)
                        .rev()
                        .find(|&col| ink & (1 << (GLYPH_COLS - 1 - col)) != 0)
                        .unwrap();
                    (first, last - first + 1)
                };
                map.insert(c, Glyph { rows, first, width });
            }
        }
        map
    })
}

/// The glyph for `c`, with aliases (`−` -> `-`, `µ` -> `μ`) and a hollow box for unknown
/// characters.
fn glyph(c: char) -> Glyph {
    let table = glyphs();
    let c = match c {
        '\u{2212}' | '\u{2013}' => '-',
        '\u{00B5}' => 'μ',
        '\t' => ' ',
        other => other,
    };
    table
        .get(&c)
        .or_else(|| table.get(&'□'))
        .copied()
        .expect("font has a fallback box")
}

/// Where a text box is attached to the point given to [`draw_label`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    TopLeft,
    TopCentre,
    TopRight,
    CentreLeft,
    Centre,
    CentreRight,
    BottomLeft,
    BottomCentre,
    BottomRight,
}

impl Anchor {
    /// Fractions (0, 0.5 or 1) of the box width and height from its top-left to the anchor.
    fn fractions(self) -> (f64, f64) {
        use Anchor::*;
        match self {
            TopLeft => (0.0, 0.0),
            TopCentre => (0.5, 0.0),
            TopRight => (1.0, 0.0),
            CentreLeft => (0.0, 0.5),
            Centre => (0.5, 0.5),
            CentreRight => (1.0, 0.5),
            BottomLeft => (0.0, 1.0),
            BottomCentre => (0.5, 1.0),
            BottomRight => (1.0, 1.0),
        }
    }
}

/// A glyph placed in text-local pixel coordinates (u along the text, v downwards from the top
/// of the main line).
#[derive(Clone, Copy, Debug)]
struct Placed {
    glyph: Glyph,
    u: i64,
    v: i64,
    scale: usize,
}

/// Text-local layout of a run: placed glyphs plus the box (u from 0 to `width`, v from `top`
/// to `bottom`).
struct Layout {
    glyphs: Vec<Placed>,
    width: i64,
    top: i64,
    bottom: i64,
}

/// Characters that a backslash escapes in markup.
const MARKUP_ESCAPES: &str = "_^{}\\";

/// Scale of sub- and superscripts for a main-line `scale`.
fn script_scale(scale: usize) -> usize {
    ((2 * scale + 1) / 3).max(1)
}

/// Lay out `text` at `scale`; with `markup`, `_`/`^` start sub-/superscripts.
fn layout(text: &str, scale: usize, markup: bool) -> Layout {
    let scale = scale.max(1);
    let s = scale as i64;
    let mut out = Layout {
        glyphs: Vec::new(),
        width: 0,
        top: 0,
        bottom: (CAP_ROWS as i64 + 2) * s,
    };
    let mut u = 0i64;
    let place = |c: char, sc: usize, v: i64, u: &mut i64, out: &mut Layout| {
        let g = glyph(c);
        out.glyphs.push(Placed {
            glyph: g,
            u: *u,
            v,
            scale: sc,
        });
        *u += ((g.width + 1) * sc) as i64;
        out.top = out.top.min(v);
        out.bottom = out.bottom.max(v + (GLYPH_ROWS * sc) as i64);
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if markup && (c == '_' || c == '^') && chars.peek() == Some(&'{') {
            chars.next();
            let sc = script_scale(scale);
            // Subscript: its cap top sits 4 main rows down (baseline just below the main one);
            // superscript: its top one main row above the main caps.
            let v = if c == '_' { 4 * s } else { -s };
            let mut group = Vec::new();
            let mut depth = 1;
            while let Some(d) = chars.next() {
                match d {
                    '\\' if chars.peek().is_some_and(|e| MARKUP_ESCAPES.contains(*e)) => {
                        group.push(chars.next().unwrap())
                    }
                    '{' => {
                        depth += 1;
                        group.push(d)
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                        group.push(d)
                    }
                    _ => group.push(d),
                }
            }
            for d in group {
                place(d, sc, v, &mut u, &mut out);
            }
        } else if markup && c == '\\' && chars.peek().is_some_and(|e| MARKUP_ESCAPES.contains(*e)) {
            let d = chars.next().unwrap();
            place(d, scale, 0, &mut u, &mut out);
        } else {
            place(c, scale, 0, &mut u, &mut out);
        }
    }
    // The trailing inter-glyph gap is not part of the box.
    out.width = match out.glyphs.last() {
        Some(p) => u - p.scale as i64,
        None => 0,
    };
    out
}

/// Width in canvas pixels of plain `text` drawn at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    layout(text, scale, false).width.max(0) as usize
}

/// Height in canvas pixels of one line of text at `scale`, descenders included.
pub fn text_height(scale: usize) -> usize {
    GLYPH_ROWS * scale.max(1)
}

/// Size (width, height) in canvas pixels of the box of a markup label, before rotation.
pub fn label_size(text: &str, scale: usize) -> (usize, usize) {
    let l = layout(text, scale, true);
    (l.width.max(0) as usize, (l.bottom - l.top).max(0) as usize)
}

/// Set one canvas pixel, ignoring positions outside the canvas.
fn put(canvas: &mut Canvas, x: i64, y: i64, colour: [u8; 3]) {
    if x >= 0 && y >= 0 {
        canvas.set(x as usize, y as usize, colour);
    }
}

/// Draw a laid-out run with its text-local origin at canvas (x, y); rotated runs read upwards,
/// text-local (u, v) going to canvas (x + v, y - u).
fn blit(canvas: &mut Canvas, x: i64, y: i64, l: &Layout, colour: [u8; 3], rotated: bool) {
    for p in &l.glyphs {
        let s = p.scale as i64;
        for (r, bits) in p.glyph.rows.iter().enumerate() {
            for col in 0..p.glyph.width {
                if bits & (1 << (GLYPH_COLS - 1 - (p.glyph.first + col))) == 0 {
                    continue;
                }
                let u0 = p.u + col as i64 * s;
                let v0 = p.v + r as i64 * s;
                for du in 0..s {
                    for dv in 0..s {
                        let (u, v) = (u0 + du, v0 + dv);
                        if rotated {
                            put(canvas, x + v, y - u, colour);
                        } else {
                            put(canvas, x + u, y + v, colour);
                        }
                    }
                }
            }
        }
    }
}

/// Draw plain `text` (no markup) with the top-left corner of its first capital at (x, y),
/// each font pixel `scale` x `scale` canvas pixels. Pixels outside the canvas are dropped.
pub fn draw_text(canvas: &mut Canvas, x: i64, y: i64, text: &str, scale: usize, colour: [u8; 3]) {
    let l = layout(text, scale, false);
    blit(canvas, x, y, &l, colour, false);
}

/// Draw a markup label (`θ_{E}`, `x_{src}`, `σ^{2}`; a `_` or `^` without a brace is drawn
/// as is; escapes `\_ \^ \{ \} \\`) so that the
/// `anchor` point of its box lands on (x, y). With `rotated`, the text reads upwards (90°
/// counter-clockwise) and the anchor refers to the rotated box as seen on the canvas.
/// Returns the canvas box drawn into as (left, top, width, height).
#[allow(clippy::too_many_arguments)]
pub fn draw_label(
    canvas: &mut Canvas,
    x: i64,
    y: i64,
    text: &str,
    scale: usize,
    colour: [u8; 3],
    anchor: Anchor,
    rotated: bool,
) -> (i64, i64, i64, i64) {
    let l = layout(text, scale, true);
    let (w, h) = (l.width, l.bottom - l.top);
    let (fx, fy) = anchor.fractions();
    if rotated {
        // On the canvas the rotated box is h wide and w tall.
        let left = x - (fx * h as f64).round() as i64;
        let top = y - (fy * w as f64).round() as i64;
        // Text-local u = 0 is the bottom row of the box; v = l.top is its left column.
        blit(canvas, left - l.top, top + w - 1, &l, colour, true);
        (left, top, h, w)
    } else {
        let left = x - (fx * w as f64).round() as i64;
        let top = y - (fy * h as f64).round() as i64;
        blit(canvas, left, top - l.top, &l, colour, false);
        (left, top, w, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink(c: &Canvas) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        for y in 0..c.height {
            for x in 0..c.width {
                if c.rgb[y * c.width + x] != [255, 255, 255] {
                    v.push((x, y));
                }
            }
        }
        v
    }

    #[test]
    fn every_band_parses_and_ascii_is_complete() {
        let t = glyphs();
        for c in ' '..='~' {
            assert!(t.contains_key(&c), "font lacks {c:?}");
        }
        for c in "αβγδεηθκλμνπρστφχψωΓΔΘΣΦΩ°±×·≈".chars() {
            assert!(t.contains_key(&c), "font lacks {c:?}");
        }
    }

    #[test]
    fn capital_l_puts_ink_where_expected() {
        // 'L' is a full-height left column plus a full-width bottom row.
        let mut c = Canvas::new(40, 40, [255; 3]);
        draw_text(&mut c, 10, 5, "L", 2, [0, 0, 0]);
        let px = ink(&c);
        assert_eq!(
            px.len(),
            (7 + 4) * 4,
            "7-row stem + 4 extra bottom pixels, each 2x2"
        );
        assert!(
            px.iter()
                .all(|&(x, y)| (10..20).contains(&x) && (5..19).contains(&y))
        );
        assert_eq!(c.rgb[5 * 40 + 10], [0, 0, 0]); // top of the stem
        assert_eq!(c.rgb[18 * 40 + 19], [0, 0, 0]); // bottom-right end of the foot
        assert_eq!(c.rgb[5 * 40 + 12], [255; 3]); // right of the stem top: blank
    }

    #[test]
    fn width_counts_trimmed_glyphs_and_gaps() {
        // Digits are 5 wide, '.' is 2 wide, one blank column between glyphs.
        assert_eq!(text_width("1.5", 1), 5 + 1 + 2 + 1 + 5);
        assert_eq!(text_width("1.5", 3), 3 * 14);
        assert_eq!(text_width("", 2), 0);
        assert_eq!(text_width("i", 1), 3);
        // Drawn ink spans exactly the measured width.
        let mut c = Canvas::new(100, 30, [255; 3]);
        draw_text(&mut c, 3, 3, "0.25", 2, [0, 0, 0]);
        let px = ink(&c);
        let xmin = px.iter().map(|p| p.0).min().unwrap();
        let xmax = px.iter().map(|p| p.0).max().unwrap();
        assert_eq!(xmin, 3);
        assert_eq!(xmax + 1 - xmin, text_width("0.25", 2));
    }

    #[test]
    fn markup_subscript_is_smaller_and_lower() {
        let (w_plain, h_plain) = label_size("θE", 3);
        let (w_sub, h_sub) = label_size("θ_{E}", 3);
        assert!(w_sub < w_plain);
        assert!(
            h_sub > h_plain,
            "subscript extends the box below the descender line"
        );
        let mut c = Canvas::new(80, 60, [255; 3]);
        draw_label(&mut c, 5, 5, "θ_{E}", 3, [0, 0, 0], Anchor::TopLeft, false);
        // θ occupies rows 0-6 * 3 px; the E subscript (scale 2) starts 4*3 = 12 px down.
        let px = ink(&c);
        let e_pixels: Vec<_> = px.iter().filter(|p| p.0 >= 5 + 4 * 3 + 3).collect();
        assert!(!e_pixels.is_empty());
        assert!(e_pixels.iter().all(|p| p.1 >= 5 + 12));
        assert_eq!(label_size("a\\_{b}", 1).0, text_width("a_{b}", 1));
        // Without braces `_` and `^` are plain characters, as are unknown escapes.
        assert_eq!(label_size("sigma_bkg^2", 2).0, text_width("sigma_bkg^2", 2));
        assert_eq!(label_size("C:\\dir", 2).0, text_width("C:\\dir", 2));
    }

    #[test]
    fn rotated_label_reads_upwards_inside_its_box() {
        let mut c = Canvas::new(60, 120, [255; 3]);
        let (l, t, w, h) = draw_label(&mut c, 30, 60, "gamma", 2, [0, 0, 0], Anchor::Centre, true);
        assert_eq!(h as usize, text_width("gamma", 2));
        let px = ink(&c);
        assert!(!px.is_empty());
        for &(x, y) in &px {
            assert!((l..l + w).contains(&(x as i64)) && (t..t + h).contains(&(y as i64)));
        }
        // The first letter ('g') is at the bottom of the rotated box.
        let bottom_ink = px.iter().filter(|p| p.1 as i64 >= t + h - 10).count();
        assert!(bottom_ink > 0);
    }

    #[test]
    fn font_sheet_covers_every_glyph() {
        // Every glyph of the table drawn once; saved for inspection when ARCLIGHT_FIGURE_DIR
        // is set.
        let mut chars: Vec<char> = glyphs().keys().copied().collect();
        chars.sort();
        let mut c = Canvas::new(520, 200, [255; 3]);
        for (k, line) in chars.chunks(32).enumerate() {
            let s: String = line.iter().collect();
            draw_text(&mut c, 8, 8 + 24 * k as i64, &s, 2, [0, 0, 0]);
        }
        draw_label(
            &mut c,
            8,
            140,
            "θ_{E} = 1.50 ± 0.01,  γ_{ext}, x_{src}, σ^{2}, χ^{2}/dof, sigma_bkg",
            2,
            [0, 0, 0],
            Anchor::TopLeft,
            false,
        );
        assert!(!ink(&c).is_empty());
        if let Some(dir) = std::env::var_os("ARCLIGHT_FIGURE_DIR") {
            c.save(&std::path::Path::new(&dir).join("font_sheet.png"))
                .unwrap();
        }
    }

    #[test]
    fn off_canvas_text_is_clipped_not_a_panic() {
        let mut c = Canvas::new(10, 10, [255; 3]);
        draw_text(&mut c, -20, -3, "clipped text", 4, [0, 0, 0]);
        draw_label(
            &mut c,
            5,
            5,
            "x_{src}^{2}",
            5,
            [0, 0, 0],
            Anchor::BottomRight,
            true,
        );
    }
}
