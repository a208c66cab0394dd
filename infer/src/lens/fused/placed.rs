//! Fused value-and-gradient kernel for the lens model of Chianese et al. 2020: any sum of
//! registered mass profiles ([`crate::lens::profile`]; the paper's is EPL + external shear)
//! deflecting the rays onto a pixel image placed on the source plane (eq. 17, with the
//! conventions of `source::placed`: the image spans [x_src - s, x_src + s] x [y_src - s, y_src + s],
//! pixel centres at the centres of equal cells, row 0 at the top, bilinear, zero outside),
//! supersampling, PSF and the Gaussian likelihood (GIGA-Lens eq. 6).
//!
//! Besides d logL / d(lens, x_src, y_src, s, i) it returns d logL / d(image pixel), so the source
//! image can come from the VAE decoder: the caller back-propagates that image gradient through
//! the decoder with burn (`(d(z) * G).sum().backward()`), which is far cheaper than running the
//! whole 256 x 256 lens model through autodiff.
//!
//! Parameter layout: each mass component's keys in order, then the source placement (x_src,
//! y_src, s, i). For EPL + shear that is [`PLACED_PARAM_NAMES`] (12 per sample).

use anyhow::{Result, ensure};
use rayon::prelude::*;

use super::conv::Kernel;
use super::noise::PixelNoise;
use crate::lens::grid::Grid;
use crate::lens::profile::{Deflector, MassKind};
use crate::lens::psf::Psf;
use crate::math::complex::C;
use crate::math::real::{L, Lanes};

/// Parameters per sample with EPL + shear.
pub const NUM_PLACED_PARAMS: usize = 12;

/// Names of the EPL + shear layout's parameters, in order.
pub const PLACED_PARAM_NAMES: [&str; NUM_PLACED_PARAMS] = [
    "lens.theta_e",
    "lens.gamma",
    "lens.e1",
    "lens.e2",
    "lens.center_x",
    "lens.center_y",
    "shear.gamma1",
    "shear.gamma2",
    "source.x_src",
    "source.y_src",
    "source.s",
    "source.i",
];

/// Pixel rows per parallel chunk of one sample.
const ROWS_PER_CHUNK: usize = 32;

/// Observation-side constants of the fused placed-image model.
#[derive(Clone, Debug)]
pub struct FusedPlacedImage {
    mass: Vec<MassKind>,
    /// Mass parameters; the placement (x_src, y_src, s, i) follows them.
    pm: usize,
    grid: Grid,
    xs: Vec<f32>,
    ys: Vec<f32>,
    kernel: Kernel,
    noise: PixelNoise,
    hs: usize,
    ws: usize,
}

/// Per-sample constants.
struct Sample {
    mass: Deflector,
    x_src: f32,
    y_src: f32,
    s: f32,
    amp: f32,
    /// pixels per arcsec along u (columns) and v (rows): W/(2s), H/(2s)
    cu: f32,
    cv: f32,
    /// zero-padded image, (hs+2) x (ws+2)
    padded: Vec<f32>,
}

/// A chunk's gradient: parameters and padded source image.
type Partial = (Vec<f64>, Vec<f32>);

/// Bilinear sample of the padded image at padded coordinates (up, vp): value, dS/du, dS/dv and
/// the four (index, weight) pairs.
#[inline(always)]
fn bilinear(
    padded: &[f32],
    hp: usize,
    wp: usize,
    up: f32,
    vp: f32,
) -> (f32, f32, f32, [(usize, f32); 4]) {
    let u0 = up.floor().clamp(-1.0, wp as f32);
    let v0 = vp.floor().clamp(-1.0, hp as f32);
    let (fu, fv) = (up - u0, vp - v0);
    let iu0 = (u0 as i64).clamp(0, wp as i64 - 1) as usize;
    let iu1 = (u0 as i64 + 1).clamp(0, wp as i64 - 1) as usize;
    let iv0 = (v0 as i64).clamp(0, hp as i64 - 1) as usize * wp;
    let iv1 = (v0 as i64 + 1).clamp(0, hp as i64 - 1) as usize * wp;
    let (i00, i01, i10, i11) = (iv0 + iu0, iv0 + iu1, iv1 + iu0, iv1 + iu1);
    let (p00, p01, p10, p11) = (padded[i00], padded[i01], padded[i10], padded[i11]);
    let (gu, gv) = (1.0 - fu, 1.0 - fv);
    let w = [
        (i00, gu * gv),
        (i01, fu * gv),
        (i10, gu * fv),
        (i11, fu * fv),
    ];
    let s = w[0].1 * p00 + w[1].1 * p01 + w[2].1 * p10 + w[3].1 * p11;
    let dsdu = gv * (p01 - p00) + fv * (p11 - p10);
    let dsdv = gu * (p10 - p00) + fu * (p11 - p01);
    (s, dsdu, dsdv, w)
}

/// Add the lanes of `v` to per-lane f64 sums.
#[inline(always)]
fn add_lanes(acc: &mut [f64; L], v: Lanes) {
    for (a, &x) in acc.iter_mut().zip(&v.0) {
        *a += x as f64;
    }
}

impl FusedPlacedImage {
    /// Set up the model with EPL + shear: `grid`, `psf`, the source image shape `(hs, ws)`, the
    /// observation and noise as for [`super::FusedLens::new`]. The PSF acts on the image pixels
    /// after averaging ([`crate::lens::psf::PsfOrder::Pixel`]); sub-grid convolution takes the
    /// tensor path.
    pub fn new(
        grid: Grid,
        psf: &Psf,
        source_shape: (usize, usize),
        obs: &[f64],
        bkg_var: &[f64],
        poisson: Option<f64>,
        mask: Option<&[bool]>,
    ) -> Result<Self> {
        Self::with_mass(
            vec![MassKind::Epl, MassKind::Shear],
            grid,
            psf,
            source_shape,
            obs,
            bkg_var,
            poisson,
            mask,
        )
    }

    /// As [`Self::new`], deflected by the components `mass`.
    #[allow(clippy::too_many_arguments)]
    pub fn with_mass(
        mass: Vec<MassKind>,
        grid: Grid,
        psf: &Psf,
        source_shape: (usize, usize),
        obs: &[f64],
        bkg_var: &[f64],
        poisson: Option<f64>,
        mask: Option<&[bool]>,
    ) -> Result<Self> {
        let (hs, ws) = source_shape;
        ensure!(
            hs > 0 && ws > 0,
            "fused placed image: source shape {hs}x{ws} must be positive"
        );
        let noise = PixelNoise::new(grid.num_pixels(), obs, bkg_var, poisson, mask)?;
        let (xs, ys) = grid.super_coords_host();
        Ok(Self {
            pm: Deflector::num_params_of(&mass),
            mass,
            xs: xs.into_iter().map(|v| v as f32).collect(),
            ys: ys.into_iter().map(|v| v as f32).collect(),
            kernel: Kernel::of(psf, grid.ny, grid.nx),
            noise,
            grid,
            hs,
            ws,
        })
    }

    /// Parameters per sample.
    pub fn num_params(&self) -> usize {
        self.pm + 4
    }

    /// Source image size (rows, columns).
    pub fn source_shape(&self) -> (usize, usize) {
        (self.hs, self.ws)
    }

    fn sample(&self, p: &[f64], image: &[f32]) -> Sample {
        let (hs, ws) = (self.hs, self.ws);
        let (hp, wp) = (hs + 2, ws + 2);
        let mut padded = vec![0.0f32; hp * wp];
        for r in 0..hs {
            padded[(r + 1) * wp + 1..(r + 1) * wp + 1 + ws]
                .copy_from_slice(&image[r * ws..(r + 1) * ws]);
        }
        let q = &p[self.pm..];
        Sample {
            mass: Deflector::new(&self.mass, &p[..self.pm]),
            x_src: q[0] as f32,
            y_src: q[1] as f32,
            s: q[2] as f32,
            amp: q[3] as f32,
            cu: (ws as f64 / (2.0 * q[2])) as f32,
            cv: (hs as f64 / (2.0 * q[2])) as f32,
            padded,
        }
    }

    /// Source-plane positions (bx, by) of a block of rays relative to the image centre, and their
    /// padded pixel coordinates (up, vp).
    #[inline(always)]
    fn coords(&self, sm: &Sample, bx: Lanes, by: Lanes) -> (Lanes, Lanes, Lanes, Lanes) {
        let sp = |v: f32| Lanes([v; L]);
        let dbx = bx - sp(sm.x_src);
        let dby = by - sp(sm.y_src);
        let up = dbx * sp(sm.cu) + sp(self.ws as f32 / 2.0 + 0.5);
        let vp = -dby * sp(sm.cv) + sp(self.hs as f32 / 2.0 + 0.5);
        (dbx, dby, up, vp)
    }

    #[inline(always)]
    fn load(&self, r0: usize, cnt: usize) -> (Lanes, Lanes) {
        let mut x = [0.0f32; L];
        let mut y = [0.0f32; L];
        for l in 0..L {
            let r = r0 + l.min(cnt - 1);
            x[l] = self.xs[r];
            y[l] = self.ys[r];
        }
        (Lanes(x), Lanes(y))
    }

    /// Pixel of ray `r` relative to the first pixel of its chunk.
    #[inline(always)]
    fn pixel(&self, r: usize) -> usize {
        let k = self.grid.supersampling;
        let wk = self.grid.nx * k;
        (r / wk / k) * self.grid.nx + (r % wk) / k
    }

    /// Pooled image rows [i0, i1) into `out` (which holds exactly those rows), compiled for the
    /// widest vector instruction set the CPU has.
    fn forward_rows(&self, sm: &Sample, i0: usize, i1: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above).
                return unsafe { self.forward_rows_avx512(sm, i0, i1, out) };
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                return unsafe { self.forward_rows_avx2(sm, i0, i1, out) };
            }
        }
        self.forward_rows_impl(sm, i0, i1, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn forward_rows_avx512(&self, sm: &Sample, i0: usize, i1: usize, out: &mut [f32]) {
        self.forward_rows_impl(sm, i0, i1, out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_rows_avx2(&self, sm: &Sample, i0: usize, i1: usize, out: &mut [f32]) {
        self.forward_rows_impl(sm, i0, i1, out)
    }

    #[inline(always)]
    fn forward_rows_impl(&self, sm: &Sample, i0: usize, i1: usize, out: &mut [f32]) {
        let k = self.grid.supersampling;
        let wk = self.grid.nx * k;
        let (r_start, r_end) = (i0 * k * wk, i1 * k * wk);
        let base = i0 * self.grid.nx;
        let inv_k2 = 1.0 / (k * k) as f32;
        let (hp, wp) = (self.hs + 2, self.ws + 2);
        out.iter_mut().for_each(|v| *v = 0.0);
        let mut r0 = r_start;
        while r0 < r_end {
            let cnt = L.min(r_end - r0);
            let (x, y) = self.load(r0, cnt);
            let (bx, by) = sm.mass.ray_shoot(x, y);
            let (_, _, up, vp) = self.coords(sm, bx, by);
            for l in 0..cnt {
                let (s, _, _, _) = bilinear(&sm.padded, hp, wp, up.0[l], vp.0[l]);
                out[self.pixel(r0 + l) - base] += sm.amp * s * inv_k2;
            }
            r0 += L;
        }
    }

    /// Gradient contributions of pixel rows [i0, i1) given dlogL/d(pooled image) `g_img`
    /// (whole image): (parameter gradient, padded image gradient).
    fn backward_rows(&self, sm: &Sample, i0: usize, i1: usize, g_img: &[f32]) -> Partial {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above).
                return unsafe { self.backward_rows_avx512(sm, i0, i1, g_img) };
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                return unsafe { self.backward_rows_avx2(sm, i0, i1, g_img) };
            }
        }
        self.backward_rows_impl(sm, i0, i1, g_img)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn backward_rows_avx512(
        &self,
        sm: &Sample,
        i0: usize,
        i1: usize,
        g_img: &[f32],
    ) -> Partial {
        self.backward_rows_impl(sm, i0, i1, g_img)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn backward_rows_avx2(
        &self,
        sm: &Sample,
        i0: usize,
        i1: usize,
        g_img: &[f32],
    ) -> Partial {
        self.backward_rows_impl(sm, i0, i1, g_img)
    }

    #[inline(always)]
    fn backward_rows_impl(&self, sm: &Sample, i0: usize, i1: usize, g_img: &[f32]) -> Partial {
        let k = self.grid.supersampling;
        let wk = self.grid.nx * k;
        let (r_start, r_end) = (i0 * k * wk, i1 * k * wk);
        let inv_k2 = 1.0 / (k * k) as f32;
        let (hp, wp) = (self.hs + 2, self.ws + 2);
        let mut g_src = vec![0.0f32; hp * wp];
        let pm = self.pm;
        // per-lane f64 sums of every parameter's gradient, reduced over lanes once at the end (a
        // sum over lanes per block of rays would be a serial chain of adds per parameter)
        let mut acc = vec![[0.0f64; L]; pm + 4];
        let mut dm = vec![C::new(Lanes([0.0; L]), Lanes([0.0; L])); pm];
        let sp = |v: f32| Lanes([v; L]);
        let mut r0 = r_start;
        while r0 < r_end {
            let cnt = L.min(r_end - r0);
            let (x, y) = self.load(r0, cnt);
            let (bx, by) = sm.mass.ray_shoot_with_grad(x, y, &mut dm);
            let (dbx, dby, up, vp) = self.coords(sm, bx, by);
            // lanes past `cnt` repeat the last ray: their gradients stay zero
            let mut gu = [0.0f32; L];
            let mut gv = [0.0f32; L];
            let mut g_amp = [0.0f32; L];
            for l in 0..cnt {
                let g = g_img[self.pixel(r0 + l)] * inv_k2;
                let (s, dsdu, dsdv, w) = bilinear(&sm.padded, hp, wp, up.0[l], vp.0[l]);
                g_amp[l] = g * s;
                let ga = g * sm.amp;
                gu[l] = ga * dsdu;
                gv[l] = ga * dsdv;
                for (idx, wt) in w {
                    g_src[idx] += ga * wt;
                }
            }
            let (gu, gv) = (Lanes(gu), Lanes(gv));
            // beta derivatives: du/dbx = cu, dv/dby = -cv; beta = theta - alpha
            let gbx = gu * sp(sm.cu);
            let gby = -(gv * sp(sm.cv));
            let (gax, gay) = (-gbx, -gby);
            for (a, d) in acc.iter_mut().zip(&dm) {
                add_lanes(a, gax * d.re + gay * d.im);
            }
            add_lanes(&mut acc[pm], -gbx);
            add_lanes(&mut acc[pm + 1], -gby);
            // du/ds = -dbx cu / s, dv/ds = dby cv / s
            let inv_s = sp(1.0 / sm.s);
            add_lanes(
                &mut acc[pm + 2],
                (-(gu * dbx * sp(sm.cu)) + gv * dby * sp(sm.cv)) * inv_s,
            );
            add_lanes(&mut acc[pm + 3], Lanes(g_amp));
            r0 += L;
        }
        let grad = acc.iter().map(|a| a.iter().sum()).collect();
        (grad, g_src)
    }

    fn chunks(&self) -> Vec<(usize, usize)> {
        let ny = self.grid.ny;
        (0..ny.div_ceil(ROWS_PER_CHUNK))
            .map(|c| (c * ROWS_PER_CHUNK, ((c + 1) * ROWS_PER_CHUNK).min(ny)))
            .collect()
    }

    fn pooled(&self, sm: &Sample) -> Vec<f32> {
        let nx = self.grid.nx;
        let mut img = vec![0.0f32; self.grid.num_pixels()];
        img.par_chunks_mut(ROWS_PER_CHUNK * nx)
            .zip(self.chunks())
            .for_each(|(out, (i0, i1))| {
                self.forward_rows(sm, i0, i1, out);
            });
        img
    }

    fn image_of<'a>(&self, images: &'a [f32], s: usize) -> &'a [f32] {
        let n = self.hs * self.ws;
        if images.len() == n {
            images
        } else {
            &images[s * n..(s + 1) * n]
        }
    }

    fn check(&self, params: &[f64], images: &[f32]) -> usize {
        let np = self.num_params();
        assert_eq!(params.len() % np, 0, "params must be B x {np}");
        let b = params.len() / np;
        let n = self.hs * self.ws;
        assert!(
            images.len() == n || images.len() == b * n,
            "images must be 1 or B = {b} source images of {}x{}",
            self.hs,
            self.ws
        );
        b
    }

    /// Noise-free model image (row-major `[ny, nx]`) of one parameter vector and source image.
    pub fn render(&self, p: &[f64], image: &[f32]) -> Vec<f64> {
        self.check(p, image);
        let sm = self.sample(p, image);
        let (ny, nx) = (self.grid.ny, self.grid.nx);
        let img = self.pooled(&sm);
        let mut tmp = vec![0.0; ny * nx];
        let mut model = vec![0.0; ny * nx];
        self.kernel.apply(&img, ny, nx, &mut tmp, &mut model);
        model.into_iter().map(|v| v as f64).collect()
    }

    /// Log-likelihoods of a batch (`params` B x P; `images` one shared or B source images).
    pub fn log_likelihood(&self, params: &[f64], images: &[f32]) -> Vec<f64> {
        let b = self.check(params, images);
        let np = self.num_params();
        (0..b)
            .into_par_iter()
            .map(|s| {
                let p = &params[s * np..(s + 1) * np];
                let sm = self.sample(p, self.image_of(images, s));
                let (ny, nx) = (self.grid.ny, self.grid.nx);
                let img = self.pooled(&sm);
                let (mut tmp, mut model) = (vec![0.0; ny * nx], vec![0.0; ny * nx]);
                self.kernel.apply(&img, ny, nx, &mut tmp, &mut model);
                self.noise.eval(&model, None)
            })
            .collect()
    }

    /// Log-likelihoods, their gradients with respect to the P parameters (`[B x P]`) and with
    /// respect to every source pixel (`[B x hs x ws]`, one image per sample even when the input
    /// image is shared).
    pub fn value_and_grad(&self, params: &[f64], images: &[f32]) -> (Vec<f64>, Vec<f64>, Vec<f32>) {
        let b = self.check(params, images);
        let (ny, nx) = (self.grid.ny, self.grid.nx);
        let (hs, ws) = (self.hs, self.ws);
        let wp = ws + 2;
        let np = self.num_params();
        let per: Vec<(f64, Vec<f64>, Vec<f32>)> = (0..b)
            .into_par_iter()
            .map(|s| {
                let p = &params[s * np..(s + 1) * np];
                let sm = self.sample(p, self.image_of(images, s));
                let img = self.pooled(&sm);
                let (mut tmp, mut model) = (vec![0.0; ny * nx], vec![0.0; ny * nx]);
                self.kernel.apply(&img, ny, nx, &mut tmp, &mut model);
                let mut g_model = vec![0.0; ny * nx];
                let ll = self.noise.eval(&model, Some(&mut g_model));
                let mut g_img = vec![0.0; ny * nx];
                self.kernel.adjoint(&g_model, ny, nx, &mut tmp, &mut g_img);
                let parts: Vec<Partial> = self
                    .chunks()
                    .into_par_iter()
                    .map(|(i0, i1)| self.backward_rows(&sm, i0, i1, &g_img))
                    .collect();
                let mut grad = vec![0.0f64; np];
                let mut g_pad = vec![0.0f32; (hs + 2) * wp];
                for (g, gs) in parts {
                    for (a, v) in grad.iter_mut().zip(g) {
                        *a += v;
                    }
                    for (a, v) in g_pad.iter_mut().zip(gs) {
                        *a += v;
                    }
                }
                let mut g_src = vec![0.0f32; hs * ws];
                for r in 0..hs {
                    g_src[r * ws..(r + 1) * ws]
                        .copy_from_slice(&g_pad[(r + 1) * wp + 1..(r + 1) * wp + 1 + ws]);
                }
                (ll, grad, g_src)
            })
            .collect();
        let mut values = Vec::with_capacity(b);
        let mut grads = Vec::with_capacity(b * np);
        let mut g_images = Vec::with_capacity(b * hs * ws);
        for (ll, g, gi) in per {
            values.push(ll);
            grads.extend_from_slice(&g);
            g_images.extend(gi);
        }
        (values, grads, g_images)
    }
}
