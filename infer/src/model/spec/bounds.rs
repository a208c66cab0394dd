//! `[bounds]`: how priors bounded on both sides map from the samplers' unconstrained coordinate.

use super::file::{BoundsMapName, BoundsTable};
use anyhow::{Result, bail};

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
pub(super) fn bounds_of(t: Option<&BoundsTable>, f: &str) -> Result<BoundsMap> {
    let Some(t) = t else {
        return Ok(BoundsMap::Sigmoid);
    };
    match t.map {
        None | Some(BoundsMapName::Sigmoid) => {
            if t.width.is_some() {
                bail!("{f}: bounds.width applies only to map = \"soft_clip\"");
            }
            Ok(BoundsMap::Sigmoid)
        }
        Some(BoundsMapName::SoftClip) => {
            let width = t.width.unwrap_or(0.002);
            if !(width > 0.0 && width <= 0.5) {
                bail!(
                    "{f}: bounds.width must be a fraction of the prior's range in (0, 0.5] (got {width})"
                );
            }
            Ok(BoundsMap::SoftClip { width })
        }
    }
}
