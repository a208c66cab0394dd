//! Synthetic galaxies with real morphological variety, in the layout of the prepared COSMOS
//! sets: 64x64, PSF-convolved, Gaussian pixel noise about 1/50 of the peak (the noise level of
//! the paper's training images, whose decoder noise is sigma_d = 1/50), divided by the maximum.
//!
//! Each galaxy ([`GalaxyParams::sample`]) is a sum of
//! - a Sersic bulge `I(r) ∝ exp(-b_n ((r/r_e)^(1/n) - 1))` (b_n from Ciotti & Bertin 1999),
//! - an exponential disk `I(r) ∝ exp(-r/r_d)`, optionally modulated by logarithmic spiral arms
//!   `1 - A + 2A ((1 + cos(m (θ - ln(r/r_d)/tan p) - φ_0)) / 2)^k` (pitch angle `p`, `m` arms,
//!   arm contrast `A` growing from 0 in the centre),
//! - star-forming clumps: small Gaussians scattered over the disk,
//!
//! each with its own ellipticity and orientation; component fluxes are normalised on the grid
//! before mixing by the bulge fraction B/T. The galaxy is drawn with 2x2 samples per pixel
//! (8x8 within 6 pixels of its centre, where profiles are steep), convolved with a Gaussian PSF
//! sampled on the pixel grid, noise `σ = noise * peak` is added, and the image is divided by its
//! maximum pixel (the stored noise sigma is `σ / max`).
//!
//! Deterministic: galaxy `i` of seed `S` uses its own `StdRng` seeded from a SplitMix64 hash of
//! `(S, i)`, so the result does not depend on thread count or on `n`.

use arclight_vae::dataset::{GalaxySet, IMAGE_SIZE, Split};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Normal, Poisson, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Rendering settings (not per galaxy).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Image side in pixels.
    pub size: usize,
    /// FWHM of the Gaussian PSF in pixels.
    pub psf_fwhm: f64,
    /// Pixel-noise sigma as a fraction of the noiseless peak (paper-like: 1/50).
    pub noise: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            size: IMAGE_SIZE,
            psf_fwhm: 2.0,
            noise: 0.02,
        }
    }
}

/// A Sersic bulge (lengths in pixels, angles in radians).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bulge {
    pub r_e: f64,
    pub n: f64,
    pub q: f64,
    pub phi: f64,
}

/// Logarithmic spiral arms modulating the disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Arms {
    /// Number of arms.
    pub m: u32,
    /// Pitch angle (radians).
    pub pitch: f64,
    /// Arm contrast A in [0, 1].
    pub amplitude: f64,
    /// Arm sharpness exponent k >= 1.
    pub sharpness: f64,
    pub phase: f64,
}

/// An exponential disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub r_d: f64,
    pub q: f64,
    pub phi: f64,
    pub arms: Option<Arms>,
}

/// A star-forming clump: a circular Gaussian.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clump {
    /// Offset from the galaxy centre (pixels).
    pub dx: f64,
    pub dy: f64,
    pub sigma: f64,
    /// Fraction of the galaxy's total flux.
    pub flux: f64,
}

/// One galaxy's morphology.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GalaxyParams {
    /// Centre offset from the image centre (pixels).
    pub x0: f64,
    pub y0: f64,
    /// Bulge-to-total flux ratio of the smooth light (0 = pure disk, 1 = pure spheroid).
    pub bulge_fraction: f64,
    pub bulge: Bulge,
    pub disk: Disk,
    pub clumps: Vec<Clump>,
}

/// The parameter distributions of [`GalaxyParams::sample`], recorded in each synthetic data
/// set's provenance (keep in step with the code).
pub const DISTRIBUTIONS: &str = "classes 10% elliptical / 25% bulgeless disk / 65% bulge+disk \
(B/T U[0.05,0.5]); disk r_d log-U[4,11] px, q U[0.2,1]; bulge r_e log-U[2,6] px, n U[0.8,3], \
q U[0.6,1], angle = disk angle + N(0,0.3); ellipticals r_e log-U[4,14] px, n U[1.5,4], \
q U[0.35,1]; 60% of disks with arms (m in {1,2,2,2,3,3,4}, pitch U[10,35] deg, contrast \
U[0.3,0.95], sharpness U[1,4]); 65% of disks with 1+Poisson(4) clumps (max 12, sigma \
U[0.6,2] px, 2-8% of the flux each, clump total capped at 50%); centre offset N(0, 0.75 px)";

/// Log-uniform draw in [a, b].
fn log_uniform(rng: &mut StdRng, a: f64, b: f64) -> f64 {
    (a.ln() + rng.random::<f64>() * (b.ln() - a.ln())).exp()
}

impl GalaxyParams {
    /// Draw a galaxy. Classes (by probability): 10% ellipticals (pure Sersic), 25% bulgeless
    /// disks, 65% bulge + disk; 60% of disks carry 1-4 spiral arms; 65% of disks carry clumps.
    /// Sizes are chosen so that galaxies fill a good part of the frame, like the prepared COSMOS
    /// stamps (a 64x64 image of a stamp of ~100-200 native pixels).
    pub fn sample(rng: &mut StdRng) -> Self {
        let centre = Normal::new(0.0, 0.75).expect("valid normal");
        let (x0, y0) = (centre.sample(rng), centre.sample(rng));
        let class: f64 = rng.random();
        let bulge_fraction = if class < 0.10 {
            1.0
        } else if class < 0.35 {
            0.0
        } else {
            rng.random_range(0.05..0.5)
        };
        let elliptical = bulge_fraction == 1.0;
        let disk_phi = rng.random_range(0.0..PI);
        let bulge = Bulge {
            r_e: if elliptical {
                log_uniform(rng, 4.0, 14.0)
            } else {
                log_uniform(rng, 2.0, 6.0)
            },
            n: if elliptical {
                rng.random_range(1.5..4.0)
            } else {
                rng.random_range(0.8..3.0)
            },
            q: rng.random_range(if elliptical { 0.35..1.0 } else { 0.6..1.0 }),
            phi: disk_phi + 0.3 * rng.sample::<f64, _>(StandardNormal),
        };
        let r_d = log_uniform(rng, 4.0, 11.0);
        let has_disk = !elliptical;
        let arms = (has_disk && rng.random::<f64>() < 0.6).then(|| Arms {
            m: [1u32, 2, 2, 2, 3, 3, 4][rng.random_range(0..7usize)],
            pitch: rng.random_range(10f64..35.0).to_radians(),
            amplitude: rng.random_range(0.3..0.95),
            sharpness: rng.random_range(1.0..4.0),
            phase: rng.random_range(0.0..2.0 * PI),
        });
        let disk = Disk {
            r_d,
            q: rng.random_range(0.2..1.0),
            phi: disk_phi,
            arms,
        };
        let mut clumps = Vec::new();
        if has_disk && rng.random::<f64>() < 0.65 {
            let count = Poisson::new(4.0).expect("valid Poisson").sample(rng) as usize + 1;
            for _ in 0..count.min(12) {
                // Radius from the disk's own exponential profile (Gamma(2) in r / r_d), in the
                // disk plane, projected with the disk's q and phi.
                let r = -r_d * (rng.random::<f64>() * rng.random::<f64>()).max(1e-12).ln();
                let t = rng.random_range(0.0..2.0 * PI);
                let (u, v) = (r * t.cos(), r * t.sin() * disk.q);
                let (c, s) = (disk.phi.cos(), disk.phi.sin());
                clumps.push(Clump {
                    dx: u * c - v * s,
                    dy: u * s + v * c,
                    sigma: rng.random_range(0.6..2.0),
                    flux: rng.random_range(0.02..0.08),
                });
            }
        }
        GalaxyParams {
            x0,
            y0,
            bulge_fraction,
            bulge,
            disk,
            clumps,
        }
    }
}

/// Ciotti & Bertin (1999) asymptotic b_n for the Sersic profile.
fn sersic_b(n: f64) -> f64 {
    2.0 * n - 1.0 / 3.0
        + 4.0 / (405.0 * n)
        + 46.0 / (25515.0 * n * n)
        + 131.0 / (1148175.0 * n.powi(3))
}

/// Elliptical coordinates: position in the component frame (major axis along u), scaled so
/// that the elliptical radius is `hypot(u, v)`.
fn to_frame(dx: f64, dy: f64, q: f64, phi: f64) -> (f64, f64) {
    let (c, s) = (phi.cos(), phi.sin());
    (dx * c + dy * s, (-dx * s + dy * c) / q)
}

fn bulge_profile(b: &Bulge, bn: f64, dx: f64, dy: f64) -> f64 {
    let (u, v) = to_frame(dx, dy, b.q, b.phi);
    let r = (u * u + v * v).sqrt();
    (-bn * ((r / b.r_e).powf(1.0 / b.n) - 1.0)).exp()
}

fn disk_profile(d: &Disk, dx: f64, dy: f64) -> f64 {
    let (u, v) = to_frame(dx, dy, d.q, d.phi);
    let r = (u * u + v * v).sqrt();
    let mut i = (-r / d.r_d).exp();
    if let Some(a) = &d.arms {
        let theta = v.atan2(u);
        let arg = a.m as f64 * (theta - (r.max(1e-3) / d.r_d).ln() / a.pitch.tan()) - a.phase;
        // Arm contrast rises from 0 at the centre to `amplitude` beyond ~r_d.
        let amp = a.amplitude * (1.0 - (-(r / d.r_d).powi(2)).exp());
        i *= 1.0 - amp + 2.0 * amp * (0.5 * (1.0 + arg.cos())).powf(a.sharpness);
    }
    i
}

/// Draw a smooth profile on the grid with 2x2 samples per pixel (8x8 near the centre),
/// normalised to unit sum.
fn draw<F: Fn(f64, f64) -> f64>(size: usize, cx: f64, cy: f64, f: F) -> Vec<f64> {
    let mut img = vec![0.0; size * size];
    for iy in 0..size {
        for ix in 0..size {
            let (px, py) = (ix as f64 + 0.5, iy as f64 + 0.5);
            let ss = if (px - cx).abs() < 6.0 && (py - cy).abs() < 6.0 {
                8
            } else {
                2
            };
            let mut acc = 0.0;
            for sy in 0..ss {
                for sx in 0..ss {
                    let x = ix as f64 + (sx as f64 + 0.5) / ss as f64;
                    let y = iy as f64 + (sy as f64 + 0.5) / ss as f64;
                    acc += f(x - cx, y - cy);
                }
            }
            img[iy * size + ix] = acc / (ss * ss) as f64;
        }
    }
    let sum: f64 = img.iter().sum();
    if sum > 0.0 {
        img.iter_mut().for_each(|v| *v /= sum);
    }
    img
}

/// Separable convolution with a pixel-sampled, unit-sum Gaussian (zero padding).
fn convolve_gaussian(size: usize, img: &[f64], fwhm: f64) -> Vec<f64> {
    if fwhm <= 0.0 {
        return img.to_vec();
    }
    let sigma = fwhm / (8.0 * 2f64.ln()).sqrt();
    let half = (4.0 * sigma).ceil() as isize;
    let mut k: Vec<f64> = (-half..=half)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let ks: f64 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= ks);
    let n = size as isize;
    let pass = |src: &[f64], horizontal: bool| -> Vec<f64> {
        let mut out = vec![0.0; size * size];
        for y in 0..n {
            for x in 0..n {
                let mut acc = 0.0;
                for (j, kv) in k.iter().enumerate() {
                    let o = j as isize - half;
                    let (sx, sy) = if horizontal { (x + o, y) } else { (x, y + o) };
                    if (0..n).contains(&sx) && (0..n).contains(&sy) {
                        acc += kv * src[(sy * n + sx) as usize];
                    }
                }
                out[(y * n + x) as usize] = acc;
            }
        }
        out
    };
    pass(&pass(img, true), false)
}

/// The PSF-convolved noiseless image of a galaxy (total flux 1 before PSF edge losses).
pub fn render_noiseless(p: &GalaxyParams, cfg: &SynthConfig) -> Vec<f64> {
    let size = cfg.size;
    let (cx, cy) = (size as f64 / 2.0 + p.x0, size as f64 / 2.0 + p.y0);
    let clump_flux: f64 = p.clumps.iter().map(|c| c.flux).sum::<f64>().min(0.5);
    let smooth = 1.0 - clump_flux;
    let mut img = vec![0.0; size * size];
    let mut add = |w: f64, comp: Vec<f64>| img.iter_mut().zip(comp).for_each(|(a, b)| *a += w * b);
    if p.bulge_fraction > 0.0 {
        let bn = sersic_b(p.bulge.n);
        add(
            smooth * p.bulge_fraction,
            draw(size, cx, cy, |dx, dy| bulge_profile(&p.bulge, bn, dx, dy)),
        );
    }
    if p.bulge_fraction < 1.0 {
        add(
            smooth * (1.0 - p.bulge_fraction),
            draw(size, cx, cy, |dx, dy| disk_profile(&p.disk, dx, dy)),
        );
    }
    if clump_flux > 0.0 {
        let clumps = draw(size, cx, cy, |dx, dy| {
            p.clumps
                .iter()
                .map(|c| {
                    let r2 = (dx - c.dx).powi(2) + (dy - c.dy).powi(2);
                    c.flux / (2.0 * PI * c.sigma * c.sigma)
                        * (-r2 / (2.0 * c.sigma * c.sigma)).exp()
                })
                .sum()
        });
        add(clump_flux, clumps);
    }
    convolve_gaussian(size, &img, cfg.psf_fwhm)
}

/// Render one galaxy as stored: noisy, divided by its maximum. Returns (pixels, noise sigma of
/// the stored image).
pub fn render_galaxy(p: &GalaxyParams, cfg: &SynthConfig, rng: &mut StdRng) -> (Vec<f32>, f32) {
    let clean = render_noiseless(p, cfg);
    let peak = clean.iter().copied().fold(0.0, f64::max);
    let sigma = cfg.noise * peak;
    let noisy: Vec<f64> = clean
        .iter()
        .map(|v| v + sigma * rng.sample::<f64, _>(StandardNormal))
        .collect();
    let max = noisy.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (
        noisy.iter().map(|v| (v / max) as f32).collect(),
        (sigma / max) as f32,
    )
}

/// SplitMix64 of (seed, index): the per-galaxy seed.
pub fn galaxy_seed(seed: u64, index: u64) -> u64 {
    let mut z = seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Galaxy `index` of seed `seed`: its parameters and stored image.
pub fn galaxy(seed: u64, index: u64, cfg: &SynthConfig) -> (GalaxyParams, Vec<f32>, f32) {
    let mut rng = StdRng::seed_from_u64(galaxy_seed(seed, index));
    let p = GalaxyParams::sample(&mut rng);
    let (img, sigma) = render_galaxy(&p, cfg, &mut rng);
    (p, img, sigma)
}

/// Generate galaxies `range` of seed `seed` in parallel (ident = galaxy index).
pub fn generate_range(seed: u64, range: std::ops::Range<u64>, cfg: &SynthConfig) -> GalaxySet {
    let rendered: Vec<(Vec<f32>, f32)> = range
        .clone()
        .into_par_iter()
        .map(|i| {
            let (_, img, s) = galaxy(seed, i, cfg);
            (img, s)
        })
        .collect();
    let mut set = GalaxySet::new(cfg.size);
    for (i, (img, s)) in range.zip(rendered) {
        set.push(&img, i as i64, s, &synthetic_source(seed, i));
    }
    set
}

/// The per-image source of synthetic galaxy `index` of `seed` (as stored in data sets).
pub fn synthetic_source(seed: u64, index: u64) -> String {
    format!("synthetic seed {seed} galaxy {index}")
}

/// Generate `n` galaxies (all in memory; the CLI streams with [`generate_range`] instead).
pub fn generate(n: usize, seed: u64, cfg: &SynthConfig) -> GalaxySet {
    generate_range(seed, 0..n as u64, cfg)
}

/// Which split galaxy `i` of `n` goes to, for split sizes `sizes` (train first, then
/// validation, then test; the galaxies are i.i.d., so contiguous blocks are a random split).
pub fn split_of(i: usize, sizes: [usize; 3]) -> Split {
    if i < sizes[0] {
        Split::Train
    } else if i < sizes[0] + sizes[1] {
        Split::Validation
    } else {
        Split::Test
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sersic_b_known_values() {
        // b_1 = 1.678, b_4 = 7.669 (standard values).
        assert!((sersic_b(1.0) - 1.678).abs() < 1e-3);
        assert!((sersic_b(4.0) - 7.669).abs() < 1e-3);
    }

    #[test]
    fn psf_conserves_flux_away_from_edges() {
        let n = 32;
        let mut img = vec![0.0; n * n];
        img[16 * n + 16] = 1.0;
        let out = convolve_gaussian(n, &img, 2.5);
        assert!((out.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // FWHM 2.5 px -> central value of a pixel-sampled Gaussian, symmetric.
        assert!((out[16 * n + 15] - out[16 * n + 17]).abs() < 1e-15);
        assert!((out[15 * n + 16] - out[16 * n + 15]).abs() < 1e-15);
    }
}
