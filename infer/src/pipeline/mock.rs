//! `infer mock`: draw truths from a model file's simulation distributions (or take the pinned
//! ones), render the observation on the model's grid, add noise, and write
//!
//! ```text
//! <out>/obs.fits      observation (counts/s), FITS row order (first row = bottom)
//! <out>/model.fits    the noise-free image
//! <out>/noise.fits    per-pixel noise sigma (sqrt(sigma_bkg^2 + I/(G t_exp)))
//! <out>/mask.fits     the S/N mask of Chianese eq. (25)
//! <out>/source.fits   the true source on a 64x64 source-plane grid (for figures)
//! <out>/truths.json   {params: {name: value}, latent?: [...], snr, sigma_noise, seed, model, source}
//! ```
//!
//! Noise (GIGA-Lens eq. 6): Gaussian background sigma_bkg plus, when the model file gives an
//! exposure time, Poisson shot noise of the expected electron count I G t_exp. Every random draw
//! comes from one generator seeded by `--seed`.

use anyhow::{Context, Result, bail};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal, Poisson};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

use super::problem::Problem;
use super::snr::snr;
use crate::model::layout::Slot;
use crate::model::spec::{ComponentKind, ModelSpec};

/// What `infer mock` is asked to do.
#[derive(Clone, Debug)]
pub struct MockOptions {
    pub model: PathBuf,
    pub seed: u64,
    pub out: PathBuf,
    pub checkpoint: Option<PathBuf>,
    /// Override of the model file's `noise.sigma_bkg` (the paper's 0.333 / 0.1 / 0.0333).
    pub sigma_noise: Option<f64>,
    /// Replace the model's source by image `index` of a prepared data set (a real COSMOS stamp):
    /// the paper's mock sources (Sec. 5.1).
    pub source_image: Option<(PathBuf, usize)>,
    /// Half-width of the source-plane figure grid, arcsec (default: from the grid).
    pub source_half_width: Option<f64>,
}

/// What a mock produced.
#[derive(Clone, Debug)]
pub struct MockResult {
    pub out: PathBuf,
    pub truths: Vec<(String, f64)>,
    pub latent: Option<Vec<f64>>,
    pub snr: f64,
    pub sigma_noise: f64,
    pub ny: usize,
    pub nx: usize,
}

/// Swap a model's source for a pixelated source showing `file`[`index`], keeping x_src, y_src,
/// s and i (a Sersic source has no such parameters: refused).
pub fn with_image_source(spec: &ModelSpec, file: &Path, index: usize) -> Result<ModelSpec> {
    let mut spec = spec.clone();
    let Some(src) = spec.source.first_mut() else {
        bail!("model has no source")
    };
    match src.kind {
        ComponentKind::Vae | ComponentKind::Pixelated => {
            src.kind = ComponentKind::Pixelated;
            src.file = Some(file.to_path_buf());
            src.index = index;
        }
        other => bail!(
            "{}: --source-image replaces a vae or pixelated source (with x_src, y_src, s, i); this model's source is {other:?}",
            spec.path.display()
        ),
    }
    Ok(spec)
}

/// Run a mock and write its files.
pub fn run_mock(opts: &MockOptions, device: &Device) -> Result<MockResult> {
    let mut spec = ModelSpec::load(&opts.model)?;
    if let Some(s) = opts.sigma_noise {
        if !(s > 0.0 && s.is_finite()) {
            bail!("--sigma-noise {s}: must be positive");
        }
        spec.noise.sigma_bkg = s;
    }
    if let Some((file, index)) = &opts.source_image {
        spec = with_image_source(&spec, file, *index)?;
    }
    let problem = Problem::from_spec(spec, opts.checkpoint.as_deref(), device)?;
    let spec = &problem.spec;
    let (layout, slots) = problem.sim_layout()?;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let theta = layout.sample_prior_physical(&mut rng, 1);
    let fwd = problem.forward(slots.clone(), device)?;
    let t = Tensor::<2>::from_data(TensorData::new(theta.clone(), [1, theta.len()]), device);
    let clean: Vec<f32> = fwd.render(&t)?.into_data().iter::<f32>().collect();
    let (ny, nx) = (spec.grid.ny, spec.grid.nx);
    if clean.iter().any(|v| !v.is_finite()) {
        bail!(
            "the drawn truths render to a non-finite image (seed {}): check the simulation distributions",
            opts.seed
        );
    }
    let n = &spec.noise;
    let sigma: Vec<f32> = clean
        .iter()
        .map(|&m| {
            let poisson = n
                .exposure_time
                .map(|t| (m.max(0.0) as f64) / (n.gain * t))
                .unwrap_or(0.0);
            ((n.sigma_bkg * n.sigma_bkg + poisson).sqrt()) as f32
        })
        .collect();
    let bkg = Normal::new(0.0, n.sigma_bkg).context("noise.sigma_bkg")?;
    let obs: Vec<f32> = clean
        .iter()
        .map(|&m| {
            let shot = match n.exposure_time {
                Some(t) if m > 0.0 => {
                    let lambda = m as f64 * n.gain * t;
                    let counts: f64 = Poisson::new(lambda)
                        .map(|p| p.sample(&mut rng))
                        .unwrap_or(lambda);
                    counts / (n.gain * t) - m as f64
                }
                _ => 0.0,
            };
            (m as f64 + shot + bkg.sample(&mut rng)) as f32
        })
        .collect();
    let (snr_value, mask) = snr(ny, nx, &obs, n.sigma_bkg, spec.grid.pixel_scale);

    // Truths by name (free parameters of the *modelling* layout share these names).
    let mut truths = Vec::new();
    for (name, slot) in &slots.scalars {
        let v = match slot {
            Slot::Column(j) => theta[*j],
            Slot::Fixed(v) => *v,
        };
        truths.push((name.clone(), v));
    }
    let latent = slots.latent.clone().map(|r| theta[r].to_vec());

    // The true source on a square source-plane grid for figures.
    let half = opts
        .source_half_width
        .unwrap_or(0.5 * spec.grid.nx.max(spec.grid.ny) as f64 * spec.grid.pixel_scale);
    let src: Vec<f32> = fwd
        .source_plane(&t, 64, half)?
        .into_data()
        .iter::<f32>()
        .collect();

    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    use arclight_core::fits::{Key, write_sky_f32};
    let keys = |what: &str| {
        vec![
            Key::S("CONTENT".into(), what.into()),
            Key::F("PIXSCALE".into(), spec.grid.pixel_scale),
            Key::I("SEED".into(), opts.seed as i64),
            Key::S("MODEL".into(), spec.name.clone()),
        ]
    };
    write_sky_f32(
        &opts.out.join("obs.fits"),
        ny,
        nx,
        &obs,
        &keys("observation"),
    )?;
    write_sky_f32(
        &opts.out.join("model.fits"),
        ny,
        nx,
        &clean,
        &keys("noise-free model"),
    )?;
    write_sky_f32(
        &opts.out.join("noise.fits"),
        ny,
        nx,
        &sigma,
        &keys("noise sigma"),
    )?;
    let mask_f: Vec<f32> = mask.iter().map(|&m| if m { 1.0 } else { 0.0 }).collect();
    write_sky_f32(
        &opts.out.join("mask.fits"),
        ny,
        nx,
        &mask_f,
        &keys("S/N mask, eq. 25"),
    )?;
    let mut skeys = keys("true source plane");
    skeys.push(Key::F("HALFWID".into(), half));
    write_sky_f32(&opts.out.join("source.fits"), 64, 64, &src, &skeys)?;
    // A real galaxy's placement (x_src, y_src, s, i of its stamp's frame) is not the value a fitted
    // source model takes for that galaxy, so it is kept apart from the truths fits are judged by.
    let placement_of = opts
        .source_image
        .as_ref()
        .map(|_| format!("{}.", spec.source[0].label));
    let is_placement = |k: &str| placement_of.as_deref().is_some_and(|p| k.starts_with(p));
    let as_map = |keep: &dyn Fn(&str) -> bool| -> serde_json::Map<String, Value> {
        truths
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect()
    };
    let params = as_map(&|k| !is_placement(k));
    let source = match &opts.source_image {
        Some((f, i)) => json!({"kind": "image", "file": f, "index": i,
            "placement": as_map(&|k| is_placement(k))}),
        None => json!({"kind": format!("{:?}", spec.source[0].kind).to_lowercase()}),
    };
    let doc = json!({
        "params": params,
        "latent": latent,
        "snr": snr_value,
        "sigma_noise": spec.noise.sigma_bkg,
        "exposure_time": spec.noise.exposure_time,
        "seed": opts.seed,
        "model": opts.model,
        "checkpoint": problem.vae.as_ref().map(|v| v.2.clone()),
        "source": source,
        "source_half_width": half,
        "grid": {"nx": nx, "ny": ny, "pixel_scale": spec.grid.pixel_scale, "supersample": spec.grid.supersample},
    });
    arclight_core::write_json_atomic(&opts.out.join("truths.json"), &doc)?;
    Ok(MockResult {
        out: opts.out.clone(),
        truths,
        latent,
        snr: snr_value,
        sigma_noise: spec.noise.sigma_bkg,
        ny,
        nx,
    })
}

/// Truths of a mock: name -> value, and the latent vector if any.
pub type Truths = (std::collections::BTreeMap<String, f64>, Option<Vec<f64>>);

/// The true value of column `name` (a scalar, or a component `src.z[i]` of the latent).
pub fn truth_of(truths: Option<&Truths>, name: &str) -> Option<f64> {
    let (params, latent) = truths?;
    if let Some(v) = params.get(name) {
        return Some(*v);
    }
    let (_, i) = crate::prob::layout::vector_component(name)?;
    latent.as_ref()?.get(i).copied()
}

/// A truth by parameter name, as its equivalent nearest a posterior centre ([`truth_near`]).
pub type TruthNear<'a> = &'a dyn Fn(&str, f64) -> Option<f64>;

/// The truth of `name` as its equivalent nearest `centre` (an angle's truth a whole number of
/// periods away from a posterior describes the same lens: [`ModelSpec::period_of`]), for comparing
/// with a posterior centred there.
pub fn truth_near(
    truths: Option<&Truths>,
    spec: &crate::model::spec::ModelSpec,
    name: &str,
    centre: f64,
) -> Option<f64> {
    let t = truth_of(truths, name)?;
    Some(crate::math::periodic::nearest_equivalent(
        t,
        centre,
        spec.period_of(name),
    ))
}

/// Truths written by [`run_mock`].
pub fn read_truths(path: &Path) -> Result<Truths> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read truths {}", path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid JSON", path.display()))?;
    let params = v
        .get("params")
        .and_then(Value::as_object)
        .with_context(|| format!("{}: no \"params\" object", path.display()))?;
    let mut out = std::collections::BTreeMap::new();
    for (k, x) in params {
        let f = x
            .as_f64()
            .with_context(|| format!("{}: params.{k} is not a number", path.display()))?;
        out.insert(k.clone(), f);
    }
    let latent = v
        .get("latent")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_f64).collect());
    Ok((out, latent))
}
