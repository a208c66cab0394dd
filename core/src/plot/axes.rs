//! Axes boxes: a framed plotting rectangle with tick marks from plotters and tick labels in the
//! figure font. Charts, image panels, colour bars, corner plots and trace plots all use these.

use super::style::{self, Align, Text, err, label};
use anyhow::Result;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// A plotters chart in data coordinates over one axes box.
pub type Axes<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Length of tick marks, and the space between a tick mark and its label, in pixels.
const TICK: i32 = 4;
const TICK_GAP: i32 = 3;

/// Tick labels of an axes box: how many at most on each axis (0 for none) and their text.
#[derive(Clone, Copy, Debug)]
pub struct Ticks {
    pub x: usize,
    pub y: usize,
    pub font: Text,
    /// Drop labels that would reach past the box's ends (boxes packed edge to edge).
    pub inside: bool,
}

/// Room (left, bottom) in pixels that tick labels of `ticks` need, the y axis showing `yr`.
pub fn label_room(yr: (f64, f64), ticks: &Ticks) -> (u32, u32) {
    let left = if ticks.y > 0 {
        style::tick_label_width(yr.0, yr.1, ticks.y, &ticks.font) + (TICK + 2 * TICK_GAP) as u32
    } else {
        0
    };
    let bottom = if ticks.x > 0 {
        (ticks.font.px + (TICK + 2 * TICK_GAP) as f64).ceil() as u32
    } else {
        0
    };
    (left, bottom)
}

/// The sub-area of `root` holding the box `(x, y, w, h)` with `left` pixels of y tick labels
/// before it and `bottom` pixels of x tick labels under it.
pub fn area_for<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, y, w, h): (i32, i32, i32, i32),
    (left, bottom): (u32, u32),
) -> DrawingArea<DB, Shift> {
    root.clone()
        .shrink((x - left as i32, y), (w as u32 + left, h as u32 + bottom))
}

/// Tick marks (`grid`: and light grid lines) on an axes' left and bottom sides, or right when
/// the chart was built with a right label area; labels are drawn by [`tick_labels`].
pub fn mesh<DB: DrawingBackend>(ax: &mut Axes<'_, DB>, ticks: &Ticks, grid: bool) -> Result<()> {
    let none = |_: &f64| String::new();
    let mut m = ax.configure_mesh();
    if grid {
        m.light_line_style(WHITE)
            .bold_line_style(RGBColor(232, 232, 232));
    } else {
        m.disable_mesh();
    }
    m.x_labels(ticks.x)
        .y_labels(ticks.y)
        .set_all_tick_mark_size(TICK)
        .x_label_formatter(&none)
        .y_label_formatter(&none)
        .draw()
        .map_err(err)
}

/// Tick labels at plotters' tick positions: x under the box, y left of it (`right`: right of it).
pub fn tick_labels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ax: &Axes<'_, DB>,
    ticks: &Ticks,
    right: bool,
) -> Result<()> {
    let (xr, yr) = (ax.x_range(), ax.y_range());
    let (bx, by, bw, bh) = pixel_box(ax);
    let (xs, dx) = style::ticks(xr.start, xr.end, ticks.x);
    for v in xs {
        let (px, py) = ax.backend_coord(&(v, yr.start));
        let text = format!("{v:.dx$}");
        let half = style::label_width(&text, &ticks.font) as i32 / 2;
        if ticks.inside && (px - half < bx - 2 || px + half > bx + bw + 2) {
            continue;
        }
        let at = (px, py + TICK + TICK_GAP);
        label(
            root,
            &text,
            &ticks.font,
            at,
            Align::Centre,
            Align::Start,
            false,
        )?;
    }
    let (ys, dy) = style::ticks(yr.start, yr.end, ticks.y);
    let half_cap = (0.32 * ticks.font.px) as i32;
    for v in ys {
        let py = ax.backend_coord(&(xr.start, v)).1;
        if ticks.inside && (py - half_cap < by - 2 || py + half_cap > by + bh + 2) {
            continue;
        }
        if right {
            let (px, py) = ax.backend_coord(&(xr.end, v));
            let at = (px + TICK + TICK_GAP, py);
            label(
                root,
                &format!("{v:.dy$}"),
                &ticks.font,
                at,
                Align::Start,
                Align::Centre,
                false,
            )?;
        } else {
            let (px, py) = ax.backend_coord(&(xr.start, v));
            let at = (px - TICK - TICK_GAP, py);
            label(
                root,
                &format!("{v:.dy$}"),
                &ticks.font,
                at,
                Align::End,
                Align::Centre,
                false,
            )?;
        }
    }
    Ok(())
}

/// A black frame round an axes' plotting area.
pub fn frame<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, ax: &Axes<'_, DB>) -> Result<()> {
    let (x, y, w, h) = pixel_box(ax);
    let r = Rectangle::new([(x, y), (x + w - 1, y + h - 1)], BLACK.stroke_width(1));
    root.draw(&r).map_err(err)
}

/// Axes over `xr` x `yr` filling `area` (made by [`area_for`] with the same room), drawn on
/// `root`: ticks and tick labels as `ticks` asks, no grid, a black frame.
pub fn axes<'a, DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    area: &'a DrawingArea<DB, Shift>,
    (left, bottom): (u32, u32),
    xr: (f64, f64),
    yr: (f64, f64),
    ticks: &Ticks,
) -> Result<Axes<'a, DB>> {
    let mut ax = ChartBuilder::on(area)
        .y_label_area_size(left)
        .x_label_area_size(bottom)
        .build_cartesian_2d(xr.0..xr.1, yr.0..yr.1)
        .map_err(err)?;
    mesh(&mut ax, ticks, false)?;
    tick_labels(root, &ax, ticks, false)?;
    frame(root, &ax)?;
    Ok(ax)
}

/// The pixel box `(x, y, w, h)` (backend coordinates) of an axes' plotting area.
pub fn pixel_box<DB: DrawingBackend>(ax: &Axes<'_, DB>) -> (i32, i32, i32, i32) {
    let (px, py) = ax.plotting_area().get_pixel_range();
    (px.start, py.start, px.end - px.start, py.end - py.start)
}
