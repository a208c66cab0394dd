//! Ellipticity components (e1, e2) and their relation to the axis ratio q and position angle phi.
//!
//! (e1, e2) = (1-q)/(1+q) (cos 2phi, sin 2phi)   (GIGA-Lens eq. 5, lenstronomy's convention),
//! phi measured counter-clockwise from the +x axis to the major axis.
//!
//! The tensor code of this crate never forms q or phi: every profile is written directly in
//! terms of the complex ellipticity `eps = e1 + i e2`, whose modulus only enters through
//! `|eps|^2 = e1^2 + e2^2`. This keeps values and gradients smooth at the round limit q = 1
//! (e1 = e2 = 0), where `atan2(e2, e1)` and `sqrt(e1^2 + e2^2)` have undefined derivatives.

/// Axis ratio and position angle (radians) from (e1, e2), as lenstronomy's
/// `param_util.ellipticity2phi_q` (which caps |eps| at 0.9999).
pub fn q_phi_from_e(e1: f64, e2: f64) -> (f64, f64) {
    let phi = e2.atan2(e1) / 2.0;
    let c = (e1 * e1 + e2 * e2).sqrt().min(0.9999);
    ((1.0 - c) / (1.0 + c), phi)
}

/// (e1, e2) from axis ratio and position angle (radians).
pub fn e_from_q_phi(q: f64, phi: f64) -> (f64, f64) {
    let f = (1.0 - q) / (1.0 + q);
    (f * (2.0 * phi).cos(), f * (2.0 * phi).sin())
}

/// Rotate (x, y) by -phi into the frame whose x axis is the major axis (GIGA-Lens eq. 2).
pub fn to_major_axis_frame(x: f64, y: f64, phi: f64) -> (f64, f64) {
    let (s, c) = phi.sin_cos();
    (c * x + s * y, -s * x + c * y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for &(q, phi) in &[(0.2, 0.3), (0.5, -1.2), (0.9, 1.5), (0.7, 0.0)] {
            let (e1, e2) = e_from_q_phi(q, phi);
            let (q2, phi2) = q_phi_from_e(e1, e2);
            assert!((q - q2).abs() < 1e-12);
            assert!((phi - phi2).abs() < 1e-12);
        }
    }
}
