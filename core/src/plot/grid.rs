//! A grid of image panels with titles, optional colour bars, optional axes in physical
//! units and row labels: the layout of the paper's reconstruction (Fig. 2), rotation
//! (Fig. 3) and lens-fit (Figs. 6-7) figures.
//!
//! Images are row-major f32 slices with shape (ny, nx); row 0 is the TOP of the picture.
//! Each panel is resampled (nearest neighbour) to fit a square of `panel_px` pixels keeping
//! its aspect ratio; NaN pixels are drawn light grey.

use super::axes::Axes;
use super::colorbar;
use super::draw::{self, BLACK, NAN_GREY, Rect, WHITE};
use crate::png::Canvas;
use crate::text::{self, Anchor};
use anyhow::{Result, bail};
use std::path::Path;

/// One image panel of a grid.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Title above the panel (markup allowed, see [`crate::text::draw_label`]); may be empty.
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
        let (lo, hi) = super::ticks::safe_range(lo as f64, hi as f64);
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
    /// Title across the top of the figure (markup allowed); empty for none.
    pub title: String,
    /// Labels left of each row, reading upwards (missing or empty entries draw nothing).
    pub row_labels: Vec<String>,
    /// Side of the square box each image is fitted into, in pixels.
    pub panel_px: usize,
    /// Integer font scale for all text (2 reads well up to ~300 px panels).
    pub font_scale: usize,
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            title: String::new(),
            row_labels: Vec::new(),
            panel_px: 200,
            font_scale: 2,
        }
    }
}

/// Draw `panel`'s image into the box `r` (nearest neighbour, NaN in light grey); blank or
/// mis-shaped panels draw nothing.
pub fn draw_image_panel(canvas: &mut Canvas, r: Rect, panel: &Panel) {
    if panel.is_blank() || panel.nx == 0 || panel.ny == 0 || panel.data.len() != panel.nx * panel.ny
    {
        return;
    }
    let (lo, hi) = panel.resolved_limits();
    let span = hi - lo;
    let all = Rect::of(canvas);
    for py in 0..r.h {
        let iy = ((py as f64 + 0.5) / r.h as f64 * panel.ny as f64) as usize;
        for px in 0..r.w {
            let ix = ((px as f64 + 0.5) / r.w as f64 * panel.nx as f64) as usize;
            let v = panel.data[iy.min(panel.ny - 1) * panel.nx + ix.min(panel.nx - 1)];
            let c = if v.is_finite() {
                (panel.cmap)(((v - lo) / span).clamp(0.0, 1.0))
            } else {
                NAN_GREY
            };
            draw::blend(canvas, all, r.x + px, r.y + py, c, 1.0);
        }
    }
}

/// Tick values with their labels.
type Ticks = Vec<(f64, String)>;

/// Ticks of a panel's extent axes (x ticks, y ticks), fitted to the drawn image box.
fn extent_axes(panel: &Panel, r: Rect, scale: usize) -> Option<(Axes, Ticks, Ticks)> {
    let e = panel.extent?;
    let a = Axes::new(r, (e[0], e[1]), (e[2], e[3]));
    let xt = a.fitted_x_ticks(scale, 5, 0);
    let yt = a.fitted_y_ticks(scale, 5, 0);
    Some((a, xt, yt))
}

/// Lay out and draw the grid on a new white canvas.
///
/// Columns are as wide as their widest member needs (image, colour bar, y tick labels);
/// blank panels keep their cell empty. Errors on a panel whose data length is not ny * nx,
/// or on a grid without any panel.
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
    let s = opts.font_scale.max(1);
    let si = s as i64;
    let side = opts.panel_px.max(16) as i64;
    let gap = 6 * si;
    let cell = |i: usize, j: usize| rows[i].get(j).filter(|p| !p.is_blank());

    // Column widths: left tick labels + image + colour bar (or title overhang).
    let mut left_w = vec![0i64; ncol];
    let mut bar_w = vec![0i64; ncol];
    for j in 0..ncol {
        for i in 0..rows.len() {
            if let Some(p) = cell(i, j) {
                let (w, h) = p.image_size(side);
                if let Some((_, _, yt)) = extent_axes(p, Rect::new(0, 0, w, h), s) {
                    left_w[j] = left_w[j].max(Axes::y_tick_label_width(&yt, s));
                }
                if p.colour_bar {
                    let (lo, hi) = p.resolved_limits();
                    bar_w[j] = bar_w[j].max(colorbar::colour_bar_width(lo, hi, h, s));
                }
                // A title wider than the image box spills evenly to both sides.
                let over = (text::label_size(&p.title, s).0 as i64 - side + 1) / 2;
                left_w[j] = left_w[j].max(over);
                bar_w[j] = bar_w[j].max(over);
            }
        }
    }
    // Row heights: title + image + bottom tick labels.
    let row_has =
        |i: usize, f: &dyn Fn(&Panel) -> bool| rows[i].iter().any(|p| !p.is_blank() && f(p));
    let title_h: Vec<i64> = (0..rows.len())
        .map(|i| {
            let hmax = rows[i]
                .iter()
                .map(|p| text::label_size(&p.title, s).1 as i64)
                .max()
                .unwrap_or(0);
            if row_has(i, &|p| !p.title.is_empty()) {
                hmax + 2 * si
            } else {
                0
            }
        })
        .collect();
    let bottom_h: Vec<i64> = (0..rows.len())
        .map(|i| {
            if row_has(i, &|p| p.extent.is_some()) {
                Axes::x_tick_label_height(s)
            } else {
                0
            }
        })
        .collect();

    // Row labels read upwards when each fits beside its image, else they are written
    // horizontally, right-aligned, left of the row.
    let has_row_labels = opts.row_labels.iter().any(|l| !l.is_empty());
    let rotate_rows = opts
        .row_labels
        .iter()
        .all(|l| text::label_size(l, s).0 as i64 <= side);
    let row_label_w = if has_row_labels {
        let extent = |l: &String| {
            let (w, h) = text::label_size(l, s);
            if rotate_rows { h as i64 } else { w as i64 }
        };
        opts.row_labels.iter().map(extent).max().unwrap_or(0) + 2 * gap
    } else {
        0
    };
    let fig_title_h = if opts.title.is_empty() {
        0
    } else {
        text::label_size(&opts.title, s + 1).1 as i64 + 2 * gap
    };
    let margin = 4 * si;
    let col_w: Vec<i64> = (0..ncol).map(|j| left_w[j] + side + bar_w[j]).collect();
    let width =
        margin + row_label_w + col_w.iter().sum::<i64>() + gap * 2 * (ncol as i64 - 1) + margin;
    let width = width.max(text::label_size(&opts.title, s + 1).0 as i64 + 2 * margin);
    let row_h: Vec<i64> = (0..rows.len())
        .map(|i| title_h[i] + side + bottom_h[i])
        .collect();
    let height =
        margin + fig_title_h + row_h.iter().sum::<i64>() + gap * (rows.len() as i64 - 1) + margin;
    let mut canvas = Canvas::new(width as usize, height as usize, WHITE);

    if !opts.title.is_empty() {
        text::draw_label(
            &mut canvas,
            width / 2,
            margin + gap / 2,
            &opts.title,
            s + 1,
            BLACK,
            Anchor::TopCentre,
            false,
        );
    }
    let mut y = margin + fig_title_h;
    for (i, row) in rows.iter().enumerate() {
        let img_top = y + title_h[i];
        if let Some(l) = opts.row_labels.get(i).filter(|l| !l.is_empty()) {
            let cy = img_top + side / 2;
            if rotate_rows {
                let cx = margin + row_label_w / 2;
                text::draw_label(&mut canvas, cx, cy, l, s, BLACK, Anchor::Centre, true);
            } else {
                let right = margin + row_label_w - gap;
                text::draw_label(
                    &mut canvas,
                    right,
                    cy,
                    l,
                    s,
                    BLACK,
                    Anchor::CentreRight,
                    false,
                );
            }
        }
        let mut x = margin + row_label_w;
        for (j, p) in row.iter().enumerate() {
            if !p.is_blank() {
                let (w, h) = p.image_size(side);
                // Centre the image in its square box.
                let ix = x + left_w[j] + (side - w) / 2;
                let iy = img_top + (side - h) / 2;
                let r = Rect::new(ix, iy, w, h);
                draw_image_panel(&mut canvas, r, p);
                let a = Axes::new(r, (0.0, 1.0), (0.0, 1.0));
                a.frame(&mut canvas, BLACK);
                if let Some((ea, xt, yt)) = extent_axes(p, r, s) {
                    ea.x_ticks(&mut canvas, &xt, s, true);
                    ea.y_ticks(&mut canvas, &yt, s, true);
                }
                if !p.title.is_empty() {
                    a.title(&mut canvas, &p.title, s, 2 * si);
                }
                if p.colour_bar {
                    let (lo, hi) = p.resolved_limits();
                    colorbar::colour_bar(
                        &mut canvas,
                        x + left_w[j] + side - (side - w) / 2,
                        iy,
                        h,
                        lo,
                        hi,
                        p.cmap,
                        s,
                    );
                }
            }
            x += col_w[j] + 2 * gap;
        }
        y += row_h[i] + gap;
    }
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
        let mut c = Canvas::new(40, 40, WHITE);
        draw_image_panel(&mut c, Rect::new(0, 0, 40, 40), &p);
        assert_eq!(c.rgb[0], [0, 0, 0]);
        assert_eq!(c.rgb[39 * 40], [255, 255, 255]);
    }

    #[test]
    fn grid_size_follows_layout_and_blank_cells_stay_white() {
        let opts = GridOptions {
            panel_px: 64,
            font_scale: 1,
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
        // The blank cell (row 1, column 0) is white throughout.
        let (x0, y0) = (4 + 2, 4 + 9 + 2 + 64 + 6 + 9 + 2 + 2);
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
            font_scale: 2,
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
            font_scale: 2,
            ..Default::default()
        };
        let c = render_grid(&rows, &opts).unwrap();
        assert!(c.width > text::text_width(long, 2));
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
