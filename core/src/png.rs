//! PNG files: the RGB canvas figures are drawn on (saved atomically), the colour maps of image
//! panels, and grey-scale reading of image cutouts.

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
    let (h, w, data, _) = read_grey_described(path)?;
    Ok((h, w, data))
}

/// Like [`read_grey`], also saying how the stored pixels became grey values in [0, 1] when that
/// was more than 8-bit grey / 255: colour to luminance, alpha dropped, 16-bit scaling (`None`
/// for plain 8-bit grey).
pub fn read_grey_described(path: &Path) -> Result<(usize, usize, Vec<f32>, Option<String>)> {
    let img = image::open(path)
        .with_context(|| format!("{}: not a readable PNG image", path.display()))?;
    let conversion = grey_conversion(img.color());
    let g = img.to_luma32f();
    let (w, h) = (g.width() as usize, g.height() as usize);
    Ok((h, w, g.into_raw(), conversion))
}

/// The conversion [`read_grey_described`] applies to a colour type (`None`: 8-bit grey).
fn grey_conversion(c: image::ColorType) -> Option<String> {
    let mut steps = Vec::new();
    if c.has_color() {
        steps.push(
            "RGB converted to luminance Y = 0.2126 R + 0.7152 G + 0.0722 B (Rec. 709 weights on the stored values)",
        );
    }
    if c.has_alpha() {
        steps.push("alpha channel dropped");
    }
    match c.bytes_per_pixel() / c.channel_count().max(1) {
        1 => {}
        2 => steps.push("16-bit values scaled to [0, 1] by 1/65535"),
        _ => steps.push("floating-point values kept as stored"),
    }
    (!steps.is_empty()).then(|| {
        let depth = 8 * (c.bytes_per_pixel() / c.channel_count().max(1));
        format!("{depth}-bit {c:?}: {}", steps.join("; "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_to_grey_are_described() {
        let dir = tempfile::tempdir().unwrap();
        // 8-bit grey: nothing to say
        let p = dir.path().join("l8.png");
        image::GrayImage::from_raw(2, 1, vec![0, 255])
            .unwrap()
            .save(&p)
            .unwrap();
        let (h, w, d, c) = read_grey_described(&p).unwrap();
        assert_eq!((h, w, d, c), (1, 2, vec![0.0, 1.0], None));
        // RGB: luminance
        let p = dir.path().join("rgb.png");
        let mut canvas = Canvas::new(1, 1, [255, 0, 0]);
        canvas.set(0, 0, [255, 0, 0]);
        canvas.save(&p).unwrap();
        let (_, _, d, c) = read_grey_described(&p).unwrap();
        let c = c.unwrap();
        assert!(
            c.starts_with("8-bit Rgb8") && c.contains("luminance"),
            "{c}"
        );
        assert!((d[0] - 0.2126).abs() < 2e-3, "{}", d[0]);
        // 16-bit grey: scaling named
        let p = dir.path().join("l16.png");
        image::ImageBuffer::<image::Luma<u16>, _>::from_raw(2, 1, vec![0u16, 32768])
            .unwrap()
            .save(&p)
            .unwrap();
        let (_, _, d, c) = read_grey_described(&p).unwrap();
        let c = c.unwrap();
        assert!(c.starts_with("16-bit L16") && c.contains("1/65535"), "{c}");
        assert!((d[1] - 32768.0 / 65535.0).abs() < 1e-6);
    }
}
