//! From a model file to the parameter layout of the inference problem.
//!
//! Free parameters (those with a distribution other than `fixed`) become columns of the physical
//! parameter vector theta, in model-file order, each with its prior and the prior's default
//! bijector (GIGA-Lens Sec. 2.2); a VAE source adds the latent block `src.z` with the checkpoint's
//! fitted multivariate normal prior (Chianese Sec. 2.1). Fixed parameters are kept aside as
//! constants. [`Slots`] tells the forward model where each named parameter comes from.

use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::ops::Range;

use super::spec::{Dist, ModelSpec};
use crate::prob::{MvNormal, ParamLayout, Prior};

/// Where a component parameter's value comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Slot {
    /// Column of theta.
    Column(usize),
    /// A constant.
    Fixed(f64),
}

/// Name -> slot for every scalar parameter of a model, plus the latent block's columns.
#[derive(Clone, Debug, Default)]
pub struct Slots {
    pub scalars: BTreeMap<String, Slot>,
    /// Columns of the VAE latent z, if the model has a VAE source.
    pub latent: Option<Range<usize>>,
    /// Width of theta.
    pub dim: usize,
}

impl Slots {
    /// The slot of a full parameter name (`lens.theta_e`).
    pub fn get(&self, name: &str) -> Result<Slot> {
        self.scalars
            .get(name)
            .copied()
            .ok_or_else(|| anyhow::anyhow!("model has no parameter {name}"))
    }
}

/// Convert a model-file distribution into a prior (`None` for a fixed value).
pub fn prior_of(d: &Dist) -> Option<Prior> {
    Some(match *d {
        Dist::Normal { mu, sigma } => Prior::Normal { mu, sigma },
        Dist::LogNormal { mu, sigma } => Prior::LogNormal { mu, sigma },
        Dist::TruncNormal { mu, sigma, lo, hi } => Prior::TruncatedNormal { mu, sigma, lo, hi },
        Dist::Uniform { lo, hi } => Prior::Uniform { lo, hi },
        Dist::Fixed(_) => return None,
    })
}

/// Build the layout (priors + bijectors) and the slots of `spec`. `latent_prior` is required
/// exactly when the model has a VAE source.
pub fn build(spec: &ModelSpec, latent_prior: Option<MvNormal>) -> Result<(ParamLayout, Slots)> {
    let (layout, slots) = build_any(spec, latent_prior)?;
    if slots.dim == 0 {
        bail!(
            "{}: every parameter is fixed: nothing to infer",
            spec.path.display()
        );
    }
    Ok((layout, slots))
}

/// [`build`] without requiring a free parameter (a mock may pin every parameter).
fn build_any(spec: &ModelSpec, latent_prior: Option<MvNormal>) -> Result<(ParamLayout, Slots)> {
    let mut layout = ParamLayout::new();
    let mut slots = Slots::default();
    for p in spec.params() {
        match prior_of(&p.prior) {
            Some(prior) => {
                let bijector = spec.bounds.bijector(&prior);
                let col = layout.add_scalar(&p.name, prior, Some(bijector))?;
                slots.scalars.insert(p.name.clone(), Slot::Column(col));
            }
            None => {
                let Dist::Fixed(v) = p.prior else {
                    unreachable!()
                };
                slots.scalars.insert(p.name.clone(), Slot::Fixed(v));
            }
        }
    }
    match (spec.vae_source(), latent_prior) {
        (Some(c), Some(prior)) => {
            let range = layout.add_mvnormal(&format!("{}.z", c.label), prior)?;
            slots.latent = Some(range);
        }
        (Some(_), None) => bail!(
            "{}: the model has a VAE source but no latent prior was given",
            spec.path.display()
        ),
        (None, Some(_)) => bail!(
            "{}: a latent prior was given but the model has no VAE source",
            spec.path.display()
        ),
        (None, None) => {}
    }
    slots.dim = layout.dim();
    Ok((layout, slots))
}

/// Same as [`build`] but with the simulation distributions (for drawing mock truths): returns the
/// layout of the model's `sim` distributions (fixed ones stay fixed).
pub fn build_sim(spec: &ModelSpec, latent_prior: Option<MvNormal>) -> Result<(ParamLayout, Slots)> {
    let mut sim = spec.clone();
    for c in sim
        .mass
        .iter_mut()
        .chain(sim.lens_light.iter_mut())
        .chain(sim.source.iter_mut())
    {
        for p in c.params.iter_mut() {
            p.prior = match p.truth {
                Some(t) => Dist::Fixed(t),
                None => p.sim.clone(),
            };
        }
    }
    build_any(&sim, latent_prior)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prob::Bijector;
    use std::path::Path;

    #[test]
    fn free_and_fixed_parameters_get_slots() {
        let text = r#"
[grid]
n = 8
pixel_scale = 0.1
[noise]
sigma_bkg = 1.0
[[mass]]
type = "sie"
theta_e = "lognormal(0, 0.3)"
e1 = "normal(0, 0.1)"
e2 = 0.05
[[source]]
type = "sersic"
amp = { prior = "uniform(1, 10)", truth = 4.0 }
r_sersic = 0.3
n_sersic = 1.0
"#;
        let spec = ModelSpec::parse(text, Path::new("t.toml")).unwrap();
        let (layout, slots) = build(&spec, None).unwrap();
        assert_eq!(layout.dim(), 3);
        assert_eq!(slots.get("lens.theta_e").unwrap(), Slot::Column(0));
        assert_eq!(slots.get("lens.e1").unwrap(), Slot::Column(1));
        assert_eq!(slots.get("lens.e2").unwrap(), Slot::Fixed(0.05));
        assert_eq!(slots.get("src.amp").unwrap(), Slot::Column(2));
        assert_eq!(slots.get("src.center_x").unwrap(), Slot::Fixed(0.0));
        let (sim, sim_slots) = build_sim(&spec, None).unwrap();
        assert_eq!(
            sim.dim(),
            2,
            "the pinned truth makes src.amp fixed in the simulation"
        );
        assert_eq!(sim_slots.get("src.amp").unwrap(), Slot::Fixed(4.0));
        assert!(build(&spec, Some(MvNormal::new(vec![0.0], &[1.0]).unwrap())).is_err());
    }

    #[test]
    fn bounds_soft_clip_maps_only_two_sided_priors() {
        let text = r#"
[grid]
n = 8
pixel_scale = 0.1
[noise]
sigma_bkg = 1.0
[bounds]
map = "soft_clip"
width = 0.02
[[mass]]
type = "epl"
theta_e = "lognormal(0, 0.3)"
gamma = "truncnormal(2, 0.5, 1.2, 2.8)"
e1 = "normal(0, 0.1)"
e2 = 0.05
[[source]]
type = "sersic"
amp = "uniform(1, 11)"
r_sersic = 0.3
n_sersic = 1.0
"#;
        let spec = ModelSpec::parse(text, Path::new("t.toml")).unwrap();
        let (layout, _) = build(&spec, None).unwrap();
        let b = |n: &str| layout.block(n).unwrap().bijector;
        assert_eq!(b("lens.theta_e"), Bijector::Exp);
        assert_eq!(b("lens.e1"), Bijector::Identity);
        let Bijector::SoftClip { lo, hi, width } = b("lens.gamma") else {
            panic!("{:?}", b("lens.gamma"))
        };
        assert_eq!((lo, hi), (1.2, 2.8));
        assert!((width - 0.02 * 1.6).abs() < 1e-12);
        assert!(
            matches!(b("src.amp"), Bijector::SoftClip { width, .. } if (width - 0.2).abs() < 1e-12)
        );
        // absent [bounds]: the priors' defaults
        let plain = text.replace("[bounds]\nmap = \"soft_clip\"\nwidth = 0.02\n", "");
        let spec = ModelSpec::parse(&plain, Path::new("t.toml")).unwrap();
        let (layout, _) = build(&spec, None).unwrap();
        assert!(matches!(
            layout.block("lens.gamma").unwrap().bijector,
            Bijector::Sigmoid { .. }
        ));
        for (bad, want) in [
            ("map = \"soft_clip\"\nwidth = 0.02", "map = \"tanh\""),
            ("width = 0.02", "width = 0.7"),
            ("map = \"soft_clip\"\n", "map = \"sigmoid\"\n"),
        ] {
            let e = format!(
                "{:#}",
                ModelSpec::parse(&text.replace(bad, want), Path::new("t.toml")).unwrap_err()
            );
            assert!(e.contains("t.toml") && e.contains("bounds."), "{e}");
        }
    }
}
