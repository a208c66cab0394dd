//! Fused value-and-gradient kernel for lens models with Sersic light: any sum of registered mass
//! profiles ([`crate::lens::profile`]), Sersic lens light and Sersic sources (the GIGA-Lens reference
//! model is EPL + shear + one of each), supersampled, pooled, PSF-convolved, Gaussian likelihood of
//! GIGA-Lens eq. 6, in plain Rust f32 with a hand-written backward, parallel over the batch.
//!
//! Why: with plain tensor ops every step streams a `[B, H k, W k]` tensor through memory. Here each
//! ray is evaluated once with its exact partial derivatives (22 numbers per ray for the GIGA-Lens model when the PSF acts on
//! the sub-grid, ~2 MB per sample at 160 x 160 rays; pooled into pixels when it acts on pixels), so
//! the backward pass is
//!
//!   dL/dtheta = sum_rays (B^T dL/dM)[ray] * J[ray],
//!
//! with M = B(I) the model image: B = pool after the sub-grid PSF (default, [`polyphase`]) or the
//! pixel PSF after pooling. The physics is the one of the tensor
//! library (`lens::mass::epl`, `lens::mass::shear`, `lens::light::sersic`, `lens::grid`,
//! `lens::psf`); the tests check values and gradients against the burn-autodiff version.
//!
//! Parameter layout ([`FusedLayout`], physical units): each mass component's keys in order, then
//! each lens-light and each source component's keys (Sersic: amp, R_sersic, n_sersic, e1, e2,
//! center_x, center_y).
//! The GIGA-Lens layout is [`PARAM_NAMES`] (22 per sample).
//!
//! Likelihood (GIGA-Lens eq. 6, full normalisation), over unmasked pixels:
//!   log L = -1/2 sum [ (d - M)^2 / sigma^2 + ln(2 pi sigma^2) ],  sigma^2 = sigma_bkg^2 + M * p,
//! where p = 1/(gain t_exp) when Poisson noise is modelled, else 0.

pub mod conv;
pub mod fft;
pub mod lanes;
pub mod noise;
pub mod placed;
pub mod polyphase;

use anyhow::Result;
use rayon::prelude::*;

use super::grid::Grid;
use super::profile::{Deflector, Light, LightKind, MAX_LIGHT_PARAMS, MassKind};
use super::psf::{Psf, PsfOrder};
use crate::math::complex::C;
use crate::math::real::{L, Lanes};
use conv::Kernel;
use lanes::{SampleModel, block_value, block_with_grad};
use noise::PixelNoise;
use polyphase::Polyphase;

/// Number of parameters per sample of the GIGA-Lens layout ([`FusedLayout::giga_lens`]).
pub const NUM_PARAMS: usize = 22;

/// Names of the GIGA-Lens layout's 22 parameters, in order.
pub const PARAM_NAMES: [&str; NUM_PARAMS] = [
    "lens.theta_e",
    "lens.gamma",
    "lens.e1",
    "lens.e2",
    "lens.center_x",
    "lens.center_y",
    "shear.gamma1",
    "shear.gamma2",
    "lens_light.amp",
    "lens_light.r_sersic",
    "lens_light.n_sersic",
    "lens_light.e1",
    "lens_light.e2",
    "lens_light.center_x",
    "lens_light.center_y",
    "source.amp",
    "source.r_sersic",
    "source.n_sersic",
    "source.e1",
    "source.e2",
    "source.center_x",
    "source.center_y",
];

/// The components of a fused model, which fix its parameter layout.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedLayout {
    pub mass: Vec<MassKind>,
    /// Lens-light components.
    pub lights: Vec<LightKind>,
    /// Source components.
    pub sources: Vec<LightKind>,
}

impl FusedLayout {
    /// EPL + shear + one Sersic lens light + one Sersic source ([`PARAM_NAMES`]).
    pub fn giga_lens() -> Self {
        Self {
            mass: vec![MassKind::Epl, MassKind::Shear],
            lights: vec![LightKind::Sersic],
            sources: vec![LightKind::Sersic],
        }
    }

    /// Parameters per sample.
    pub fn num_params(&self) -> usize {
        let light: usize = self
            .lights
            .iter()
            .chain(&self.sources)
            .map(|k| k.keys().len())
            .sum();
        Deflector::num_params_of(&self.mass) + light
    }

    /// One sample's constants from its parameter vector.
    fn sample(&self, p: &[f64]) -> (Deflector, Vec<Light>, Vec<Light>) {
        let mut at = Deflector::num_params_of(&self.mass);
        let mass = Deflector::new(&self.mass, &p[..at]);
        let mut take = |kinds: &[LightKind]| -> Vec<Light> {
            kinds
                .iter()
                .map(|&k| {
                    let n = k.keys().len();
                    at += n;
                    Light::new(k, &p[at - n..at])
                })
                .collect()
        };
        let lights = take(&self.lights);
        let sources = take(&self.sources);
        (mass, lights, sources)
    }
}

/// The observation-side constants of a fused analytic-light model.
#[derive(Clone, Debug)]
pub struct FusedLens {
    layout: FusedLayout,
    num_params: usize,
    grid: Grid,
    xs: Vec<f32>,
    ys: Vec<f32>,
    blur: Blur,
    noise: PixelNoise,
}

/// Where the PSF acts.
#[derive(Clone, Debug)]
enum Blur {
    /// On the image pixels, after averaging the sub-pixels.
    Pixels(Kernel),
    /// On the sub-pixel grid, then sub-pixels are averaged (computed per phase at pixel resolution).
    SubGrid(Polyphase),
}

/// Per-sample scratch buffers. `img`, `jac` and `g_img` live on the grid the PSF acts on
/// (sub-pixels or pixels); `model` and `g_model` on the image pixels; `tmp` is the blur's work.
struct Scratch {
    img: Vec<f32>,
    /// Per-ray Jacobians, parameter-major `[parameters][pixels]`, so a block of rays is stored and
    /// contracted with contiguous vector loads.
    jac: Vec<f32>,
    model: Vec<f32>,
    g_model: Vec<f32>,
    g_img: Vec<f32>,
    tmp: Vec<f32>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Option<Scratch>> = const { std::cell::RefCell::new(None) };
}

impl Scratch {
    /// (blur-grid pixels, image pixels, work length, Jacobian length).
    fn shape(&self) -> (usize, usize, usize, usize) {
        (
            self.img.len(),
            self.model.len(),
            self.tmp.len(),
            self.jac.len(),
        )
    }
}

impl FusedLens {
    /// Set up the GIGA-Lens model ([`FusedLayout::giga_lens`]) for `grid` (any supersampling), `psf`, the observed image `obs`
    /// (row-major `[ny, nx]`), the per-pixel background variance `bkg_var` (sigma_bkg^2; one value
    /// per pixel, so a noise map fits), `poisson` = 1/(gain t_exp) or `None`, and an optional mask
    /// (true = pixel used). `order` says where the PSF acts on a supersampled grid.
    pub fn new(
        grid: Grid,
        psf: &Psf,
        order: PsfOrder,
        obs: &[f64],
        bkg_var: &[f64],
        poisson: Option<f64>,
        mask: Option<&[bool]>,
    ) -> Result<Self> {
        Self::with_layout(
            FusedLayout::giga_lens(),
            grid,
            psf,
            order,
            obs,
            bkg_var,
            poisson,
            mask,
        )
    }

    /// As [`Self::new`], for the components of `layout`.
    #[allow(clippy::too_many_arguments)]
    pub fn with_layout(
        layout: FusedLayout,
        grid: Grid,
        psf: &Psf,
        order: PsfOrder,
        obs: &[f64],
        bkg_var: &[f64],
        poisson: Option<f64>,
        mask: Option<&[bool]>,
    ) -> Result<Self> {
        let noise = PixelNoise::new(grid.num_pixels(), obs, bkg_var, poisson, mask)?;
        let (xs, ys) = grid.super_coords_host();
        let sub = super::render::subgrid_psf(psf, &grid, order);
        let blur = match &sub {
            Some(k) => Blur::SubGrid(Polyphase::new(k, grid.supersampling, grid.ny, grid.nx)),
            None => Blur::Pixels(Kernel::of(psf, grid.ny, grid.nx)),
        };
        Ok(Self {
            num_params: layout.num_params(),
            layout,
            xs: xs.into_iter().map(|v| v as f32).collect(),
            ys: ys.into_iter().map(|v| v as f32).collect(),
            blur,
            noise,
            grid,
        })
    }

    /// The PSF acts on the sub-pixel grid.
    fn subgrid(&self) -> bool {
        matches!(self.blur, Blur::SubGrid(_))
    }

    /// Rows and columns of the grid the PSF acts on.
    fn blur_shape(&self) -> (usize, usize) {
        let s = if self.subgrid() {
            self.grid.supersampling
        } else {
            1
        };
        (self.grid.ny * s, self.grid.nx * s)
    }

    /// `model = pool(K * img)` (sub-grid) or `K * img` (pixel grid).
    fn blur(&self, img: &[f32], tmp: &mut [f32], model: &mut [f32]) {
        let (h, w) = self.blur_shape();
        match &self.blur {
            Blur::Pixels(k) => k.apply(img, h, w, tmp, model),
            Blur::SubGrid(p) => p.apply(img, model, tmp),
        }
    }

    /// The adjoint of [`Self::blur`]: `g_img = K^T pool^T g_model`.
    fn blur_adjoint(&self, g_model: &[f32], tmp: &mut [f32], g_img: &mut [f32]) {
        let (h, w) = self.blur_shape();
        match &self.blur {
            Blur::Pixels(k) => k.adjoint(g_model, h, w, tmp, g_img),
            Blur::SubGrid(p) => p.adjoint(g_model, g_img, tmp),
        }
    }

    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Parameters per sample.
    pub fn num_params(&self) -> usize {
        self.num_params
    }

    /// The [`Scratch::shape`] this model needs.
    fn scratch_shape(&self) -> (usize, usize, usize, usize) {
        let (h, w) = self.blur_shape();
        let m = h * w;
        let tmp = match &self.blur {
            Blur::Pixels(_) => m,
            Blur::SubGrid(p) => p.work_len(),
        };
        (m, self.grid.num_pixels(), tmp, self.num_params * m)
    }

    fn scratch(&self) -> Scratch {
        let (m, n, tmp, jac) = self.scratch_shape();
        Scratch {
            img: vec![0.0; m],
            jac: vec![0.0; jac],
            model: vec![0.0; n],
            g_model: vec![0.0; n],
            g_img: vec![0.0; m],
            tmp: vec![0.0; tmp],
        }
    }

    /// Runs `f` with this thread's scratch buffers, kept between calls (rayon may split a batch into
    /// one job per sample, and a fresh 2 MB Jacobian per job costs more than the FFTs).
    fn with_scratch<R>(&self, f: impl FnOnce(&mut Scratch) -> R) -> R {
        SCRATCH.with(|cell| {
            let mut slot = cell.borrow_mut();
            let shape = self.scratch_shape();
            if slot.as_ref().is_none_or(|s| s.shape() != shape) {
                *slot = Some(self.scratch());
            }
            f(slot.as_mut().expect("scratch was just set"))
        })
    }

    /// Pooled (pre-PSF) image of one sample, optionally with per-pixel Jacobians; dispatches to
    /// the widest vector instruction set the CPU has.
    fn pooled(&self, p: &[f64], img: &mut [f32], jac: Option<&mut [f32]>) {
        let (mass, lights, sources) = self.layout.sample(p);
        let m = SampleModel {
            mass: &mass,
            lights: &lights,
            sources: &sources,
        };
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked just above).
                unsafe { self.pooled_avx512(&m, img, jac) };
                return;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                unsafe { self.pooled_avx2(&m, img, jac) };
                return;
            }
        }
        self.pooled_blocks(&m, img, jac)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn pooled_avx512(&self, m: &SampleModel, img: &mut [f32], jac: Option<&mut [f32]>) {
        self.pooled_blocks(m, img, jac)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pooled_avx2(&self, m: &SampleModel, img: &mut [f32], jac: Option<&mut [f32]>) {
        self.pooled_blocks(m, img, jac)
    }

    /// The ray loop: blocks of `L` rays along each supersampled row, pooled into pixels (on the
    /// sub-grid every ray is its own "pixel" and is stored, not accumulated).
    #[inline(always)]
    fn pooled_blocks(&self, m: &SampleModel, img: &mut [f32], mut jac: Option<&mut [f32]>) {
        let k = self.grid.supersampling;
        let (nx, ny) = (self.grid.nx, self.grid.ny);
        let wk = nx * k;
        let (pk, out_w) = if self.subgrid() { (1, wk) } else { (k, nx) };
        let n_out = img.len();
        let inv_k2 = 1.0 / (pk * pk) as f32;
        if pk > 1 {
            img.iter_mut().for_each(|v| *v = 0.0);
            if let Some(j) = jac.as_mut() {
                j.iter_mut().for_each(|v| *v = 0.0);
            }
        }
        let mut out = [0.0f32; L];
        let mut bj = vec![[0.0f32; L]; self.num_params];
        let mut dm = vec![C::new(Lanes([0.0; L]), Lanes([0.0; L])); m.mass.num_params()];
        let mut dl = [Lanes([0.0; L]); MAX_LIGHT_PARAMS];
        for r in 0..ny * k {
            let i = r / pk;
            let row = r * wk;
            let mut c0 = 0;
            while c0 < wk {
                let cnt = L.min(wk - c0);
                let mut xs = [0.0f32; L];
                let mut ys = [0.0f32; L];
                for l in 0..L {
                    let c = row + c0 + l.min(cnt - 1);
                    xs[l] = self.xs[c];
                    ys[l] = self.ys[c];
                }
                match jac.as_mut() {
                    Some(_) => block_with_grad(m, &xs, &ys, &mut out, &mut bj, &mut dm, &mut dl),
                    None => block_value(m, &xs, &ys, &mut out),
                }
                if pk == 1 {
                    let at = row + c0;
                    img[at..at + cnt].copy_from_slice(&out[..cnt]);
                    if let Some(j) = jac.as_mut() {
                        for (q, bq) in bj.iter().enumerate() {
                            let o = q * n_out + at;
                            j[o..o + cnt].copy_from_slice(&bq[..cnt]);
                        }
                    }
                } else {
                    for l in 0..cnt {
                        img[i * out_w + (c0 + l) / pk] += out[l] * inv_k2;
                    }
                    if let Some(j) = jac.as_mut() {
                        for (q, bq) in bj.iter().enumerate() {
                            let jq = &mut j[q * n_out..(q + 1) * n_out];
                            for l in 0..cnt {
                                jq[i * out_w + (c0 + l) / pk] += bq[l] * inv_k2;
                            }
                        }
                    }
                }
                c0 += L;
            }
        }
    }

    /// Noise-free model image of one parameter vector (row-major `[ny, nx]`), for mocks and plots.
    pub fn render(&self, p: &[f64]) -> Vec<f64> {
        assert_eq!(p.len(), self.num_params);
        let mut s = self.scratch();
        self.pooled(p, &mut s.img, None);
        self.blur(&s.img, &mut s.tmp, &mut s.model);
        s.model.iter().map(|&v| v as f64).collect()
    }

    fn one_value(&self, p: &[f64], s: &mut Scratch) -> f64 {
        self.pooled(p, &mut s.img, None);
        self.blur(&s.img, &mut s.tmp, &mut s.model);
        self.noise.eval(&s.model, None)
    }

    fn one_value_and_grad(&self, p: &[f64], s: &mut Scratch, grad: &mut [f64]) -> f64 {
        self.pooled(p, &mut s.img, Some(&mut s.jac));
        self.blur(&s.img, &mut s.tmp, &mut s.model);
        let ll = self.noise.eval(&s.model, Some(&mut s.g_model));
        self.blur_adjoint(&s.g_model, &mut s.tmp, &mut s.g_img);
        let n = s.g_img.len();
        for (q, g) in grad.iter_mut().enumerate() {
            *g = dot(&s.g_img, &s.jac[q * n..(q + 1) * n]);
        }
        ll
    }

    /// Log-likelihoods of a batch of parameter vectors (`params` is B x P, row-major).
    pub fn log_likelihood(&self, params: &[f64]) -> Vec<f64> {
        let np = self.num_params;
        assert_eq!(params.len() % np, 0, "params must be B x {np}");
        params
            .par_chunks(np)
            .map(|p| self.with_scratch(|s| self.one_value(p, s)))
            .collect()
    }

    /// Log-likelihoods and their gradients for a batch (`params` B x P row-major); returns
    /// (`[B]` values, `[B x P]` gradients).
    pub fn value_and_grad(&self, params: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let np = self.num_params;
        assert_eq!(params.len() % np, 0, "params must be B x {np}");
        let b = params.len() / np;
        let mut grad = vec![0.0f64; b * np];
        let values: Vec<f64> = params
            .par_chunks(np)
            .zip(grad.par_chunks_mut(np))
            .map(|(p, g)| self.with_scratch(|s| self.one_value_and_grad(p, s, g)))
            .collect();
        (values, grad)
    }
}

/// `sum a_i b_i` in f64 over f32 inputs, in [`DOT_LANES`] independent partial sums so it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f64; DOT_LANES];
    let (ca, cb) = (a.chunks_exact(DOT_LANES), b.chunks_exact(DOT_LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..DOT_LANES {
            acc[l] += x[l] as f64 * y[l] as f64;
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| *x as f64 * *y as f64).sum();
    acc.iter().sum::<f64>() + tail
}

const DOT_LANES: usize = 16;
