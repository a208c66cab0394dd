//! A grid of image panels with titles, optional colour bars, optional axes in physical
//! units and row labels: the layout of the paper's reconstruction (Fig. 2), rotation
//! (Fig. 3) and lens-fit (Figs. 6-7) figures.
//!
//! Images are row-major f32 slices with shape (ny, nx); row 0 is the TOP of the picture.
//! Each panel is resampled (nearest neighbour) to fit a square of `panel_px` pixels keeping
//! its aspect ratio; NaN pixels are drawn light grey.

use super::axes::{self, Ticks};
use super::chart::safe_range;
use super::style::{self, Align, NAN_GREY, WHITE, err, label};
use crate::png::Canvas;
use anyhow::{Result, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One image panel of a grid.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Title above the panel; may be empty.
    pub title: String,
    /// Row-major pixels, `data[iy * nx + ix]`, iy = 0 at the top. Empty for a blank cell.
    pub data: Vec<f32>,
    pub ny: usize,
    pub nx: usize,
    /// Colour-scale limits; None = min and max of the finite pixels.
    pub limits: Option<(f32, f32)>,
    /// Colour map from [0, 1] (see [`crate::png::viridis`], [`crate::png::diverging`], ...).
    pub cmap: fn(f32) -> [u8; 3],
    /// Draw a colour bar right of the panel.
    pub colour_bar: bool,
    /// Physical extent (x_left, x_right, y_bottom, y_top), e.g. arcsec; when given the panel
    /// gets a frame with ticks and tick labels in these units.
    pub extent: Option<[f64; 4]>,
}

impl Panel {
    /// A panel showing `data` (shape (ny, nx)) through `cmap` with automatic limits.
    pub fn new(
        title: &str,
        data: Vec<f32>,
        ny: usize,
        nx: usize,
        cmap: fn(f32) -> [u8; 3],
    ) -> Self {
        Panel {
            title: title.to_string(),
            data,
            ny,
            nx,
            limits: None,
            cmap,
            colour_bar: false,
            extent: None,
        }
    }

    /// An empty cell: keeps the grid aligned when a row has nothing to show in a column.
    pub fn blank() -> Self {
        Panel::new("", Vec::new(), 0, 0, crate::png::grey)
    }

    /// Set fixed colour limits.
    pub fn with_limits(mut self, lo: f32, hi: f32) -> Self {
        self.limits = Some((lo, hi));
        self
    }

    /// Add a colour bar.
    pub fn with_colour_bar(mut self) -> Self {
        self.colour_bar = true;
        self
    }

    /// Label the axes in physical units over (x_left, x_right, y_bottom, y_top).
    pub fn with_extent(mut self, extent: [f64; 4]) -> Self {
        self.extent = Some(extent);
        self
    }

    pub fn is_blank(&self) -> bool {
        self.data.is_empty()
    }

    /// The colour limits used: the given ones, or the finite min and max (widened when equal).
    pub fn resolved_limits(&self) -> (f32, f32) {
        let (lo, hi) = self.limits.unwrap_or_else(|| finite_min_max(&self.data));
        let (lo, hi) = safe_range(lo as f64, hi as f64);
        (lo as f32, hi as f32)
    }

    /// Drawn size (w, h) of the image inside a `side` x `side` box, keeping the aspect ratio.
    fn image_size(&self, side: i64) -> (i64, i64) {
        if self.nx >= self.ny {
            (
                side,
                ((side as f64 * self.ny as f64 / self.nx as f64).round() as i64).max(1),
            )
        } else {
            (
                ((side as f64 * self.nx as f64 / self.ny as f64).round() as i64).max(1),
                side,
            )
        }
    }
}

/// Finite minimum and maximum of `data` ((0, 1) if there is no finite value).
pub fn finite_min_max(data: &[f32]) -> (f32, f32) {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for &v in data {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if lo > hi { (0.0, 1.0) } else { (lo, hi) }
}

/// Figure-wide layout options of a grid.
#[derive(Clone, Debug)]
pub struct GridOptions {
    /// Title across the top of the figure; empty for none.
    pub title: String,
    /// Labels left of each row, reading upwards (missing or empty entries draw nothing).
    pub row_labels: Vec<String>,
    /// Side of the square box each image is fitted into, in pixels.
    pub panel_px: usize,
    /// Size of panel titles and row labels in pixels (tick labels 0.8 of it, the title 1.3).
    pub font_px: f64,
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            title: String::new(),
            row_labels: Vec::new(),
            panel_px: 200,
            font_px: 15.0,
        }
    }
}

/// Paint `panel`'s image into the pixel box (x, y, w, h) of `root` (nearest neighbour, NaN grey).
fn paint_image<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, y, w, h): (i32, i32, i32, i32),
    panel: &Panel,
) -> Result<()> {
    let (lo, hi) = panel.resolved_limits();
    for py in 0..h {
        let iy = (((py as f64 + 0.5) / h as f64 * panel.ny as f64) as usize).min(panel.ny - 1);
        for px in 0..w {
            let ix = (((px as f64 + 0.5) / w as f64 * panel.nx as f64) as usize).min(panel.nx - 1);
            let v = panel.data[iy * panel.nx + ix];
            let c = if v.is_finite() {
                (panel.cmap)(((v - lo) / (hi - lo)).clamp(0.0, 1.0))
            } else {
                NAN_GREY
            };
            root.draw_pixel((x + px, y + py), &style::colour(c))
                .map_err(err)?;
        }
    }
    Ok(())
}

/// Ticks and tick labels in physical units round the image box (x, y, w, h), with `left` and
/// `bottom` pixels for the labels.
fn extent_axes<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rect: (i32, i32, i32, i32),
    e: [f64; 4],
    room: (u32, u32),
    ticks: &Ticks,
) -> Result<()> {
    let area = axes::area_for(root, rect, room);
    axes::axes(root, &area, room, (e[0], e[1]), (e[2], e[3]), ticks)?;
    Ok(())
}

/// A vertical colour bar for `panel` whose strip starts at x, with ticks and labels right of it.
fn colour_bar<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, y, strip, h): (i32, i32, i32, i32),
    labels_w: u32,
    panel: &Panel,
    ticks: &Ticks,
) -> Result<()> {
    let (lo, hi) = panel.resolved_limits();
    for py in 0..h {
        let f = 1.0 - (py as f32 + 0.5) / h as f32;
        let c = style::colour((panel.cmap)(f));
        root.draw(&Rectangle::new(
            [(x, y + py), (x + strip, y + py + 1)],
            c.filled(),
        ))
        .map_err(err)?;
    }
    let area = root
        .clone()
        .shrink((x, y), (strip as u32 + labels_w, h as u32));
    let mut ax = ChartBuilder::on(&area)
        .right_y_label_area_size(labels_w)
        .build_cartesian_2d(0f64..1.0, lo as f64..hi as f64)
        .map_err(err)?;
    let t = Ticks { x: 0, ..*ticks };
    axes::mesh(&mut ax, &t, false)?;
    axes::tick_labels(root, &ax, &t, true)?;
    axes::frame(root, &ax)
}

/// Lay out and draw the grid on a new white canvas.
///
/// Columns are as wide as their widest member needs (image, colour bar, y tick labels, title);
/// blank panels keep their cell empty. Errors on a panel whose data length is not ny * nx, or on
/// a grid without any panel.
pub fn render_grid(rows: &[Vec<Panel>], opts: &GridOptions) -> Result<Canvas> {
    let ncol = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    if rows.is_empty() || ncol == 0 {
        bail!("image grid: no panels to draw");
    }
    for (i, row) in rows.iter().enumerate() {
        for (j, p) in row.iter().enumerate() {
            if !p.is_blank() && (p.data.len() != p.ny * p.nx || p.nx == 0 || p.ny == 0) {
                bail!(
                    "image grid: panel '{}' (row {i}, column {j}) has {} values for shape {}x{}",
                    p.title,
                    p.data.len(),
                    p.ny,
                    p.nx
                );
            }
        }
    }
    let f = opts.font_px.max(6.0);
    let (text, head) = (style::text(f), style::text(1.3 * f));
    let ticks = Ticks {
        x: 5,
        y: 5,
        font: style::text(0.8 * f),
        // panels sit close together: an edge label would run into the neighbour's
        inside: true,
    };
    let bar_ticks = Ticks {
        y: 6,
        inside: false,
        ..ticks
    };
    let side = opts.panel_px.max(16) as i64;
    let gap = (0.5 * f) as i64;
    let cell = |i: usize, j: usize| rows[i].get(j).filter(|p| !p.is_blank());
    let strip = (0.9 * f) as i64;

    // column widths: left tick labels + image + colour bar (or the overhang of a wide title)
    let (mut left_w, mut bar_w) = (vec![0i64; ncol], vec![0i64; ncol]);
    for j in 0..ncol {
        for i in 0..rows.len() {
            if let Some(p) = cell(i, j) {
                if let Some(e) = p.extent {
                    left_w[j] = left_w[j].max(axes::label_room((e[2], e[3]), &ticks).0 as i64);
                }
                if p.colour_bar {
                    let (lo, hi) = p.resolved_limits();
                    let lw = axes::label_room((lo as f64, hi as f64), &bar_ticks).0 as i64;
                    bar_w[j] = bar_w[j].max(gap + strip + lw);
                }
                let over = (style::label_width(&p.title, &text) as i64 - side + 1) / 2;
                left_w[j] = left_w[j].max(over);
                bar_w[j] = bar_w[j].max(over);
            }
        }
    }
    let row_has =
        |i: usize, f: &dyn Fn(&Panel) -> bool| rows[i].iter().any(|p| !p.is_blank() && f(p));
    let title_h: Vec<i64> = (0..rows.len())
        .map(|i| {
            if row_has(i, &|p| !p.title.is_empty()) {
                (1.6 * f) as i64
            } else {
                0
            }
        })
        .collect();
    let bottom_h: Vec<i64> = (0..rows.len())
        .map(|i| {
            if row_has(i, &|p| p.extent.is_some()) {
                axes::label_room((0.0, 1.0), &ticks).1 as i64
            } else {
                0
            }
        })
        .collect();
    // row labels read upwards when each fits beside its image, else horizontally, right-aligned
    let has_row_labels = opts.row_labels.iter().any(|l| !l.is_empty());
    let upward = opts
        .row_labels
        .iter()
        .all(|l| style::label_width(l, &text) as i64 <= side);
    let row_label_w = if !has_row_labels {
        0
    } else if upward {
        f as i64 + 2 * gap
    } else {
        let w = opts.row_labels.iter().map(|l| style::label_width(l, &text));
        w.max().unwrap_or(0) as i64 + 2 * gap
    };
    let fig_title_h = if opts.title.is_empty() {
        0
    } else {
        (2.0 * f) as i64 + gap
    };
    let margin = gap;
    let col_w: Vec<i64> = (0..ncol).map(|j| left_w[j] + side + bar_w[j]).collect();
    let width = 2 * margin + row_label_w + col_w.iter().sum::<i64>() + 2 * gap * (ncol as i64 - 1);
    let width = width.max(style::label_width(&opts.title, &head) as i64 + 2 * margin);
    let row_h: Vec<i64> = (0..rows.len())
        .map(|i| title_h[i] + side + bottom_h[i])
        .collect();
    let height =
        2 * margin + fig_title_h + row_h.iter().sum::<i64>() + gap * (rows.len() as i64 - 1);
    let mut canvas = Canvas::new(width as usize, height as usize, WHITE);
    style::draw_on(&mut canvas, |root| {
        let c = Align::Centre;
        let at = |x: i64, y: i64| (x as i32, y as i32);
        label(
            root,
            &opts.title,
            &head,
            at(width / 2, margin + f as i64 / 2),
            c,
            Align::Start,
            false,
        )?;
        let mut y = margin + fig_title_h;
        for (i, row) in rows.iter().enumerate() {
            let img_top = y + title_h[i];
            if let Some(l) = opts.row_labels.get(i).filter(|l| !l.is_empty()) {
                let cy = img_top + side / 2;
                if upward {
                    label(root, l, &text, at(margin + row_label_w / 2, cy), c, c, true)?;
                } else {
                    let right = at(margin + row_label_w - gap, cy);
                    label(root, l, &text, right, Align::End, c, false)?;
                }
            }
            let mut x = margin + row_label_w;
            for (j, p) in row.iter().enumerate() {
                if !p.is_blank() {
                    let (w, h) = p.image_size(side);
                    // the image is centred in its square box
                    let (ix, iy) = (x + left_w[j] + (side - w) / 2, img_top + (side - h) / 2);
                    let r = (ix as i32, iy as i32, w as i32, h as i32);
                    paint_image(root, r, p)?;
                    if let Some(e) = p.extent {
                        extent_axes(root, r, e, (left_w[j] as u32, bottom_h[i] as u32), &ticks)?;
                    }
                    let frame = [(r.0, r.1), (r.0 + r.2, r.1 + r.3)];
                    root.draw(&Rectangle::new(frame, BLACK.stroke_width(1)))
                        .map_err(err)?;
                    let top = at(ix + w / 2, iy - (0.5 * f) as i64);
                    label(root, &p.title, &text, top, c, Align::End, false)?;
                    if p.colour_bar {
                        let bx = (x + left_w[j] + side - (side - w) / 2 + gap) as i32;
                        let lw = (bar_w[j] - gap - strip) as u32;
                        colour_bar(root, (bx, r.1, strip as i32, r.3), lw, p, &bar_ticks)?;
                    }
                }
                x += col_w[j] + 2 * gap;
            }
            y += row_h[i] + gap;
        }
        Ok(())
    })?;
    Ok(canvas)
}

/// Render the grid (see [`render_grid`]) and save it atomically as a PNG at `path`.
pub fn image_grid(path: &Path, rows: Vec<Vec<Panel>>, opts: &GridOptions) -> Result<()> {
    let canvas = render_grid(&rows, opts)?;
    canvas.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::png::{diverging, viridis};

    fn ramp(ny: usize, nx: usize) -> Vec<f32> {
        (0..ny * nx).map(|i| (i / nx) as f32).collect()
    }

    #[test]
    fn top_row_of_data_is_drawn_at_the_top() {
        let p = Panel::new("", ramp(4, 4), 4, 4, crate::png::grey).with_limits(0.0, 3.0);
        let opts = GridOptions {
            panel_px: 40,
            ..Default::default()
        };
        let c = render_grid(&[vec![p]], &opts).unwrap();
        // the image box starts one margin in; probe inside its frame
        let m = (0.5 * opts.font_px) as usize;
        assert_eq!(c.rgb[(m + 2) * c.width + m + 2], [0, 0, 0]);
        assert_eq!(c.rgb[(m + 37) * c.width + m + 2], [255, 255, 255]);
    }

    #[test]
    fn grid_size_follows_layout_and_blank_cells_stay_white() {
        let opts = GridOptions {
            panel_px: 64,
            font_px: 10.0,
            ..Default::default()
        };
        let rows = vec![
            vec![
                Panel::new("a", ramp(8, 8), 8, 8, viridis),
                Panel::new("b", ramp(8, 8), 8, 8, viridis),
            ],
            vec![
                Panel::blank(),
                Panel::new("c", ramp(8, 16), 8, 16, diverging).with_colour_bar(),
            ],
        ];
        let c = render_grid(&rows, &opts).unwrap();
        assert!(c.width > 2 * 64 && c.height > 2 * 64);
        // The blank cell (row 1, column 0) is white throughout: margin, then row 0 (title and
        // image), a gap and row 1's title.
        let (m, title) = (5, 16);
        let (x0, y0) = (m + 2, m + title + 64 + m + title + 2);
        for y in y0..y0 + 60 {
            for x in x0..x0 + 60 {
                assert_eq!(c.rgb[y * c.width + x], WHITE, "({x}, {y})");
            }
        }
    }

    #[test]
    fn rotation_figure_layout_like_paper_fig_3() {
        // Three rows (input, reconstruction, derotated) of a galaxy at four angles, one shared
        // colour scale, row labels and angle titles. Saved when ARCLIGHT_FIGURE_DIR is set.
        let n = 64;
        let galaxy = |angle: f32| -> Vec<f32> {
            let (c, s) = (angle.to_radians().cos(), angle.to_radians().sin());
            (0..n * n)
                .map(|i| {
                    let x = (i % n) as f32 - 31.5;
                    let y = 31.5 - (i / n) as f32;
                    let (u, v) = (c * x + s * y, -s * x + c * y);
                    (-(u * u / 120.0 + v * v / 25.0)).exp()
                        + 0.6 * (-((u - 12.0).powi(2) + v * v) / 8.0).exp()
                })
                .collect()
        };
        let angles = [0.0f32, 45.0, 90.0, 135.0];
        let row = |f: &dyn Fn(f32) -> Vec<f32>, titles: bool| -> Vec<Panel> {
            angles
                .iter()
                .map(|&a| {
                    let title = if titles {
                        format!("{a}°")
                    } else {
                        String::new()
                    };
                    Panel::new(&title, f(a), n, n, viridis).with_limits(0.0, 1.2)
                })
                .collect()
        };
        let mut rows = vec![
            row(&galaxy, true),
            row(&|a| galaxy(a).iter().map(|v| v * 0.9).collect(), false),
        ];
        rows.push(row(&|_| galaxy(0.0), false));
        rows[2][3] = rows[2][3].clone().with_colour_bar();
        let opts = GridOptions {
            title: "Rotations".into(),
            row_labels: vec!["input".into(), "reconstruction".into(), "derotated".into()],
            panel_px: 128,
            font_px: 16.0,
        };
        let c = render_grid(&rows, &opts).unwrap();
        assert!(c.width > 4 * 128 && c.height > 3 * 128);
        if let Some(d) = std::env::var_os("ARCLIGHT_FIGURE_DIR") {
            image_grid(
                &std::path::Path::new(&d).join("grid_rotation.png"),
                rows,
                &opts,
            )
            .unwrap();
        }
    }

    #[test]
    fn long_titles_widen_their_column_instead_of_clipping() {
        let long = "a title much wider than its panel";
        let rows = vec![vec![Panel::new(long, ramp(4, 4), 4, 4, viridis)]];
        let opts = GridOptions {
            panel_px: 40,
            ..Default::default()
        };
        let c = render_grid(&rows, &opts).unwrap();
        assert!(
            c.width as u32 > crate::plot::style::label_width(long, &crate::plot::style::text(15.0))
        );
        // The first and last columns of the canvas carry no ink (margins).
        for y in 0..c.height {
            assert_eq!(c.rgb[y * c.width], WHITE);
            assert_eq!(c.rgb[y * c.width + c.width - 1], WHITE);
        }
    }

    #[test]
    fn bad_shapes_and_empty_grids_are_errors() {
        let bad = vec![vec![Panel::new("obs", vec![0.0; 10], 4, 4, viridis)]];
        let e = render_grid(&bad, &GridOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("obs") && e.contains("4x4"), "{e}");
        assert!(render_grid(&[], &GridOptions::default()).is_err());
    }

    #[test]
    fn nan_and_constant_images_draw() {
        let mut d = vec![1.0f32; 16];
        d[3] = f32::NAN;
        let rows = vec![vec![
            Panel::new("const", d, 4, 4, viridis)
                .with_colour_bar()
                .with_extent([-1.0, 1.0, -1.0, 1.0]),
            Panel::new("all nan", vec![f32::NAN; 4], 2, 2, viridis).with_colour_bar(),
        ]];
        let c = render_grid(&rows, &GridOptions::default()).unwrap();
        assert!(c.rgb.contains(&NAN_GREY));
    }
}
