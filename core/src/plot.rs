//! Dependency-free figure toolkit on [`crate::png::Canvas`]: drawing primitives, axes with
//! nice ticks, colour bars, sample densities with credible regions, and image-panel grids.
//!
//! Text comes from the embedded bitmap font of [`crate::text`]; nothing here needs system
//! fonts or a plotting library. Figures are composed on a canvas and written with
//! [`crate::png::Canvas::save`] (atomic). Domain figures (lens fits, corner plots) live in
//! `infer::plots` and are built from these pieces.

pub mod axes;
pub mod chart;
pub mod colorbar;
pub mod density;
pub mod draw;
pub mod grid;
pub mod ticks;

pub use axes::Axes;
pub use chart::{ChartOptions, Series, Style, line_chart};
pub use colorbar::{colour_bar, colour_bar_width};
pub use density::{
    credible_levels, draw_credible_regions, gaussian_smooth_2d, histogram_1d, histogram_2d,
};
pub use draw::{PALETTE, Rect, Rgb};
pub use grid::{GridOptions, Panel, image_grid, render_grid};
pub use ticks::{nice_ticks, tick_labels, ticks_with_labels};
