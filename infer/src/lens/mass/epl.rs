//! Elliptical power-law mass profile (EPL / SPLE): deflection by the exact series of
//! Tessore & Metcalf (2015), as used by lenstronomy's `EPL` and GIGA-Lens (GIGA-Lens Sec. 2.1.1,
//! eq. 1; Chianese et al. 2020 eqs. 11-12).
//!
//! Convergence, in the frame rotated by the position angle phi (major axis along x):
//!
//!   kappa = (3 - gamma)/2 * (theta_e / sqrt(q x^2 + y^2/q))^(gamma - 1)
//!         = (2 - t)/2 * (b / sqrt(q^2 x^2 + y^2))^t,      t = gamma - 1,  b = theta_e sqrt(q).
//!
//! Tessore & Metcalf give, with zeta = q x + i y, R = |zeta|, varphi = arg zeta, f = (1-q)/(1+q):
//!
//!   alpha' = 2 b / (1+q) * (b/R)^(t-1) * Omega,
//!   Omega  = sum_n a_n (-f)^n e^{i(2n+1) varphi},   a_0 = 1,  a_n = a_{n-1} (2n - 2 + t)/(2n + 2 - t).
//!
//! Rotating back and writing everything with the complex ellipticity eps = e1 + i e2 =
//! f e^{2 i phi} (derivation in `lens/README.md`) removes q and phi altogether:
//!
//!   v = z - eps conj(z),           z = (x - center_x) + i (y - center_y),
//!   alpha = theta_e^t (1 - |eps|^2)^(t/2) |v|^(-t) v sum_n a_n s^n,   s = -conj(eps) v / conj(v).
//!
//! Only |eps|^2 appears, so values and gradients are smooth at q = 1 (no atan2, no sqrt of
//! e1^2 + e2^2), and |v| is evaluated as sqrt(|v|^2 + EPS2) with EPS2 = 1e-20 arcsec^2, which is
//! below the resolution of any pixel position (the nearest ray is ~1e-2 arcsec away) yet makes
//! alpha = 0 with finite gradients when a ray falls exactly on the centre.
//!
//! Truncation: for 1 < gamma <= 3 every a_n <= 1 and |s| = |eps| = f, so stopping after N terms
//! leaves at most f^(N+1)/(1-f) (absolute, on the sum, whose leading term has modulus 1). The
//! number of terms is chosen per call from the largest |eps| of the batch (the smallest q) so
//! that this bound is below `SERIES_TOLERANCE` = 1e-7; q = 0.2 needs 42 terms, q = 0.8 needs 7.
//! Valid for |eps| < 1 (q > 0) and 1 < gamma < 3.

use burn::tensor::Tensor;

use crate::lens::col;

/// Absolute truncation tolerance of the hypergeometric series.
pub const SERIES_TOLERANCE: f64 = 1e-7;
/// Fewest terms ever used (cheap, and keeps the q ~ 1 case far below the tolerance).
pub const MIN_TERMS: usize = 6;
/// Most terms ever used (reached only for q < 0.02).
pub const MAX_TERMS: usize = 400;
/// Squared softening of |v| at the lens centre, arcsec^2.
pub const EPS2: f64 = 1e-20;

/// Number of series terms (beyond the leading one) keeping the truncation bound
/// `f^(N+1)/(1-f)` below `tol`, for ellipticity modulus `f = |eps| = (1-q)/(1+q)`.
pub fn series_terms(f: f64, tol: f64) -> usize {
    if !(f > 0.0) {
        return MIN_TERMS;
    }
    if f >= 1.0 || !f.is_finite() {
        return MAX_TERMS;
    }
    let n = ((tol * (1.0 - f)).ln() / f.ln()).ceil() as i64 - 1;
    (n.max(MIN_TERMS as i64) as usize).min(MAX_TERMS)
}

/// A batch of EPL lenses; every field is a `[B]` tensor (lenstronomy's `EPL` parameters).
#[derive(Clone, Debug)]
pub struct Epl {
    /// Einstein radius theta_E (arcsec).
    pub theta_e: Tensor<1>,
    /// Power-law slope gamma (2 = isothermal).
    pub gamma: Tensor<1>,
    /// Ellipticity component e1.
    pub e1: Tensor<1>,
    /// Ellipticity component e2.
    pub e2: Tensor<1>,
    /// Lens centre x (arcsec).
    pub center_x: Tensor<1>,
    /// Lens centre y (arcsec).
    pub center_y: Tensor<1>,
}

impl Epl {
    /// The singular isothermal ellipsoid as the gamma = 2 special case (SIS when e1 = e2 = 0).
    pub fn sie(
        theta_e: Tensor<1>,
        e1: Tensor<1>,
        e2: Tensor<1>,
        center_x: Tensor<1>,
        center_y: Tensor<1>,
    ) -> Self {
        let gamma = theta_e.ones_like().mul_scalar(2.0);
        Self {
            theta_e,
            gamma,
            e1,
            e2,
            center_x,
            center_y,
        }
    }

    /// Largest ellipticity modulus |eps| in the batch (host read of a `[B]` tensor).
    pub fn max_ellipticity(&self) -> f64 {
        let c2 = self.e1.clone().powi_scalar(2) + self.e2.clone().powi_scalar(2);
        c2.inner()
            .into_data()
            .iter::<f64>()
            .fold(0.0f64, |m, v| m.max(v))
            .sqrt()
    }

    /// Deflection (alpha_x, alpha_y) at ray positions `x`, `y` (`[1, N]` or `[B, N]`), each
    /// `[B, N]`; the number of series terms follows from the batch's largest |eps|.
    pub fn deflection(&self, x: &Tensor<2>, y: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let n = series_terms(self.max_ellipticity(), SERIES_TOLERANCE);
        self.deflection_with_terms(x, y, n)
    }

    /// Deflection with an explicit number of series terms `n_terms` (beyond the leading one).
    pub fn deflection_with_terms(
        &self,
        x: &Tensor<2>,
        y: &Tensor<2>,
        n_terms: usize,
    ) -> (Tensor<2>, Tensor<2>) {
        let e1 = col(&self.e1);
        let e2 = col(&self.e2);
        let t = col(&self.gamma).sub_scalar(1.0);
        let dx = x.clone() - col(&self.center_x);
        let dy = y.clone() - col(&self.center_y);
        // v = z - eps conj(z)
        let v_re = dx.clone() * (e1.clone().neg().add_scalar(1.0)) - dy.clone() * e2.clone();
        let v_im = dy * (e1.clone().add_scalar(1.0)) - dx * e2.clone();
        let r2 = v_re.clone().powi_scalar(2) + v_im.clone().powi_scalar(2);
        let r2 = r2.add_scalar(EPS2);
        let inv_r = r2.clone().sqrt().recip();
        let u_re = v_re.clone() * inv_r.clone();
        let u_im = v_im.clone() * inv_r;
        // u^2 and s = -conj(eps) u^2
        let w_re = u_re.clone().powi_scalar(2) - u_im.clone().powi_scalar(2);
        let w_im = (u_re * u_im).mul_scalar(2.0);
        let s_re = (e1.clone() * w_re.clone() + e2.clone() * w_im.clone()).neg();
        let s_im = e2.clone() * w_re - e1.clone() * w_im;
        // Horner: S = 1 + r_1 s (1 + r_2 s (1 + ... (1 + r_N s)))
        let mut acc_re: Option<Tensor<2>> = None;
        let mut acc_im: Option<Tensor<2>> = None;
        for n in (1..=n_terms).rev() {
            let nf = n as f64;
            // r_n = (2n - 2 + t) / (2n + 2 - t), a [B, 1] tensor
            let r_n =
                t.clone().add_scalar(2.0 * nf - 2.0) / t.clone().neg().add_scalar(2.0 * nf + 2.0);
            let (p_re, p_im) = match (acc_re.take(), acc_im.take()) {
                (None, None) => (s_re.clone(), s_im.clone()),
                (Some(a_re), Some(a_im)) => {
                    // s * (1 + acc)
                    let b_re = a_re.add_scalar(1.0);
                    (
                        s_re.clone() * b_re.clone() - s_im.clone() * a_im.clone(),
                        s_re.clone() * a_im + s_im.clone() * b_re,
                    )
                }
                _ => unreachable!(),
            };
            acc_re = Some(p_re * r_n.clone());
            acc_im = Some(p_im * r_n);
        }
        let (sum_re, sum_im) = match (acc_re, acc_im) {
            (Some(a), Some(b)) => (a.add_scalar(1.0), b),
            _ => (v_re.ones_like(), v_re.zeros_like()),
        };
        // prefactor theta_e^t (1 - |eps|^2)^(t/2) |v|^(-t), as one exp of a sum of logs
        let one_minus_c2 = (e1.clone().powi_scalar(2) + e2.clone().powi_scalar(2))
            .neg()
            .add_scalar(1.0);
        let log_pref = t.clone() * (col(&self.theta_e).log() + one_minus_c2.log().mul_scalar(0.5));
        let pref = (log_pref - t * r2.log().mul_scalar(0.5)).exp();
        // alpha = pref * v * S
        let a_re = (v_re.clone() * sum_re.clone() - v_im.clone() * sum_im.clone()) * pref.clone();
        let a_im = (v_re * sum_im + v_im * sum_re) * pref;
        (a_re, a_im)
    }
}
