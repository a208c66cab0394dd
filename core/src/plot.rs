//! Figures drawn with plotters (bitmap backend, embedded font): the shared style, single-axes
//! charts, image-panel grids with colour bars, and sample densities with credible regions.
//!
//! Figures are composed on a [`crate::png::Canvas`] and written with
//! [`crate::png::Canvas::save`] (atomic). Domain figures (lens fits, corner plots, traces) live in
//! `infer::plots` and are built from these pieces.

pub mod axes;
pub mod chart;
pub mod density;
pub mod grid;
pub mod style;

pub use chart::{ChartOptions, Series, Style, line_chart, render_chart, safe_range};
pub use density::{credible_levels, gaussian_smooth_2d, histogram_1d, histogram_2d};
pub use grid::{GridOptions, Panel, finite_min_max, image_grid, render_grid};
pub use style::{BLACK, GREY, PALETTE, Rgb, WHITE};
