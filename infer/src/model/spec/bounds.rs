//! `[bounds]`: how priors bounded on both sides map from the samplers' unconstrained coordinate.

use anyhow::{Result, bail};
use toml::Value;

use super::{check_keys, opt_float};

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
pub(super) fn bounds_of(v: Option<&Value>, f: &str) -> Result<BoundsMap> {
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
