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
//! pins the mock's value. Every error names the file and the field.

use anyhow::{Context, Result, anyhow, bail};
use std::path::{Path, PathBuf};
use toml::Value;

use crate::lens::profile::MassKind;

/// A one-dimensional distribution named in a model file.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    Normal {
        mu: f64,
        sigma: f64,
    },
    /// ln x ~ N(mu, sigma).
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    TruncNormal {
        mu: f64,
        sigma: f64,
        lo: f64,
        hi: f64,
    },
    Uniform {
        lo: f64,
        hi: f64,
    },
    Fixed(f64),
}

impl Dist {
    /// Parse `normal(0, 1)` and friends. `what` names the field for errors.
    pub fn parse(s: &str, what: &str) -> Result<Dist> {
        let s = s.trim();
        let open = s
            .find('(')
            .ok_or_else(|| anyhow!("{what}: expected e.g. \"normal(0, 1)\", got {s:?}"))?;
        if !s.ends_with(')') {
            bail!("{what}: missing ')' in {s:?}");
        }
        let name = s[..open].trim().to_ascii_lowercase();
        let args: Vec<f64> = s[open + 1..s.len() - 1]
            .split(',')
            .map(|a| {
                parse_number(a.trim())
                    .ok_or_else(|| anyhow!("{what}: {a:?} is not a number in {s:?}"))
            })
            .collect::<Result<_>>()?;
        let want = |n: usize| -> Result<()> {
            if args.len() != n {
                bail!(
                    "{what}: {name} takes {n} arguments, got {} in {s:?}",
                    args.len()
                );
            }
            Ok(())
        };
        let d = match name.as_str() {
            "normal" | "gaussian" => {
                want(2)?;
                Dist::Normal {
                    mu: args[0],
                    sigma: args[1],
                }
            }
            "lognormal" => {
                want(2)?;
                Dist::LogNormal {
                    mu: args[0],
                    sigma: args[1],
                }
            }
            "truncnormal" | "truncated_normal" => {
                want(4)?;
                Dist::TruncNormal {
                    mu: args[0],
                    sigma: args[1],
                    lo: args[2],
                    hi: args[3],
                }
            }
            "uniform" => {
                want(2)?;
                Dist::Uniform {
                    lo: args[0],
                    hi: args[1],
                }
            }
            "fixed" | "delta" => {
                want(1)?;
                Dist::Fixed(args[0])
            }
            other => bail!(
                "{what}: unknown prior {other:?} (known: normal, lognormal, truncnormal, uniform, fixed)"
            ),
        };
        d.validate(what)?;
        Ok(d)
    }

    fn validate(&self, what: &str) -> Result<()> {
        let finite = |v: f64| v.is_finite();
        match *self {
            Dist::Normal { mu, sigma } | Dist::LogNormal { mu, sigma } => {
                if !(finite(mu) && sigma > 0.0 && finite(sigma)) {
                    bail!("{what}: needs a finite mean and a positive sigma");
                }
            }
            Dist::TruncNormal { mu, sigma, lo, hi } => {
                if !finite(mu) || !(sigma > 0.0) || !(lo < hi) {
                    bail!("{what}: truncnormal needs sigma > 0 and lo < hi");
                }
            }
            Dist::Uniform { lo, hi } => {
                if !(lo < hi) || !finite(lo) || !finite(hi) {
                    bail!("{what}: uniform needs finite lo < hi");
                }
            }
            Dist::Fixed(v) => {
                if !finite(v) {
                    bail!("{what}: fixed value must be finite");
                }
            }
        }
        Ok(())
    }

    pub fn is_fixed(&self) -> bool {
        matches!(self, Dist::Fixed(_))
    }
}

fn parse_number(s: &str) -> Option<f64> {
    // Allow `ln 1.25` / `ln(1.25)` for GIGA-Lens's exp(N(ln 1.25, 0.25)) notation.
    let t = s.trim();
    if let Some(rest) = t.strip_prefix("ln") {
        let inner = rest
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        return inner.parse::<f64>().ok().filter(|v| *v > 0.0).map(f64::ln);
    }
    t.parse::<f64>().ok()
}

/// One scalar parameter of a component.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Full name, `<component>.<param>` (e.g. `lens.theta_e`).
    pub name: String,
    /// The parameter's own name within its component (e.g. `theta_e`).
    pub key: String,
    pub prior: Dist,
    /// Simulation distribution for `infer mock` (defaults to the prior).
    pub sim: Dist,
    /// A pinned truth for `infer mock`, if given.
    pub truth: Option<f64>,
}

/// The kinds of model component a file can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComponentKind {
    /// A mass profile of the registry ([`crate::lens::profile`]): EPL, SIE, SIS, shear, NFW, ...
    Mass(MassKind),
    /// Elliptical Sersic light.
    Sersic,
    /// VAE source of Chianese eq. (17).
    Vae,
    /// A fixed pixelated source image (e.g. a COSMOS stamp).
    Pixelated,
}

impl ComponentKind {
    fn parse(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        Some(match s.as_str() {
            "spep" | "sple" => ComponentKind::Mass(MassKind::Epl),
            "sersic" => ComponentKind::Sersic,
            "vae" => ComponentKind::Vae,
            "pixelated" => ComponentKind::Pixelated,
            _ => ComponentKind::Mass(MassKind::parse(&s)?),
        })
    }

    /// Its name in model files.
    pub fn name(self) -> &'static str {
        match self {
            ComponentKind::Mass(k) => k.name(),
            ComponentKind::Sersic => "sersic",
            ComponentKind::Vae => "vae",
            ComponentKind::Pixelated => "pixelated",
        }
    }

    /// Parameter keys the component accepts (ellipticity as e1/e2 or q/phi, not both).
    pub fn keys(self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = match self {
            ComponentKind::Mass(k) => k.keys().to_vec(),
            ComponentKind::Sersic => vec![
                "amp", "r_sersic", "n_sersic", "e1", "e2", "center_x", "center_y",
            ],
            ComponentKind::Vae | ComponentKind::Pixelated => vec!["x_src", "y_src", "s", "i"],
        };
        if self.is_elliptical() {
            let at = keys
                .iter()
                .position(|k| *k == "e2")
                .map_or(keys.len(), |i| i + 1);
            keys.splice(at..at, ["q", "phi"]);
        }
        keys
    }

    /// Defaults for keys a file may omit.
    fn default_of(self, key: &str) -> Option<f64> {
        match (self, key) {
            (ComponentKind::Mass(k), _) => k.default_of(key),
            (_, "center_x" | "center_y" | "x_src" | "y_src") => Some(0.0),
            (ComponentKind::Vae | ComponentKind::Pixelated, "s" | "i") => Some(1.0),
            _ => None,
        }
    }

    /// Whether the ellipticity (e1, e2) may be given as (q, phi) instead.
    pub fn is_elliptical(self) -> bool {
        match self {
            ComponentKind::Mass(k) => k.keys().contains(&"e1") && k.keys().contains(&"e2"),
            ComponentKind::Sersic => true,
            _ => false,
        }
    }
}

/// A model component with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub kind: ComponentKind,
    /// Prefix of its parameter names (default: `lens`, `shear`, `light`, `src`, numbered if repeated).
    pub label: String,
    pub params: Vec<ParamSpec>,
    /// Ellipticity given as (q, phi) instead of (e1, e2) (Chianese eqs. 19-20).
    pub q_phi: bool,
    /// Pixelated source: data set file and image index; VAE: checkpoint override.
    pub file: Option<PathBuf>,
    pub index: usize,
}

impl Component {
    /// The parameter with this key.
    pub fn param(&self, key: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.key == key)
    }
}

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
        let root: toml::Table = text
            .parse()
            .map_err(|e| anyhow!("{f}: invalid TOML: {e}"))?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        check_keys(
            &root,
            &[
                "name",
                "description",
                "grid",
                "psf",
                "noise",
                "bounds",
                "mass",
                "lens_light",
                "source",
            ],
            &f,
            "",
        )?;
        let name = root
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("model")
            .to_string();

        let grid_t = table(&root, "grid", &f)?;
        check_keys(
            grid_t,
            &["nx", "ny", "n", "pixel_scale", "supersample"],
            &f,
            "grid.",
        )?;
        let n = opt_int(grid_t, "n", &f, "grid")?;
        let nx = opt_int(grid_t, "nx", &f, "grid")?
            .or(n)
            .ok_or_else(|| anyhow!("{f}: grid.nx is missing"))?;
        let ny = opt_int(grid_t, "ny", &f, "grid")?
            .or(n)
            .ok_or_else(|| anyhow!("{f}: grid.ny is missing"))?;
        let pixel_scale = req_float(grid_t, "pixel_scale", &f, "grid")?;
        let supersample = opt_int(grid_t, "supersample", &f, "grid")?.unwrap_or(1);
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

        let psf_order = psf_order_of(root.get("psf"), &f)?;
        let psf = match root.get("psf") {
            None => PsfSpec::None,
            Some(Value::Table(t)) => {
                check_keys(
                    t,
                    &[
                        "type",
                        "sigma",
                        "fwhm",
                        "file",
                        "hdu",
                        "convolution",
                        "subgrid_iterations",
                    ],
                    &f,
                    "psf.",
                )?;
                match t.get("type").and_then(Value::as_str).unwrap_or("gaussian") {
                    "none" => PsfSpec::None,
                    "gaussian" => {
                        let sigma = match (
                            opt_float(t, "sigma", &f, "psf")?,
                            opt_float(t, "fwhm", &f, "psf")?,
                        ) {
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
                    "pixelated" => {
                        let file = t.get("file").and_then(Value::as_str).ok_or_else(|| {
                            anyhow!("{f}: psf.file is missing for a pixelated PSF")
                        })?;
                        let hdu = opt_int(t, "hdu", &f, "psf")?.unwrap_or(0);
                        PsfSpec::Pixelated {
                            file: dir.join(file),
                            hdu,
                        }
                    }
                    other => {
                        bail!("{f}: psf.type {other:?} is unknown (gaussian, pixelated, none)")
                    }
                }
            }
            Some(_) => bail!("{f}: psf must be a table"),
        };

        let noise_t = table(&root, "noise", &f)?;
        check_keys(
            noise_t,
            &["sigma_bkg", "exposure_time", "gain"],
            &f,
            "noise.",
        )?;
        let sigma_bkg = req_float(noise_t, "sigma_bkg", &f, "noise")?;
        let exposure_time = opt_float(noise_t, "exposure_time", &f, "noise")?;
        let gain = opt_float(noise_t, "gain", &f, "noise")?.unwrap_or(1.0);
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

        let bounds = bounds_of(root.get("bounds"), &f)?;

        let mut labels = Vec::new();
        let mass = components(
            &root,
            "mass",
            &f,
            &dir,
            &mut labels,
            &MassKind::ALL
                .iter()
                .map(|&k| ComponentKind::Mass(k))
                .collect::<Vec<_>>(),
        )?;
        let lens_light = components(
            &root,
            "lens_light",
            &f,
            &dir,
            &mut labels,
            &[ComponentKind::Sersic],
        )?;
        let source = components(
            &root,
            "source",
            &f,
            &dir,
            &mut labels,
            &[
                ComponentKind::Sersic,
                ComponentKind::Vae,
                ComponentKind::Pixelated,
            ],
        )?;
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

    /// The VAE source component, if any.
    pub fn vae_source(&self) -> Option<&Component> {
        self.source.iter().find(|c| c.kind == ComponentKind::Vae)
    }
}

fn components(
    root: &toml::Table,
    key: &str,
    f: &str,
    dir: &Path,
    labels: &mut Vec<String>,
    allowed: &[ComponentKind],
) -> Result<Vec<Component>> {
    let Some(v) = root.get(key) else {
        return Ok(Vec::new());
    };
    let items: Vec<&toml::Table> = match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_table()
                    .ok_or_else(|| anyhow!("{f}: every [[{key}]] entry must be a table"))
            })
            .collect::<Result<_>>()?,
        Value::Table(t) => vec![t],
        _ => bail!("{f}: {key} must be a table or an array of tables ([[{key}]])"),
    };
    let mut out = Vec::new();
    for (i, t) in items.into_iter().enumerate() {
        let ty = t
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{f}: {key}[{i}].type is missing"))?;
        let kind = ComponentKind::parse(ty)
            .filter(|k| allowed.contains(k))
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|k| k.name()).collect();
                anyhow!(
                    "{f}: {key}[{i}].type {ty:?} is not allowed here (allowed: {})",
                    names.join(", ")
                )
            })?;
        let default_label = match (key, kind) {
            ("mass", ComponentKind::Mass(MassKind::Shear)) => "shear",
            ("mass", _) => "lens",
            ("lens_light", _) => "light",
            _ => "src",
        };
        let mut label = t
            .get("label")
            .and_then(Value::as_str)
            .unwrap_or(default_label)
            .to_string();
        if labels.contains(&label) {
            let mut n = 2;
            while labels.contains(&format!("{label}{n}")) {
                n += 1;
            }
            label = format!("{label}{n}");
        }
        labels.push(label.clone());
        let what = format!("{key}[{i}] ({label})");
        let file = t.get("file").and_then(Value::as_str).map(|s| dir.join(s));
        let index = opt_int(t, "index", f, &what)?.unwrap_or(0);
        let mut params = Vec::new();
        for (k, v) in t {
            if matches!(
                k.as_str(),
                "type" | "label" | "file" | "index" | "checkpoint"
            ) {
                continue;
            }
            if !kind.keys().contains(&k.as_str()) {
                bail!(
                    "{f}: {what}: unknown parameter {k:?} for type {ty:?} (known: {})",
                    kind.keys().join(", ")
                );
            }
            params.push(param(&label, k, v, f, &what)?);
        }
        let file = if kind == ComponentKind::Vae {
            t.get("checkpoint")
                .and_then(Value::as_str)
                .map(|s| dir.join(s))
                .or(file)
        } else {
            file
        };
        let present: Vec<String> = params.iter().map(|p| p.key.clone()).collect();
        let has = |k: &str| present.iter().any(|p| p == k);
        let q_phi = has("q") || has("phi");
        if kind.is_elliptical() {
            if q_phi && (has("e1") || has("e2")) {
                bail!("{f}: {what}: give the ellipticity as e1/e2 or as q/phi, not both");
            }
            let pair: [&str; 2] = if q_phi { ["q", "phi"] } else { ["e1", "e2"] };
            for k in pair {
                if !has(k) {
                    let v = if k == "q" { 1.0 } else { 0.0 };
                    params.push(fixed(&label, k, v));
                }
            }
        }
        for k in kind.keys() {
            if has(k) || (kind.is_elliptical() && matches!(k, "e1" | "e2" | "q" | "phi")) {
                continue;
            }
            match kind.default_of(k) {
                Some(v) => params.push(fixed(&label, k, v)),
                None => bail!("{f}: {what}: parameter {k:?} is missing"),
            }
        }
        // Stable order: the kind's key order.
        params.sort_by_key(|p| {
            kind.keys()
                .iter()
                .position(|k| *k == p.key)
                .unwrap_or(usize::MAX)
        });
        if let ComponentKind::Mass(mk) = kind {
            for p in &params {
                let value = match (&p.prior, &p.sim) {
                    (Dist::Fixed(a), Dist::Fixed(b)) if a == b => Some(*a),
                    _ => None,
                };
                let verdict = mk.check_fixed(&p.key, value.unwrap_or(f64::NAN));
                match (verdict, value) {
                    (None, _) => {}
                    (Some(_), None) => {
                        bail!("{f}: {what}.{}: must be a fixed number", p.key)
                    }
                    (Some(Err(e)), Some(_)) => bail!("{f}: {what}.{}: {e}", p.key),
                    (Some(Ok(())), Some(_)) => {}
                }
            }
        }
        if kind == ComponentKind::Pixelated && file.is_none() {
            bail!(
                "{f}: {what}: a pixelated source needs `file` (a prepared .h5 data set) and `index`"
            );
        }
        out.push(Component {
            kind,
            label,
            params,
            q_phi: q_phi && kind.is_elliptical(),
            file,
            index,
        });
    }
    Ok(out)
}

fn fixed(label: &str, key: &str, v: f64) -> ParamSpec {
    ParamSpec {
        name: format!("{label}.{key}"),
        key: key.into(),
        prior: Dist::Fixed(v),
        sim: Dist::Fixed(v),
        truth: None,
    }
}

fn param(label: &str, key: &str, v: &Value, f: &str, what: &str) -> Result<ParamSpec> {
    let field = format!("{f}: {what}.{key}");
    let name = format!("{label}.{key}");
    let num = |v: &Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    let (prior, sim, truth) = match v {
        Value::String(s) => {
            let d = Dist::parse(s, &field)?;
            (d.clone(), d, None)
        }
        v if num(v).is_some() => {
            let x = num(v).unwrap_or_default();
            (Dist::Fixed(x), Dist::Fixed(x), None)
        }
        Value::Table(t) => {
            check_keys(t, &["prior", "sim", "truth"], f, &format!("{what}.{key}."))?;
            let prior = match t.get("prior") {
                Some(Value::String(s)) => Dist::parse(s, &format!("{field}.prior"))?,
                Some(v) if num(v).is_some() => Dist::Fixed(num(v).unwrap_or_default()),
                Some(_) => bail!("{field}.prior must be a distribution string or a number"),
                None => bail!("{field}: `prior` is missing"),
            };
            let sim = match t.get("sim") {
                Some(Value::String(s)) => Dist::parse(s, &format!("{field}.sim"))?,
                Some(v) if num(v).is_some() => Dist::Fixed(num(v).unwrap_or_default()),
                Some(_) => bail!("{field}.sim must be a distribution string or a number"),
                None => prior.clone(),
            };
            let truth = match t.get("truth") {
                Some(v) => Some(num(v).ok_or_else(|| anyhow!("{field}.truth must be a number"))?),
                None => None,
            };
            (prior, sim, truth)
        }
        _ => bail!(
            "{field}: expected a distribution string, a number or a table {{ prior = ..., sim = ... }}"
        ),
    };
    Ok(ParamSpec {
        name,
        key: key.into(),
        prior,
        sim,
        truth,
    })
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

fn table<'a>(root: &'a toml::Table, key: &str, f: &str) -> Result<&'a toml::Table> {
    root.get(key)
        .ok_or_else(|| anyhow!("{f}: [{key}] section is missing"))?
        .as_table()
        .ok_or_else(|| anyhow!("{f}: {key} must be a table"))
}

/// `[psf] convolution = "subgrid" | "pixel"` (default "subgrid") and `subgrid_iterations`.
/// The bijector for priors bounded on both sides (truncated normals and uniforms with two finite bounds).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum BoundsMap {
    /// Each prior's own default: the sigmoid of GIGA-Lens eq. (10), the normal CDF for uniforms.
    #[default]
    Sigmoid,
    /// `Bijector::SoftClip` with width `width * (hi - lo)`: the identity away from the bounds, so a
    /// degeneracy ridge that reaches a bound stays straight for the dense metric.
    SoftClip { width: f64 },
}

impl BoundsMap {
    /// The bijector for `prior` (one-sided and unbounded priors keep their default).
    pub fn bijector(&self, prior: &crate::prob::Prior) -> crate::prob::Bijector {
        let (lo, hi) = prior.support();
        match *self {
            BoundsMap::SoftClip { width } if lo.is_finite() && hi.is_finite() => {
                crate::prob::Bijector::SoftClip {
                    lo,
                    hi,
                    width: width * (hi - lo),
                }
            }
            _ => prior.default_bijector(),
        }
    }
}

/// `[bounds] map = "sigmoid" | "soft_clip", width = 0.002` (absent: sigmoid).
fn bounds_of(v: Option<&Value>, f: &str) -> Result<BoundsMap> {
    let t = match v {
        None => return Ok(BoundsMap::Sigmoid),
        Some(Value::Table(t)) => t,
        Some(_) => bail!("{f}: bounds must be a table"),
    };
    check_keys(t, &["map", "width"], f, "bounds.")?;
    let width = opt_float(t, "width", f, "bounds")?;
    let map = match t.get("map") {
        None => None,
        Some(Value::String(m)) => Some(m.as_str()),
        Some(_) => bail!("{f}: bounds.map must be a string (\"sigmoid\" or \"soft_clip\")"),
    };
    match map {
        None | Some("sigmoid") => {
            if width.is_some() {
                bail!("{f}: bounds.width applies only to map = \"soft_clip\"");
            }
            Ok(BoundsMap::Sigmoid)
        }
        Some("soft_clip") => {
            let width = width.unwrap_or(0.002);
            if !(width > 0.0 && width <= 0.5) {
                bail!(
                    "{f}: bounds.width must be a fraction of the prior's range in (0, 0.5] (got {width})"
                );
            }
            Ok(BoundsMap::SoftClip { width })
        }
        Some(other) => bail!(
            "{f}: bounds.map = {other:?}: expected \"sigmoid\" (GIGA-Lens eq. 10; the default) or \"soft_clip\""
        ),
    }
}

fn psf_order_of(psf: Option<&Value>, f: &str) -> Result<crate::lens::psf::PsfOrder> {
    use crate::lens::psf::{PsfOrder, subgrid::GIGALENS_ITERATIONS};
    let Some(Value::Table(t)) = psf else {
        return Ok(PsfOrder::default());
    };
    let iterations = opt_int(t, "subgrid_iterations", f, "psf")?.unwrap_or(GIGALENS_ITERATIONS);
    match t.get("convolution") {
        None => Ok(PsfOrder::SubGrid { iterations }),
        Some(Value::String(v)) if v == "subgrid" => Ok(PsfOrder::SubGrid { iterations }),
        Some(Value::String(v)) if v == "pixel" => {
            if t.contains_key("subgrid_iterations") {
                bail!("{f}: psf.subgrid_iterations applies only to convolution = \"subgrid\"");
            }
            Ok(PsfOrder::Pixel)
        }
        Some(v) => bail!(
            "{f}: psf.convolution = {v}: expected \"subgrid\" (convolve on the supersampled grid, \
             then average; the default) or \"pixel\" (average, then convolve)"
        ),
    }
}

fn opt_float(t: &toml::Table, key: &str, f: &str, sec: &str) -> Result<Option<f64>> {
    match t.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_float()
            .or_else(|| v.as_integer().map(|i| i as f64))
            .map(Some)
            .ok_or_else(|| anyhow!("{f}: {sec}.{key} must be a number")),
    }
}

fn req_float(t: &toml::Table, key: &str, f: &str, sec: &str) -> Result<f64> {
    opt_float(t, key, f, sec)?.ok_or_else(|| anyhow!("{f}: {sec}.{key} is missing"))
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
            (GOOD.replace("[grid]", "[grd]"), "unknown field grd"),
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
}
