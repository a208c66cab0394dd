//! The forward model of a model file: physical parameters theta `[B, P]` -> model image `[B, H, W]`.
//!
//! Builds, per evaluation, the batched mass model (EPL / SIE / SIS + shear, Chianese eq. 10), the
//! lens light and the source (Sersic, a placed image, or the VAE decoder of eq. 17) from the
//! columns of theta (or constants for fixed parameters), then ray-traces, pools and convolves with
//! the PSF ([`crate::lens::render::Renderer`]). Works on any device; put theta on an autodiff
//! device to differentiate.

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use std::sync::Arc;

use super::layout::{Slot, Slots};
use super::spec::{Component, ComponentKind, ModelSpec, PsfSpec};
use crate::lens::grid::Grid;
use crate::lens::light::{HostLight, Sersic, SurfaceBrightness};
use crate::lens::mass::{Epl, HostProfile, MassComponent, MassModel, Shear};
use crate::lens::profile::{LightKind, MassKind};
use crate::lens::psf::Psf;
use crate::lens::render::Renderer;
use crate::source::placed::PlacedImage;
use crate::source::vae::Decode;

/// Build the PSF a model file names.
pub fn psf_of(spec: &ModelSpec) -> Result<Psf> {
    match &spec.psf {
        PsfSpec::None => Ok(Psf::None),
        PsfSpec::Gaussian { sigma } => Psf::gaussian(*sigma, spec.grid.pixel_scale, 4.0),
        PsfSpec::Pixelated { file, hdu } => {
            let mut img = arclight_core::fits::read_image_f64(file, *hdu)
                .with_context(|| format!("{}: psf.file", spec.path.display()))?;
            // Same orientation as observations: row 0 = top.
            arclight_core::fits::flip_rows(img.ny, img.nx, &mut img.data);
            Psf::pixelated(img.ny, img.nx, img.data)
                .with_context(|| format!("PSF kernel {}", file.display()))
        }
    }
}

/// The image grid of a model file.
pub fn grid_of(spec: &ModelSpec) -> Result<Grid> {
    Grid::new(
        spec.grid.ny,
        spec.grid.nx,
        spec.grid.pixel_scale,
        spec.grid.supersample,
    )
}

/// The factor that turns a model file's Sersic `amp` into the renderer's units.
///
/// Model files give Sersic amplitudes in lenstronomy's convention, which GIGA-Lens eq. (8) uses:
/// `amp` is the surface brightness at R_sersic in counts/s per arcsec^2, and an image pixel holds
/// that surface brightness integrated over the pixel, i.e. times the pixel area (lenstronomy's
/// `Numerics` flux scaling `deltaPix^2`; the GIGA-Lens simulator's `conversion_factor =
/// det(pix2angle)` applied after pooling). The renderer works in counts/s per image pixel (the
/// unit of the observation, of `sigma_bkg` in eq. 6 and of the VAE source's intensity `i`), so
/// the Sersic amplitude is multiplied by `pixel_scale^2` (0.004225 for GIGA-Lens's 0.065").
/// Without it the eq. (8) amplitudes make images ~237x too bright (arc S/N ~ 2e4 instead of
/// ~100) and a posterior too sharp for multistart MAP to find its mode.
pub fn sersic_amp_scale(spec: &ModelSpec) -> f64 {
    spec.grid.pixel_scale * spec.grid.pixel_scale
}

/// A fixed source image (e.g. a real galaxy stamp), shared by the batch.
#[derive(Clone, Debug)]
pub struct FixedImage {
    pub ny: usize,
    pub nx: usize,
    pub data: Vec<f32>,
}

/// A model file turned into a differentiable function of theta.
#[derive(Clone)]
pub struct ForwardModel {
    pub spec: ModelSpec,
    pub slots: Slots,
    renderer: Renderer,
    device: Device,
    decoder: Option<Arc<dyn Decode>>,
    /// Images of `pixelated` sources, by source index.
    fixed_images: Vec<Option<Tensor<3>>>,
}

impl ForwardModel {
    /// A forward model on `device`. `decoder` is required iff the model has a VAE source;
    /// `images` supplies the images of `pixelated` sources (by position in `[[source]]`).
    pub fn new(
        spec: ModelSpec,
        slots: Slots,
        device: &Device,
        decoder: Option<Arc<dyn Decode>>,
        images: &[Option<FixedImage>],
    ) -> Result<Self> {
        let renderer =
            Renderer::with_order(grid_of(&spec)?, psf_of(&spec)?, spec.psf_order, device);
        if spec.vae_source().is_some() != decoder.is_some() {
            bail!(
                "{}: a VAE source needs a decoder and only a VAE source takes one",
                spec.path.display()
            );
        }
        let mut fixed_images = Vec::new();
        for (k, c) in spec.source.iter().enumerate() {
            if c.kind == ComponentKind::Pixelated {
                let Some(Some(img)) = images.get(k) else {
                    bail!(
                        "{}: source {} ({}) needs its image",
                        spec.path.display(),
                        k,
                        c.label
                    );
                };
                let t = Tensor::<3>::from_data(
                    TensorData::new(img.data.clone(), [1, img.ny, img.nx]),
                    device,
                );
                fixed_images.push(Some(t));
            } else {
                fixed_images.push(None);
            }
        }
        Ok(Self {
            spec,
            slots,
            renderer,
            device: device.clone(),
            decoder,
            fixed_images,
        })
    }

    /// The same model on another device (e.g. the inner device for values without gradients).
    pub fn to_device(&self, device: &Device) -> Self {
        let mut m = self.clone();
        m.renderer = Renderer::with_order(
            self.renderer.grid.clone(),
            self.renderer.psf.clone(),
            self.renderer.order,
            device,
        );
        m.fixed_images = self
            .fixed_images
            .iter()
            .map(|t| t.as_ref().map(|t| t.clone().to_device(device)))
            .collect();
        m.device = device.clone();
        m
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn grid(&self) -> &Grid {
        &self.renderer.grid
    }

    /// The VAE decoder of the source, if the model has one.
    pub fn decoder(&self) -> Option<&Arc<dyn Decode>> {
        self.decoder.as_ref()
    }

    /// Noise-free model image `[B, H, W]` for theta `[B, P]` (physical units).
    pub fn render(&self, theta: &Tensor<2>) -> Result<Tensor<3>> {
        let p = Params {
            theta,
            slots: &self.slots,
            batch: theta.dims()[0],
            device: &self.device,
            sersic_amp_scale: sersic_amp_scale(&self.spec),
        };
        let mass = MassModel::new(
            self.spec
                .mass
                .iter()
                .map(|c| mass_component(c, &p))
                .collect::<Result<_>>()?,
        );
        let mut sources: Vec<Box<dyn SurfaceBrightness>> = Vec::new();
        for (k, c) in self.spec.source.iter().enumerate() {
            sources.push(self.source(k, c, &p)?);
        }
        let lens_light: Vec<Box<dyn SurfaceBrightness>> = self
            .spec
            .lens_light
            .iter()
            .map(|c| light(c, &p))
            .collect::<Result<_>>()?;
        let source = Sum(sources);
        let light = Sum(lens_light);
        let light_ref: Option<&dyn SurfaceBrightness> = if light.0.is_empty() {
            None
        } else {
            Some(&light)
        };
        Ok(self.renderer.render(&mass, &source, light_ref))
    }

    /// The source-plane image of the first source on a square grid of `n` pixels spanning
    /// `half_width` arcsec around the origin, `[B, n, n]` (for figures), in the renderer's units
    /// (counts/s per image pixel; see [`sersic_amp_scale`]).
    pub fn source_plane(&self, theta: &Tensor<2>, n: usize, half_width: f64) -> Result<Tensor<3>> {
        let b = theta.dims()[0];
        let p = Params {
            theta,
            slots: &self.slots,
            batch: b,
            device: &self.device,
            sersic_amp_scale: sersic_amp_scale(&self.spec),
        };
        let step = 2.0 * half_width / n as f64;
        let mut xs = Vec::with_capacity(n * n);
        let mut ys = Vec::with_capacity(n * n);
        for r in 0..n {
            for c in 0..n {
                xs.push((-half_width + (c as f64 + 0.5) * step) as f32);
                ys.push((half_width - (r as f64 + 0.5) * step) as f32);
            }
        }
        let x = Tensor::<2>::from_data(TensorData::new(xs, [1, n * n]), &self.device);
        let y = Tensor::<2>::from_data(TensorData::new(ys, [1, n * n]), &self.device);
        let Some(c) = self.spec.source.first() else {
            bail!("model has no source")
        };
        Ok(self.source(0, c, &p)?.brightness(&x, &y).reshape([b, n, n]))
    }

    fn source(
        &self,
        k: usize,
        c: &Component,
        p: &Params<'_>,
    ) -> Result<Box<dyn SurfaceBrightness>> {
        Ok(match c.kind {
            ComponentKind::Light(_) => light(c, p)?,
            ComponentKind::Vae => {
                let dec = self
                    .decoder
                    .as_ref()
                    .context("VAE source without a decoder")?;
                let range = self
                    .slots
                    .latent
                    .clone()
                    .context("VAE source without latent columns")?;
                let z = p.theta.clone().slice([0..p.batch, range]);
                Box::new(PlacedImage {
                    image: dec.decode(z),
                    x_src: p.get(c, "x_src")?,
                    y_src: p.get(c, "y_src")?,
                    s: p.get(c, "s")?,
                    i: p.get(c, "i")?,
                })
            }
            ComponentKind::Pixelated => Box::new(PlacedImage {
                image: self.fixed_images[k]
                    .clone()
                    .context("pixelated source without its image")?,
                x_src: p.get(c, "x_src")?,
                y_src: p.get(c, "y_src")?,
                s: p.get(c, "s")?,
                i: p.get(c, "i")?,
            }),
            other => bail!("{other:?} cannot be a source"),
        })
    }
}

/// Sum of surface-brightness components.
struct Sum(Vec<Box<dyn SurfaceBrightness>>);

impl SurfaceBrightness for Sum {
    fn brightness(&self, x: &Tensor<2>, y: &Tensor<2>) -> Tensor<2> {
        let mut it = self.0.iter();
        let first = it.next().expect("Sum of no components").brightness(x, y);
        it.fold(first, |acc, c| acc + c.brightness(x, y))
    }
}

/// Column access into theta by component parameter name.
struct Params<'a> {
    theta: &'a Tensor<2>,
    slots: &'a Slots,
    batch: usize,
    device: &'a Device,
    /// [`sersic_amp_scale`] of the model file.
    sersic_amp_scale: f64,
}

impl Params<'_> {
    fn get(&self, c: &Component, key: &str) -> Result<Tensor<1>> {
        let name = format!("{}.{key}", c.label);
        Ok(match self.slots.get(&name)? {
            Slot::Column(j) => self
                .theta
                .clone()
                .slice([0..self.batch, j..j + 1])
                .reshape([self.batch]),
            Slot::Fixed(v) => Tensor::<1>::full([self.batch], v, self.device),
        })
    }

    /// The `[B]` columns of a registered profile's `keys`: (e1, e2) from (q, phi) when the file
    /// gives those, the `scaled` key multiplied by its factor.
    fn registered(
        &self,
        c: &Component,
        keys: &[&str],
        scaled: (&str, f64),
    ) -> Result<Vec<Tensor<1>>> {
        let ell = if c.q_phi {
            Some(self.ellipticity(c)?)
        } else {
            None
        };
        keys.iter()
            .map(|key| match (&ell, *key) {
                (Some((e1, _)), "e1") => Ok(e1.clone()),
                (Some((_, e2)), "e2") => Ok(e2.clone()),
                (_, k) if k == scaled.0 => Ok(self.get(c, k)?.mul_scalar(scaled.1)),
                _ => self.get(c, key),
            })
            .collect()
    }

    /// (e1, e2) of an elliptical component, converting from (q, phi) when the file uses those
    /// (Chianese eqs. 19-20): (e1, e2) = (1-q)/(1+q) (cos 2phi, sin 2phi).
    fn ellipticity(&self, c: &Component) -> Result<(Tensor<1>, Tensor<1>)> {
        if c.q_phi {
            let q = self.get(c, "q")?;
            let phi = self.get(c, "phi")?.mul_scalar(2.0);
            let e = (q.clone().neg().add_scalar(1.0)) / q.add_scalar(1.0);
            Ok((e.clone() * phi.clone().cos(), e * phi.sin()))
        } else {
            Ok((self.get(c, "e1")?, self.get(c, "e2")?))
        }
    }
}

fn mass_component(c: &Component, p: &Params<'_>) -> Result<MassComponent> {
    let ComponentKind::Mass(kind) = c.kind else {
        bail!("{} is not a mass component", c.kind.name());
    };
    Ok(match kind {
        MassKind::Epl | MassKind::Sie => {
            let (e1, e2) = p.ellipticity(c)?;
            let gamma = if kind == MassKind::Epl {
                p.get(c, "gamma")?
            } else {
                Tensor::<1>::full([p.batch], 2.0, p.device)
            };
            MassComponent::Epl(Epl {
                theta_e: p.get(c, "theta_e")?,
                gamma,
                e1,
                e2,
                center_x: p.get(c, "center_x")?,
                center_y: p.get(c, "center_y")?,
            })
        }
        MassKind::Sis => {
            let zero = Tensor::<1>::zeros([p.batch], p.device);
            MassComponent::Epl(Epl::sie(
                p.get(c, "theta_e")?,
                zero.clone(),
                zero,
                p.get(c, "center_x")?,
                p.get(c, "center_y")?,
            ))
        }
        MassKind::Shear => MassComponent::Shear(Shear {
            gamma1: p.get(c, "gamma1")?,
            gamma2: p.get(c, "gamma2")?,
        }),
        _ => MassComponent::Host(HostProfile {
            kind,
            params: p.registered(c, kind.keys(), ("", 1.0))?,
        }),
    })
}

/// A light component: the Sersic by its burn-tensor twin, any other registered profile through the
/// host bridge ([`HostLight`]).
fn light(c: &Component, p: &Params<'_>) -> Result<Box<dyn SurfaceBrightness>> {
    let ComponentKind::Light(kind) = c.kind else {
        bail!("{} is not a light profile", c.kind.name());
    };
    if kind == LightKind::Sersic {
        return Ok(Box::new(sersic(c, p)?));
    }
    let params = p.registered(c, kind.keys(), (kind.amp_key(), p.sersic_amp_scale))?;
    Ok(Box::new(HostLight { kind, params }))
}

fn sersic(c: &Component, p: &Params<'_>) -> Result<Sersic> {
    let (e1, e2) = p.ellipticity(c)?;
    Ok(Sersic {
        amp: p.get(c, "amp")?.mul_scalar(p.sersic_amp_scale),
        r_sersic: p.get(c, "r_sersic")?,
        n_sersic: p.get(c, "n_sersic")?,
        e1,
        e2,
        center_x: p.get(c, "center_x")?,
        center_y: p.get(c, "center_y")?,
    })
}
