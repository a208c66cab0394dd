//! Bijectors g: R -> supp(p) from the unconstrained coordinate `u` to a physical parameter `x = g(u)`
//! (GIGA-Lens Sec. 2.2). MAP, VI and HMC all work on `u`; the prior density picks up the log-Jacobian,
//! eq. (11): `log p~(u) = log p(g(u)) + log|g'(u)|`, while the likelihood is evaluated at `g(u)`, eq. (12).
//!
//! Every bijector here is scalar (the joint bijector is built component-wise, as in the paper), so the
//! Jacobian is diagonal and `log|J| = sum_i log|g_i'(u_i)|`, eq. (13). Each log-derivative is written in terms
//! of `u` directly (never as `log(g'(u))` after the fact) so it stays finite where `g` itself saturates, e.g.
//! the sigmoid of eq. (10) at |u| = 40.

use anyhow::{Result, bail};

use crate::math::special::{HALF_LN_2PI, ndtr, ndtri};
use serde::{Deserialize, Serialize};

/// A scalar bijector `x = g(u)`. Serialised as `{ kind = "sigmoid", lo = 1.0, hi = 3.0 }` etc.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Bijector {
    /// x = u, support R.
    Identity,
    /// x = exp(u), support (0, inf); eq. (9).
    Exp,
    /// x = log(1 + exp(u)), support (0, inf); grows linearly, gentler than `Exp` for large values.
    Softplus,
    /// x = lo + (hi - lo) / (1 + exp(-u)), support (lo, hi); eq. (10).
    Sigmoid { lo: f64, hi: f64 },
    /// x = lo + (hi - lo) Phi(u) with Phi the standard normal CDF, support (lo, hi). For a uniform prior the
    /// density of u is exactly N(0, 1), so a posterior piled against a bound keeps Gaussian tails in u, where
    /// the sigmoid gives an exponential tail on one side and a steep wall on the other (slow, divergent HMC).
    NormalCdf { lo: f64, hi: f64 },
    /// x = lo + w softplus((u - lo) / w) - w softplus((u - hi) / w), support (lo, hi), w > 0: the identity
    /// farther than a few w from either bound, compressed only within them. Where a posterior sits near a bound
    /// the sigmoid bends its correlations with other parameters in u (a straight ridge becomes curved, which a
    /// dense metric cannot follow); a clip with w << hi - lo leaves them straight.
    SoftClip { lo: f64, hi: f64, width: f64 },
    /// x = shift + scale * u, support R (scale != 0). Useful to put a parameter on unit scale.
    Affine { shift: f64, scale: f64 },
    /// x = lo + exp(u), support (lo, inf).
    LowerBound { lo: f64 },
    /// x = hi - exp(u), support (-inf, hi).
    UpperBound { hi: f64 },
}

/// log(1 + exp(u)) without overflow or loss of precision.
pub fn softplus(u: f64) -> f64 {
    if u > 0.0 {
        u + (-u).exp().ln_1p()
    } else {
        u.exp().ln_1p()
    }
}

/// log sinh(x) for x > 0 without overflow.
fn log_sinh(x: f64) -> f64 {
    x + (-(-2.0 * x).exp()).ln_1p() - std::f64::consts::LN_2
}

/// log cosh(x) without overflow.
fn log_cosh(x: f64) -> f64 {
    let a = x.abs();
    a + (-2.0 * a).exp().ln_1p() - std::f64::consts::LN_2
}

/// 1 / (1 + exp(-u)) without overflow.
pub fn sigmoid(u: f64) -> f64 {
    if u >= 0.0 {
        1.0 / (1.0 + (-u).exp())
    } else {
        let e = u.exp();
        e / (1.0 + e)
    }
}

impl Bijector {
    /// Checks the constants (finite, lo < hi, scale != 0); the error names the offending field.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Bijector::Sigmoid { lo, hi } | Bijector::NormalCdf { lo, hi }
                if !(lo.is_finite() && hi.is_finite() && lo < hi) =>
            {
                bail!("sigmoid bijector needs finite lo < hi, got lo = {lo}, hi = {hi}")
            }
            Bijector::SoftClip { lo, hi, width }
                if !(lo.is_finite()
                    && hi.is_finite()
                    && lo < hi
                    && width > 0.0
                    && width.is_finite()) =>
            {
                bail!(
                    "soft_clip bijector needs finite lo < hi and width > 0, got lo = {lo}, hi = {hi}, width = {width}"
                )
            }
            Bijector::Affine { shift, scale }
                if !(shift.is_finite() && scale.is_finite() && scale != 0.0) =>
            {
                bail!(
                    "affine bijector needs finite shift and a finite non-zero scale, got shift = {shift}, scale = {scale}"
                )
            }
            Bijector::LowerBound { lo } if !lo.is_finite() => {
                bail!("lower_bound bijector needs a finite lo, got {lo}")
            }
            Bijector::UpperBound { hi } if !hi.is_finite() => {
                bail!("upper_bound bijector needs a finite hi, got {hi}")
            }
            _ => {}
        }
        Ok(())
    }

    /// The open interval `(lo, hi)` that `g` maps onto (infinite ends allowed).
    pub fn support(&self) -> (f64, f64) {
        match *self {
            Bijector::Identity | Bijector::Affine { .. } => (f64::NEG_INFINITY, f64::INFINITY),
            Bijector::Exp | Bijector::Softplus => (0.0, f64::INFINITY),
            Bijector::Sigmoid { lo, hi }
            | Bijector::NormalCdf { lo, hi }
            | Bijector::SoftClip { lo, hi, .. } => (lo, hi),
            Bijector::LowerBound { lo } => (lo, f64::INFINITY),
            Bijector::UpperBound { hi } => (f64::NEG_INFINITY, hi),
        }
    }

    /// x = g(u).
    pub fn forward(&self, u: f64) -> f64 {
        match *self {
            Bijector::Identity => u,
            Bijector::Exp => u.exp(),
            Bijector::Softplus => softplus(u),
            Bijector::Sigmoid { lo, hi } => lo + (hi - lo) * sigmoid(u),
            Bijector::NormalCdf { lo, hi } => lo + (hi - lo) * ndtr(u),
            Bijector::SoftClip { lo, hi, width } => (lo + width * softplus((u - lo) / width)
                - width * softplus((u - hi) / width))
            .clamp(lo, hi),
            Bijector::Affine { shift, scale } => shift + scale * u,
            Bijector::LowerBound { lo } => lo + u.exp(),
            Bijector::UpperBound { hi } => hi - u.exp(),
        }
    }

    /// u = g^{-1}(x). Errors if `x` is not strictly inside the support (the boundary maps to +-inf).
    pub fn inverse(&self, x: f64) -> Result<f64> {
        let (lo, hi) = self.support();
        if !(x > lo && x < hi) {
            bail!(
                "value {x} is outside the open support ({lo}, {hi}) of the {} bijector",
                self.name()
            );
        }
        Ok(match *self {
            Bijector::Identity => x,
            Bijector::Exp => x.ln(),
            // u = x + log(1 - exp(-x)).
            Bijector::Softplus => x + (-(-x).exp_m1()).ln(),
            Bijector::Sigmoid { lo, hi } => {
                let t = (x - lo) / (hi - lo);
                // logit(t), written to keep precision on both sides.
                t.ln() - (-t).ln_1p()
            }
            Bijector::NormalCdf { lo, hi } => ndtri((x - lo) / (hi - lo)),
            Bijector::SoftClip { lo, hi, width } => {
                // each bound's term alone inverts in closed form (u = lo + w log(expm1((x - lo) / w))); the
                // nearer bound's gives the start, Newton steps on g finish
                let mut u = if x - lo < hi - x {
                    lo + width * ((x - lo) / width).exp_m1().ln()
                } else {
                    hi - width * ((hi - x) / width).exp_m1().ln()
                };
                for _ in 0..50 {
                    let step = (self.forward(u) - x) / self.derivative(u);
                    if !step.is_finite() {
                        break;
                    }
                    u -= step;
                    if step.abs() <= 1e-15 * (1.0 + u.abs()) {
                        break;
                    }
                }
                u
            }
            Bijector::Affine { shift, scale } => (x - shift) / scale,
            Bijector::LowerBound { lo } => (x - lo).ln(),
            Bijector::UpperBound { hi } => (hi - x).ln(),
        })
    }

    /// dg/du, the factor of the chain rule from physical to unconstrained gradients.
    pub fn derivative(&self, u: f64) -> f64 {
        match *self {
            Bijector::Identity => 1.0,
            Bijector::Exp | Bijector::LowerBound { .. } => u.exp(),
            Bijector::UpperBound { .. } => -u.exp(),
            Bijector::Softplus => sigmoid(u),
            Bijector::Sigmoid { lo, hi } => (hi - lo) * sigmoid(u) * sigmoid(-u),
            Bijector::NormalCdf { lo, hi } => (hi - lo) * (-0.5 * u * u - HALF_LN_2PI).exp(),
            Bijector::SoftClip { .. } => self.log_det_jacobian(u).exp(),
            Bijector::Affine { scale, .. } => scale,
        }
    }

    /// log|dg/du|, the per-component term of log|J| in eq. (11).
    pub fn log_det_jacobian(&self, u: f64) -> f64 {
        match *self {
            Bijector::Identity => 0.0,
            Bijector::Exp | Bijector::LowerBound { .. } | Bijector::UpperBound { .. } => u,
            // log sigmoid(u) = -softplus(-u).
            Bijector::Softplus => -softplus(-u),
            // log(hi - lo) + log sigmoid(u) + log sigmoid(-u).
            Bijector::Sigmoid { lo, hi } => (hi - lo).ln() - softplus(-u) - softplus(u),
            Bijector::NormalCdf { lo, hi } => (hi - lo).ln() - 0.5 * u * u - HALF_LN_2PI,
            // g' = sigmoid(a) - sigmoid(b), a = (u - lo) / w > b = (u - hi) / w:
            // = sinh((a - b) / 2) / (2 cosh(a / 2) cosh(b / 2))
            Bijector::SoftClip { lo, hi, width } => {
                let (a, b) = ((u - lo) / width, (u - hi) / width);
                log_sinh(0.5 * (a - b))
                    - std::f64::consts::LN_2
                    - log_cosh(0.5 * a)
                    - log_cosh(0.5 * b)
            }
            Bijector::Affine { scale, .. } => scale.abs().ln(),
        }
    }

    /// d/du log|dg/du|.
    pub fn grad_log_det_jacobian(&self, u: f64) -> f64 {
        match *self {
            Bijector::Identity | Bijector::Affine { .. } => 0.0,
            Bijector::Exp | Bijector::LowerBound { .. } | Bijector::UpperBound { .. } => 1.0,
            Bijector::Softplus => sigmoid(-u),
            Bijector::Sigmoid { .. } => 1.0 - 2.0 * sigmoid(u),
            Bijector::NormalCdf { .. } => -u,
            Bijector::SoftClip { lo, hi, width } => {
                -0.5 * (((u - lo) / (2.0 * width)).tanh() + ((u - hi) / (2.0 * width)).tanh())
                    / width
            }
        }
    }

    /// Short name used in messages and in the model file.
    pub fn name(&self) -> &'static str {
        match self {
            Bijector::Identity => "identity",
            Bijector::Exp => "exp",
            Bijector::Softplus => "softplus",
            Bijector::Sigmoid { .. } => "sigmoid",
            Bijector::NormalCdf { .. } => "normal_cdf",
            Bijector::SoftClip { .. } => "soft_clip",
            Bijector::Affine { .. } => "affine",
            Bijector::LowerBound { .. } => "lower_bound",
            Bijector::UpperBound { .. } => "upper_bound",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Bijector> {
        vec![
            Bijector::Identity,
            Bijector::Exp,
            Bijector::Softplus,
            Bijector::Sigmoid { lo: 1.0, hi: 3.0 },
            Bijector::NormalCdf { lo: 0.5, hi: 8.0 },
            Bijector::SoftClip {
                lo: 1.2,
                hi: 2.8,
                width: 0.5,
            },
            Bijector::Affine {
                shift: 0.5,
                scale: -2.0,
            },
            Bijector::LowerBound { lo: -1.0 },
            Bijector::UpperBound { hi: 2.0 },
        ]
    }

    #[test]
    fn inverse_undoes_forward() {
        for b in all() {
            b.validate().unwrap();
            // Phi saturates faster than the sigmoid: x itself resolves u only to ~1e-8 beyond |u| = 5
            let us: &[f64] = match b {
                Bijector::NormalCdf { .. } => &[-4.5, -1.3, 0.0, 0.4, 2.2, 4.0],
                Bijector::SoftClip { .. } => &[-1.0, 0.9, 1.3, 2.0, 2.7, 4.0],
                _ => &[-6.0, -1.3, 0.0, 0.4, 2.2, 7.0],
            };
            for &u in us {
                let x = b.forward(u);
                let back = b.inverse(x).unwrap();
                assert!(
                    (back - u).abs() < 1e-9 * (1.0 + u.abs()),
                    "{b:?}: u = {u}, back = {back}"
                );
            }
        }
    }

    /// log|g'| and its gradient against central finite differences of g and of log|g'|.
    #[test]
    fn log_det_matches_finite_differences() {
        let h = 1e-5;
        for b in all() {
            // near hi, g(u) = hi - tiny: differences of g lose the digits of g'
            let us: &[f64] = match b {
                Bijector::NormalCdf { .. } => &[-4.0, -0.7, 0.0, 0.3, 1.9, 3.0],
                // u is on x's scale: inside the support, near the bounds and beyond them
                Bijector::SoftClip { .. } => &[-1.0, 0.9, 1.3, 2.0, 2.7, 4.0],
                _ => &[-4.0, -0.7, 0.0, 0.3, 1.9, 5.0],
            };
            for &u in us {
                let fd = (b.forward(u + h) - b.forward(u - h)) / (2.0 * h);
                assert!(
                    (b.derivative(u) - fd).abs() < 1e-7 * (1.0 + fd.abs()),
                    "{b:?} g' at {u}"
                );
                assert!(
                    (b.log_det_jacobian(u) - fd.abs().ln()).abs() < 1e-7,
                    "{b:?} log|g'| at {u}"
                );
                let fd2 = (b.log_det_jacobian(u + h) - b.log_det_jacobian(u - h)) / (2.0 * h);
                assert!(
                    (b.grad_log_det_jacobian(u) - fd2).abs() < 1e-7,
                    "{b:?} d log|g'| at {u}"
                );
            }
        }
    }

    #[test]
    fn sigmoid_log_det_stays_finite_where_g_saturates() {
        let b = Bijector::Sigmoid { lo: 1.0, hi: 3.0 };
        assert_eq!(b.forward(40.0), 3.0);
        let l = b.log_det_jacobian(40.0);
        assert!(l.is_finite() && (l - (2f64.ln() - 40.0)).abs() < 1e-12);
        assert!((b.grad_log_det_jacobian(40.0) + 1.0).abs() < 1e-15);
    }

    /// The soft clip is the identity away from its bounds (within 1e-12 farther than 30 widths).
    #[test]
    fn soft_clip_is_the_identity_inside() {
        let b = Bijector::SoftClip {
            lo: 1.2,
            hi: 2.8,
            width: 0.016,
        };
        for &u in &[1.7, 2.0, 2.3] {
            assert!((b.forward(u) - u).abs() < 1e-12);
            assert!(b.log_det_jacobian(u).abs() < 1e-12);
            assert!((b.inverse(u).unwrap() - u).abs() < 1e-12);
        }
        assert!(b.forward(1.0) > 1.2 && b.forward(3.0) < 2.8);
    }

    /// Through the normal CDF a uniform prior is exactly N(0, 1) in u, also where Phi underflows.
    #[test]
    fn uniform_prior_is_standard_normal_in_u() {
        use crate::math::special::HALF_LN_2PI;
        use crate::prob::prior::Prior;
        let prior = Prior::Uniform { lo: 0.5, hi: 8.0 };
        let b = prior.default_bijector();
        assert_eq!(b, Bijector::NormalCdf { lo: 0.5, hi: 8.0 });
        for &u in &[-30.0, -5.0, -1.0, 0.0, 2.5, 30.0] {
            let lp = prior.log_prob(b.forward(u)) + b.log_det_jacobian(u);
            assert!(
                (lp - (-0.5 * u * u - HALF_LN_2PI)).abs() < 1e-12,
                "u = {u}: {lp}"
            );
        }
    }

    #[test]
    fn bad_constants_and_out_of_support_are_errors() {
        assert!(Bijector::Sigmoid { lo: 2.0, hi: 1.0 }.validate().is_err());
        assert!(
            Bijector::Affine {
                shift: 0.0,
                scale: 0.0
            }
            .validate()
            .is_err()
        );
        let e = Bijector::Exp.inverse(-1.0).unwrap_err().to_string();
        assert!(e.contains("outside") && e.contains("exp"), "{e}");
        assert!(Bijector::Sigmoid { lo: 1.0, hi: 3.0 }.inverse(3.0).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let b = Bijector::Sigmoid { lo: 1.0, hi: 3.0 };
        let s = serde_json::to_string(&b).unwrap();
        assert_eq!(s, r#"{"kind":"sigmoid","lo":1.0,"hi":3.0}"#);
        assert_eq!(serde_json::from_str::<Bijector>(&s).unwrap(), b);
    }
}
