//! Closed-form singular isothermal ellipsoid (SIE) deflection, an independent reference for the
//! EPL series at gamma = 2 (the tensor SIE is `Epl::sie`, the gradient-safe special case).
//!
//! In the major-axis frame the lenstronomy SIE has kappa = b / (2 sqrt(q^2 x^2 + y^2)) with
//! b = theta_e sqrt(q), and (Kormann et al. 1994; Keeton 2001, s = 0)
//!
//!   alpha_x' = b / sqrt(1-q^2) * atan ( sqrt(1-q^2) x / psi ),
//!   alpha_y' = b / sqrt(1-q^2) * atanh( sqrt(1-q^2) y / psi ),    psi = sqrt(q^2 x^2 + y^2),
//!
//! rotated back by +phi. For q -> 1 it tends to the SIS, alpha = theta_e (x, y)/r.

use crate::lens::ellipticity::{q_phi_from_e, to_major_axis_frame};

/// SIE deflection at one point, in f64, from lenstronomy-style parameters.
pub fn sie_deflection(
    x: f64,
    y: f64,
    theta_e: f64,
    e1: f64,
    e2: f64,
    center_x: f64,
    center_y: f64,
) -> (f64, f64) {
    let (q, phi) = q_phi_from_e(e1, e2);
    let (xp, yp) = to_major_axis_frame(x - center_x, y - center_y, phi);
    let b = theta_e * q.sqrt();
    let psi = (q * q * xp * xp + yp * yp).sqrt();
    let s = (1.0 - q * q).sqrt();
    let (ax, ay) = if s < 1e-8 {
        let r = (xp * xp + yp * yp).sqrt();
        (b * xp / r, b * yp / r)
    } else {
        (
            b / s * (s * xp / psi).atan(),
            b / s * (s * yp / psi).atanh(),
        )
    };
    let (sn, cs) = phi.sin_cos();
    (cs * ax - sn * ay, sn * ax + cs * ay)
}
