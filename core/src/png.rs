//! PNG output for figures: grey-scale and colour-mapped image panels.

use anyhow::{Context, Result};
use std::path::Path;

/// An RGB canvas that figures are composed on.
#[derive(Clone, Debug)]
pub struct Canvas {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<[u8; 3]>,
}

impl Canvas {
    pub fn new(width: usize, height: usize, background: [u8; 3]) -> Self {
        Canvas {
            width,
            height,
            rgb: vec![background; width * height],
        }
    }

    pub fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.width && y < self.height {
            self.rgb[y * self.width + x] = c;
        }
    }

    /// Draw a row-major image (`data[iy * nx + ix]`, iy = 0 at the top) at (x0, y0), each pixel
    /// scaled to `zoom` x `zoom` canvas pixels, mapped linearly from [lo, hi] through `cmap`.
    #[allow(clippy::too_many_arguments)]
    pub fn draw_image(
        &mut self,
        x0: usize,
        y0: usize,
        ny: usize,
        nx: usize,
        data: &[f32],
        lo: f32,
        hi: f32,
        zoom: usize,
        cmap: fn(f32) -> [u8; 3],
    ) {
        let span = if hi > lo { hi - lo } else { 1.0 };
        for iy in 0..ny {
            for ix in 0..nx {
                let v = ((data[iy * nx + ix] - lo) / span).clamp(0.0, 1.0);
                let c = cmap(if v.is_finite() { v } else { 0.0 });
                for dy in 0..zoom {
                    for dx in 0..zoom {
                        self.set(x0 + ix * zoom + dx, y0 + iy * zoom + dy, c);
                    }
                }
            }
        }
    }

    /// Save atomically as PNG.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut buf = image::RgbImage::new(self.width as u32, self.height as u32);
        for (i, p) in buf.pixels_mut().enumerate() {
            *p = image::Rgb(self.rgb[i]);
        }
        let mut bytes = Vec::new();
        buf.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .with_context(|| format!("encoding PNG {}", path.display()))?;
        crate::atomic::write_atomic(path, &bytes)
    }
}

/// Grey scale, black to white.
pub fn grey(v: f32) -> [u8; 3] {
    let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [g, g, g]
}

/// A perceptually ordered dark-blue -> yellow map (viridis-like, 5 anchor points).
pub fn viridis(v: f32) -> [u8; 3] {
    const A: [[f32; 3]; 5] = [
        [68., 1., 84.],
        [59., 82., 139.],
        [33., 145., 140.],
        [94., 201., 98.],
        [253., 231., 37.],
    ];
    let x = v.clamp(0.0, 1.0) * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f32;
    let c = |k: usize| (A[i][k] * (1.0 - f) + A[i + 1][k] * f).round() as u8;
    [c(0), c(1), c(2)]
}

/// Diverging blue-white-red map for residuals (0.5 = white).
pub fn diverging(v: f32) -> [u8; 3] {
    let v = v.clamp(0.0, 1.0);
    if v < 0.5 {
        let f = v / 0.5;
        [(40. + 215. * f) as u8, (70. + 185. * f) as u8, 255]
    } else {
        let f = (v - 0.5) / 0.5;
        [255, (255. - 185. * f) as u8, (255. - 215. * f) as u8]
    }
}

/// Read a PNG (any colour type) as grey-scale f32 in [0, 1], row-major.
pub fn read_grey(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let img = image::open(path)
        .with_context(|| format!("{}: not a readable PNG image", path.display()))?;
    let g = img.to_luma32f();
    let (w, h) = (g.width() as usize, g.height() as usize);
    Ok((h, w, g.into_raw()))
}
