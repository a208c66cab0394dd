//! Periodic parameters (a position angle has period pi, a multipole's phi_m 2 pi / m): values that
//! differ by a whole number of periods describe the same lens, so a truth is compared with a
//! posterior through its equivalent nearest the posterior.

/// The value `value + k period` (k an integer) nearest `centre`; `value` itself without a period or
/// when either number is not finite.
pub fn nearest_equivalent(value: f64, centre: f64, period: Option<f64>) -> f64 {
    match period {
        Some(p) if p > 0.0 && p.is_finite() && value.is_finite() && centre.is_finite() => {
            value + p * ((centre - value) / p).round()
        }
        _ => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// Real-galaxy study system 10: position angle truth -2.32 with the posterior at 0.83 is the same
    /// ellipse as 0.82; a value already nearest stays, and no period changes nothing.
    #[test]
    fn equivalent_nearest_the_posterior() {
        let t = -2.319581053388179;
        assert!((nearest_equivalent(t, 0.83, Some(PI)) - (t + PI)).abs() < 1e-15);
        assert_eq!(nearest_equivalent(t, -2.0, Some(PI)), t);
        assert_eq!(nearest_equivalent(t, 0.83, None), t);
        assert!(
            (nearest_equivalent(0.1, 0.1 - 5.0 * PI, Some(PI)) - (0.1 - 5.0 * PI)).abs() < 1e-12
        );
        // a quadrupole's phi_m (period pi / 2)
        assert!((nearest_equivalent(1.5, 0.0, Some(PI / 2.0)) - (1.5 - PI / 2.0)).abs() < 1e-15);
        assert!(nearest_equivalent(f64::NAN, 0.0, Some(PI)).is_nan());
        assert_eq!(nearest_equivalent(1.0, f64::NAN, Some(PI)), 1.0);
    }
}
