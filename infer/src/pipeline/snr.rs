//! The signal-to-noise ratio of a lensed image, Chianese et al. 2020 eqs. (24)-(25):
//!
//!   m_ij = 1 if (G * I_obs)_ij >= sigma_noise else 0,       G: Gaussian of sd 0.16" (eq. 25)
//!   S/N  = sum_ij m_ij I_obs,ij / (sigma_noise sqrt(sum_ij m_ij))                        (eq. 24)

/// Standard deviation of the smoothing Gaussian of eq. (25), arcsec (four 0.04" pixels).
pub const MASK_SMOOTHING_ARCSEC: f64 = 0.16;

/// Blur a row-major image with a normalised, truncated (4 sigma) Gaussian of `sigma_px` pixels,
/// separably, with zero padding.
pub fn gaussian_blur(ny: usize, nx: usize, img: &[f32], sigma_px: f64) -> Vec<f32> {
    let r = (4.0 * sigma_px).ceil() as isize;
    let mut k: Vec<f64> = (-r..=r)
        .map(|i| (-0.5 * (i as f64 / sigma_px).powi(2)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    let pass = |src: &[f32], along_x: bool| -> Vec<f32> {
        let mut out = vec![0.0f32; ny * nx];
        for y in 0..ny as isize {
            for x in 0..nx as isize {
                let mut acc = 0.0f64;
                for (j, w) in k.iter().enumerate() {
                    let o = j as isize - r;
                    let (yy, xx) = if along_x { (y, x + o) } else { (y + o, x) };
                    if yy >= 0 && yy < ny as isize && xx >= 0 && xx < nx as isize {
                        acc += w * src[(yy as usize) * nx + xx as usize] as f64;
                    }
                }
                out[(y as usize) * nx + x as usize] = acc as f32;
            }
        }
        out
    };
    pass(&pass(img, true), false)
}

/// The mask of eq. (25) and the S/N of eq. (24).
pub fn snr(
    ny: usize,
    nx: usize,
    obs: &[f32],
    sigma_noise: f64,
    pixel_scale: f64,
) -> (f64, Vec<bool>) {
    let blurred = gaussian_blur(ny, nx, obs, MASK_SMOOTHING_ARCSEC / pixel_scale);
    let mask: Vec<bool> = blurred.iter().map(|&v| v as f64 >= sigma_noise).collect();
    let n = mask.iter().filter(|&&m| m).count();
    if n == 0 {
        return (0.0, mask);
    }
    let signal: f64 = obs
        .iter()
        .zip(&mask)
        .filter(|(_, m)| **m)
        .map(|(v, _)| *v as f64)
        .sum();
    (signal / (sigma_noise * (n as f64).sqrt()), mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_conserves_flux_away_from_edges() {
        let (ny, nx) = (41, 41);
        let mut img = vec![0.0f32; ny * nx];
        img[20 * nx + 20] = 1.0;
        let b = gaussian_blur(ny, nx, &img, 2.0);
        let s: f32 = b.iter().sum();
        assert!((s - 1.0).abs() < 1e-5);
        assert!(b[20 * nx + 20] > b[20 * nx + 22] && b[20 * nx + 22] > b[20 * nx + 25]);
    }

    #[test]
    fn snr_of_a_flat_patch_is_hand_computable() {
        // A 10x10 patch of value 1 in a 60x60 image, noise 0.1, pixel scale 0.04: the blurred patch
        // is above 0.1 over (at least) the patch; S/N = sum(I m) / (0.1 sqrt(n)).
        let (ny, nx) = (60, 60);
        let mut img = vec![0.0f32; ny * nx];
        for y in 25..35 {
            for x in 25..35 {
                img[y * nx + x] = 1.0;
            }
        }
        let (s, mask) = snr(ny, nx, &img, 0.1, 0.04);
        let n = mask.iter().filter(|&&m| m).count();
        assert!((100..400).contains(&n), "mask size {n}");
        let want = 100.0 / (0.1 * (n as f64).sqrt());
        assert!((s - want).abs() < 1e-9 * want);
        // No signal: S/N 0, empty mask.
        assert_eq!(snr(ny, nx, &vec![0.0; ny * nx], 0.1, 0.04).0, 0.0);
    }
}
