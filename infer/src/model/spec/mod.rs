//! The model file: a TOML description of a lens model, its priors and the observation set-up.
//!
//! Format (documented for users in `infer/models/README.md`):
//!
//! ```toml
//! name = "gigalens2022"
//! [grid]        # image plane: nx x ny pixels of pixel_scale arcsec, centred on 0
//! nx = 80
//! ny = 80
//! pixel_scale = 0.065
//! supersample = 2
//! [psf]         # type = "gaussian" (sigma or fwhm, arcsec) | "pixelated" (file, hdu) | "none"
//! type = "pixelated"
//! file = "psf/gigalens_psf.fits"
//! [noise]       # sigma_bkg (counts/s); optional exposure_time (s) and gain adding model/(gain t_exp)
//! sigma_bkg = 0.2
//! exposure_time = 100.0
//! [bounds]      # optional: map = "sigmoid" (default) | "soft_clip" (width, a fraction of the range)
//! map = "soft_clip"
//! [[mass]]      # type = any registered profile: "epl" | "sie" | "sis" | "shear" | "nfw" | "multipole"
//! type = "epl"
//! theta_e = { prior = "lognormal(0.2231, 0.4)", sim = "lognormal(0.2231, 0.25)" }
//! gamma = "truncnormal(2, 0.5, 1, 3)"         # a bare string: prior and simulation distribution alike
//! center_x = 0.0                              # a number: fixed
//! ```
//!
//! Each parameter is a distribution string (`normal(mu, sigma)`, `lognormal(mu, sigma)` with mu and
//! sigma of ln x (GIGA-Lens eq. 8's exp(N(.))), `truncnormal(mu, sigma, lo, hi)`, `uniform(lo, hi)`,
//! `fixed(v)`), a number (fixed), or a table `{ prior = "...", sim = "..." }` where `sim` is the
//! simulation distribution `infer mock` draws truths from (default: the prior) and `truth = v`
//! pins the mock's value. Every error names the file and the field. The sections are read by serde
//! (`file.rs`, unknown keys rejected); the components are checked against the profile registry
//! (`component.rs`); the distribution strings are parsed by `dist.rs`.

use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};

mod bounds;
mod component;
mod dist;
mod file;

pub use bounds::BoundsMap;
pub use component::{Component, ComponentKind, ParamSpec};
pub use dist::Dist;

use crate::lens::profile::{LightKind, MassKind};
use bounds::bounds_of;
use component::components;
use file::{Convolution, PsfTable, PsfType};

/// Image-plane pixel grid.
#[derive(Clone, Debug, PartialEq)]
pub struct GridSpec {
    pub nx: usize,
    pub ny: usize,
    /// Arcsec per pixel.
    pub pixel_scale: f64,
    /// Supersampling factor k (GIGA-Lens Sec. 2.1.1).
    pub supersample: usize,
}

/// Point-spread function.
#[derive(Clone, Debug, PartialEq)]
pub enum PsfSpec {
    None,
    /// Gaussian with standard deviation `sigma` arcsec.
    Gaussian {
        sigma: f64,
    },
    /// Pixelated kernel from a FITS image (at the image pixel scale).
    Pixelated {
        file: PathBuf,
        hdu: usize,
    },
}

/// Noise model of GIGA-Lens eq. (6): sigma^2 = sigma_bkg^2 + model / (gain t_exp).
#[derive(Clone, Debug, PartialEq)]
pub struct NoiseSpec {
    pub sigma_bkg: f64,
    pub exposure_time: Option<f64>,
    pub gain: f64,
}

/// A whole model file.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub path: PathBuf,
    pub name: String,
    pub grid: GridSpec,
    pub psf: PsfSpec,
    /// Where the PSF acts on a supersampled grid (`[psf] convolution`, `subgrid_iterations`).
    pub psf_order: crate::lens::psf::PsfOrder,
    pub noise: NoiseSpec,
    /// How priors bounded on both sides map from the samplers' unconstrained coordinate (`[bounds]`).
    pub bounds: BoundsMap,
    pub mass: Vec<Component>,
    pub lens_light: Vec<Component>,
    pub source: Vec<Component>,
}

impl ModelSpec {
    /// Read and validate a model file.
    pub fn load(path: &Path) -> Result<ModelSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read model file {}", path.display()))?;
        Self::parse(&text, path)
    }

    /// Parse model-file text; `path` is used for errors and to resolve relative file names.
    pub fn parse(text: &str, path: &Path) -> Result<ModelSpec> {
        let f = path.display().to_string();
        let file = file::read(text, path)?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = file.name.clone().unwrap_or_else(|| "model".to_string());

        let g = &file.grid;
        if let (Some(n), true) = (g.n, g.nx.is_some() || g.ny.is_some()) {
            bail!(
                "{f}: grid: give either n = {n} (a square grid) or nx and ny, not both (nx = {:?}, ny = {:?})",
                g.nx,
                g.ny
            );
        }
        let nx =
            g.nx.or(g.n)
                .ok_or_else(|| anyhow!("{f}: grid.nx is missing"))?;
        let ny =
            g.ny.or(g.n)
                .ok_or_else(|| anyhow!("{f}: grid.ny is missing"))?;
        let (pixel_scale, supersample) = (g.pixel_scale, g.supersample.unwrap_or(1));
        if nx == 0 || ny == 0 {
            bail!("{f}: grid.nx and grid.ny must be at least 1 (got nx = {nx}, ny = {ny})");
        }
        if !(pixel_scale > 0.0 && pixel_scale.is_finite()) {
            bail!(
                "{f}: grid.pixel_scale must be a positive number of arcsec per pixel (got {pixel_scale})"
            );
        }
        if supersample == 0 {
            bail!("{f}: grid.supersample must be at least 1 (got 0)");
        }
        let grid = GridSpec {
            nx,
            ny,
            pixel_scale,
            supersample,
        };

        let psf_order = psf_order_of(file.psf.as_ref(), &f)?;
        let psf = match &file.psf {
            None => PsfSpec::None,
            Some(t) => match t.kind {
                PsfType::None => PsfSpec::None,
                PsfType::Gaussian => {
                    let sigma = match (t.sigma, t.fwhm) {
                        (Some(s), None) => s,
                        (None, Some(w)) => w / (8.0 * std::f64::consts::LN_2).sqrt(),
                        _ => bail!(
                            "{f}: psf: a gaussian PSF needs exactly one of sigma or fwhm (arcsec)"
                        ),
                    };
                    if !(sigma > 0.0) {
                        bail!("{f}: psf.sigma must be positive");
                    }
                    PsfSpec::Gaussian { sigma }
                }
                PsfType::Pixelated => {
                    let file = t
                        .file
                        .as_ref()
                        .ok_or_else(|| anyhow!("{f}: psf.file is missing for a pixelated PSF"))?;
                    PsfSpec::Pixelated {
                        file: dir.join(file),
                        hdu: t.hdu.unwrap_or(0),
                    }
                }
            },
        };

        let n = &file.noise;
        let (sigma_bkg, exposure_time, gain) =
            (n.sigma_bkg, n.exposure_time, n.gain.unwrap_or(1.0));
        if !(sigma_bkg > 0.0) {
            bail!("{f}: noise.sigma_bkg must be positive (got {sigma_bkg})");
        }
        if exposure_time.is_some_and(|t| !(t > 0.0)) || !(gain > 0.0) {
            bail!("{f}: noise.exposure_time and noise.gain must be positive");
        }
        let noise = NoiseSpec {
            sigma_bkg,
            exposure_time,
            gain,
        };

        let bounds = bounds_of(file.bounds.as_ref(), &f)?;

        // what each array may hold: the registered profiles, and the image sources
        let masses: Vec<ComponentKind> = MassKind::ALL
            .iter()
            .map(|&k| ComponentKind::Mass(k))
            .collect();
        let lights: Vec<ComponentKind> = LightKind::ALL
            .iter()
            .map(|&k| ComponentKind::Light(k))
            .collect();
        let sources: Vec<ComponentKind> = lights
            .iter()
            .copied()
            .chain([ComponentKind::Vae, ComponentKind::Pixelated])
            .collect();
        let mut labels = Vec::new();
        let mut array = |key: &str, v: Option<&toml::Value>, allowed: &[ComponentKind]| {
            components(v, key, &f, &dir, &mut labels, allowed)
        };
        let mass = array("mass", file.mass.as_ref(), &masses)?;
        let lens_light = array("lens_light", file.lens_light.as_ref(), &lights)?;
        let source = array("source", file.source.as_ref(), &sources)?;
        if mass.is_empty() {
            bail!("{f}: the model needs at least one [[mass]] component");
        }
        if source.is_empty() {
            bail!("{f}: the model needs at least one [[source]] component");
        }
        if source
            .iter()
            .filter(|c| c.kind == ComponentKind::Vae)
            .count()
            > 1
        {
            bail!("{f}: at most one VAE source is supported");
        }
        Ok(ModelSpec {
            path: path.to_path_buf(),
            name,
            grid,
            psf,
            psf_order,
            noise,
            bounds,
            mass,
            lens_light,
            source,
        })
    }

    /// All components in render order: mass, lens light, source.
    pub fn components(&self) -> impl Iterator<Item = &Component> {
        self.mass.iter().chain(&self.lens_light).chain(&self.source)
    }

    /// All scalar parameters (fixed ones included), in layout order.
    pub fn params(&self) -> impl Iterator<Item = &ParamSpec> {
        self.components().flat_map(|c| c.params.iter())
    }

    /// The period of a parameter given by its full name (`lens.phi`: pi), if it is an angle.
    pub fn period_of(&self, name: &str) -> Option<f64> {
        self.components().find_map(|c| {
            let p = c.params.iter().find(|p| p.name == name)?;
            c.period_of(&p.key)
        })
    }

    /// The VAE source component, if any.
    pub fn vae_source(&self) -> Option<&Component> {
        self.source.iter().find(|c| c.kind == ComponentKind::Vae)
    }
}

fn check_keys(t: &toml::Table, known: &[&str], f: &str, prefix: &str) -> Result<()> {
    for k in t.keys() {
        if !known.contains(&k.as_str()) {
            bail!(
                "{f}: unknown field {prefix}{k} (known: {})",
                known.join(", ")
            );
        }
    }
    Ok(())
}

/// `[psf] convolution = "subgrid" | "pixel"` (default "subgrid") and `subgrid_iterations`.
fn psf_order_of(psf: Option<&PsfTable>, f: &str) -> Result<crate::lens::psf::PsfOrder> {
    use crate::lens::psf::{PsfOrder, subgrid::GIGALENS_ITERATIONS};
    let Some(t) = psf else {
        return Ok(PsfOrder::default());
    };
    let iterations = t.subgrid_iterations.unwrap_or(GIGALENS_ITERATIONS);
    match t.convolution {
        None | Some(Convolution::Subgrid) => Ok(PsfOrder::SubGrid { iterations }),
        Some(Convolution::Pixel) => {
            if t.subgrid_iterations.is_some() {
                bail!("{f}: psf.subgrid_iterations applies only to convolution = \"subgrid\"");
            }
            Ok(PsfOrder::Pixel)
        }
    }
}

fn opt_int(t: &toml::Table, key: &str, f: &str, sec: &str) -> Result<Option<usize>> {
    match t.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_integer()
            .filter(|i| *i >= 0)
            .map(|i| Some(i as usize))
            .ok_or_else(|| anyhow!("{f}: {sec}.{key} must be a non-negative integer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
[grid]
n = 16
pixel_scale = 0.1
[psf]
type = "gaussian"
fwhm = 0.1
[noise]
sigma_bkg = 0.2
[[mass]]
type = "epl"
theta_e = { prior = "lognormal(ln 1.25, 0.4)", sim = "lognormal(ln 1.25, 0.25)" }
gamma = "truncnormal(2, 0.5, 1, 3)"
e1 = "normal(0, 0.2)"
e2 = "normal(0, 0.2)"
[[mass]]
type = "shear"
gamma1 = "normal(0, 0.1)"
gamma2 = { prior = "normal(0, 0.1)", truth = 0.02 }
[[source]]
type = "sersic"
amp = "lognormal(5, 0.9)"
r_sersic = "lognormal(ln 0.25, 0.25)"
n_sersic = "uniform(0.5, 8)"
"#;

    #[test]
    fn parses_and_fills_defaults() {
        let m = ModelSpec::parse(GOOD, Path::new("m.toml")).unwrap();
        assert_eq!((m.grid.nx, m.grid.ny, m.grid.supersample), (16, 16, 1));
        match m.psf {
            PsfSpec::Gaussian { sigma } => assert!((sigma - 0.1 / 2.354820045).abs() < 1e-6),
            _ => panic!(),
        }
        let names: Vec<_> = m.params().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names[..6],
            [
                "lens.theta_e",
                "lens.gamma",
                "lens.e1",
                "lens.e2",
                "lens.center_x",
                "lens.center_y"
            ]
        );
        assert!(
            names.contains(&"shear.gamma1")
                && names.contains(&"src.e1")
                && names.contains(&"src.center_y")
        );
        let te = m.mass[0].param("theta_e").unwrap();
        assert_eq!(
            te.prior,
            Dist::LogNormal {
                mu: 1.25f64.ln(),
                sigma: 0.4
            }
        );
        assert_eq!(
            te.sim,
            Dist::LogNormal {
                mu: 1.25f64.ln(),
                sigma: 0.25
            }
        );
        assert_eq!(m.mass[1].param("gamma2").unwrap().truth, Some(0.02));
        assert_eq!(m.source[0].param("e1").unwrap().prior, Dist::Fixed(0.0));
    }

    #[test]
    fn every_shipped_model_file_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "toml") {
                ModelSpec::load(&p).unwrap_or_else(|e| panic!("{e:#}"));
                n += 1;
            }
        }
        assert!(n >= 4, "{n} model files in {}", dir.display());
    }

    #[test]
    fn errors_name_file_and_field() {
        let cases = [
            (
                GOOD.replace("lognormal(5, 0.9)", "cauchy(5, 0.9)"),
                "unknown prior \"cauchy\"",
            ),
            (
                GOOD.replace("gamma1 =", "gammma1 ="),
                "unknown parameter \"gammma1\"",
            ),
            (
                GOOD.replace("n_sersic = \"uniform(0.5, 8)\"", ""),
                "parameter \"n_sersic\" is missing",
            ),
            (
                GOOD.replace("sigma_bkg = 0.2", "sigma_bkg = -1.0"),
                "noise.sigma_bkg must be positive",
            ),
            (
                GOOD.replace("normal(0, 0.2)", "normal(0, -0.2)"),
                "positive sigma",
            ),
            (
                GOOD.replace("[grid]", "[grd]"),
                "line 3 (`[grd]`): unknown field `grd`",
            ),
            (
                GOOD.replace("pixel_scale = 0.1", "pixel_scale = 0.1\npixscale = 2"),
                "line 6 grid.pixscale (`pixscale = 2`): unknown field `pixscale`, expected one of `n`, `nx`",
            ),
            (
                GOOD.replace("pixel_scale = 0.1", "pixel_scale = \"0.1\""),
                "grid.pixel_scale (`pixel_scale = \"0.1\"`): invalid type: string \"0.1\", expected f64",
            ),
            (
                GOOD.replace("type = \"gaussian\"", "type = \"moffat\""),
                "unknown variant `moffat`, expected one of `gaussian`, `pixelated`, `none`",
            ),
            (
                GOOD.replace("[noise]", "[bounds]\nmap = \"clip\"\n[noise]"),
                "unknown variant `clip`, expected `sigmoid` or `soft_clip`",
            ),
            (
                GOOD.replace("pixel_scale = 0.1", "pixel_scale = -0.05"),
                "grid.pixel_scale must be a positive number of arcsec per pixel (got -0.05)",
            ),
            (
                GOOD.replace("n = 16", "nx = 16\nny = 0"),
                "grid.nx and grid.ny must be at least 1 (got nx = 16, ny = 0)",
            ),
            (
                GOOD.replace("e2 = \"normal(0, 0.2)\"", "q = 0.5"),
                "not both",
            ),
            (
                GOOD.replace("n = 16", "n = 16\nnx = 20"),
                "grid: give either n = 16 (a square grid) or nx and ny, not both",
            ),
        ];
        for (text, want) in cases {
            let e = format!(
                "{:#}",
                ModelSpec::parse(&text, Path::new("dir/m.toml")).unwrap_err()
            );
            assert!(
                e.contains("dir/m.toml") && e.contains(want),
                "{e}\n wanted {want}"
            );
        }
    }

    /// Angles declare their period: an ellipse's position angle pi (mass and light), a multipole's
    /// phi_m 2 pi / m (m fixed in the file); nothing else has one.
    #[test]
    fn periods_of_angles() {
        // GOOD's grid, PSF and noise with other components
        let header = GOOD.split("[[mass]]").next().unwrap();
        let text = header.to_string()
            + r#"[[mass]]
type = "epl"
theta_e = 1.2
gamma = 2.0
q = "uniform(0.3, 1)"
phi = "normal(0, 1)"
[[mass]]
type = "multipole"
m = 4
a_m = "normal(0, 0.02)"
phi_m = "uniform(-0.7, 0.7)"
[[mass]]
type = "shear"
gamma1 = "normal(0, 0.1)"
gamma2 = "normal(0, 0.1)"
[[source]]
type = "sersic"
amp = 5.0
r_sersic = 0.3
n_sersic = 1.0
q = 0.8
phi = "normal(0, 1)"
"#;
        let m = ModelSpec::parse(&text, Path::new("m.toml")).unwrap();
        let pi = std::f64::consts::PI;
        let label = &m.mass[1].label;
        assert_eq!(m.period_of("lens.phi"), Some(pi));
        assert_eq!(m.period_of("src.phi"), Some(pi));
        assert_eq!(m.period_of(&format!("{label}.phi_m")), Some(pi / 2.0));
        for name in ["lens.q", "lens.theta_e", "shear.gamma1", "src.amp", "nope"] {
            assert_eq!(m.period_of(name), None, "{name}");
        }
    }
}
