//! Image formation (Chianese eqs. 6, 8, 9; GIGA-Lens Sec. 2.1.1):
//!
//! 1. trace every ray of the supersampled grid to the source plane, beta = theta - alpha(theta);
//! 2. evaluate the source brightness at beta (surface brightness is conserved, eq. 8) and add the
//!    lens light evaluated at theta;
//! 3. convolve with the PSF re-sampled to the sub-pixel grid, then average each k x k block of
//!    sub-pixels back to the image grid (the GIGA-Lens simulator; lenstronomy's
//!    `supersampling_convolution=True`), or, with `[psf] convolution = "pixel"`, average first and
//!    convolve with the pixel kernel after (lenstronomy's cheaper default).
//!
//! The result is the noise-free model image `[B, H, W]` in counts/s per pixel-area unit of the
//! profiles (the profiles' surface brightness averaged over the pixel).

use burn::tensor::{Device, Tensor};

use super::grid::{Grid, pool};
use super::light::SurfaceBrightness;
use super::mass::MassModel;
use super::psf::{Psf, PsfOrder};

/// The grid, PSF and cached ray positions of one observation setup, on one device.
#[derive(Clone, Debug)]
pub struct Renderer {
    /// Image grid and supersampling.
    pub grid: Grid,
    /// Point-spread function (pixel kernel).
    pub psf: Psf,
    /// Where the PSF acts on a supersampled grid.
    pub order: PsfOrder,
    /// The kernel on the sub-pixel grid when convolving before averaging.
    pub sub_psf: Option<Psf>,
    xs: Tensor<2>,
    ys: Tensor<2>,
}

impl Renderer {
    /// A renderer for `grid` and `psf` whose ray positions live on `device` (use the device the
    /// parameters live on: the autodiff device for gradients, the inner one for values only).
    pub fn new(grid: Grid, psf: Psf, device: &Device) -> Self {
        Self::with_order(grid, psf, PsfOrder::default(), device)
    }

    /// A renderer applying the PSF at the stage `order` names (see [`PsfOrder`]).
    pub fn with_order(grid: Grid, psf: Psf, order: PsfOrder, device: &Device) -> Self {
        let (xs, ys) = grid.super_coords(device);
        let sub_psf = subgrid_psf(&psf, &grid, order);
        Self {
            grid,
            psf,
            order,
            sub_psf,
            xs,
            ys,
        }
    }

    /// Supersampled ray positions `[1, N]` (x, y).
    pub fn rays(&self) -> (&Tensor<2>, &Tensor<2>) {
        (&self.xs, &self.ys)
    }

    /// Surface brightness on the supersampled grid, `[B, N]` (before pooling and PSF).
    pub fn supersampled(
        &self,
        mass: &MassModel,
        source: &dyn SurfaceBrightness,
        lens_light: Option<&dyn SurfaceBrightness>,
    ) -> Tensor<2> {
        let (bx, by) = mass.ray_shoot(&self.xs, &self.ys);
        let img = source.brightness(&bx, &by);
        match lens_light {
            Some(l) => img + l.brightness(&self.xs, &self.ys),
            None => img,
        }
    }

    /// The model image `[B, H, W]`: ray tracing, source + lens light, pooling, PSF.
    pub fn render(
        &self,
        mass: &MassModel,
        source: &dyn SurfaceBrightness,
        lens_light: Option<&dyn SurfaceBrightness>,
    ) -> Tensor<3> {
        let sup = self.supersampled(mass, source, lens_light);
        match &self.sub_psf {
            Some(k) => {
                let [b, n] = sup.dims();
                let s = self.grid.supersampling;
                let fine = sup.reshape([b, self.grid.ny * s, self.grid.nx * s]);
                pool(k.convolve(fine).reshape([b, n]), &self.grid)
            }
            None => self.psf.convolve(pool(sup, &self.grid)),
        }
    }
}

/// The kernel on the sub-pixel grid when `order` convolves there and the grid is supersampled.
pub fn subgrid_psf(psf: &Psf, grid: &Grid, order: PsfOrder) -> Option<Psf> {
    match order {
        PsfOrder::SubGrid { iterations } if grid.supersampling > 1 && !matches!(psf, Psf::None) => {
            Some(psf.on_subgrid(grid.supersampling, grid.pixel_scale, iterations))
        }
        _ => None,
    }
}
