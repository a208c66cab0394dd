//! Axis ticks: "nice" round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) and
//! their labels with a common number of decimals.

/// Order a range and give it positive, finite width: a zero-width range [v, v] (a parameter
/// that never moved) becomes v ± 1% of |v|, or [-1, 1] when v = 0; non-finite ends are
/// replaced by the finite one, or [0, 1] when neither is finite.
pub fn safe_range(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return match (lo.is_finite(), hi.is_finite()) {
            (true, false) => safe_range(lo, lo),
            (false, true) => safe_range(hi, hi),
            _ => (0.0, 1.0),
        };
    }
    let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
    let scale = lo.abs().max(hi.abs());
    if hi - lo > scale * 1e-12 && hi - lo > f64::MIN_POSITIVE * 1e3 {
        return (lo, hi);
    }
    let pad = if scale > 0.0 { scale * 1e-2 } else { 1.0 };
    (lo - pad, hi + pad)
}

/// The nice tick step for [lo, hi] giving at most `max_ticks` ticks (at least 2 are aimed
/// for): the smallest of 1, 2, 2.5, 5, 10 times a power of ten that is >= range / (max - 1).
pub fn tick_step(lo: f64, hi: f64, max_ticks: usize) -> f64 {
    let (lo, hi) = safe_range(lo, hi);
    let raw = (hi - lo) / (max_ticks.max(2) - 1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let residual = raw / mag;
    let mult = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|&m| m >= residual * (1.0 - 1e-9))
        .unwrap_or(10.0);
    mult * mag
}

/// Round tick values inside [lo, hi] (ends included up to rounding), at most `max_ticks` of
/// them. E.g. [0, 1] with 6 -> 0, 0.2, ..., 1; [1.49, 1.53] with 6 -> 1.49, 1.50, ..., 1.53.
pub fn nice_ticks(lo: f64, hi: f64, max_ticks: usize) -> Vec<f64> {
    let (lo, hi) = safe_range(lo, hi);
    let step = tick_step(lo, hi, max_ticks);
    let eps = 1e-9;
    let k0 = (lo / step - eps).ceil() as i64;
    let k1 = (hi / step + eps).floor() as i64;
    (k0..=k1)
        .map(|k| {
            let v = k as f64 * step;
            // Snap to the decimal grid of the step to avoid 0.30000000000000004 and -0.
            let d = decimals_for_step(step) as i32;
            let snapped = if d <= 15 {
                (v * 10f64.powi(d)).round() / 10f64.powi(d)
            } else {
                v
            };
            if snapped == 0.0 { 0.0 } else { snapped }
        })
        .collect()
}

/// Number of decimals needed to write multiples of `step` exactly (0 for steps >= 1 that are
/// whole numbers), capped at 12.
pub fn decimals_for_step(step: f64) -> usize {
    let step = step.abs();
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    (0..=12)
        .find(|&d| {
            let s = step * 10f64.powi(d as i32);
            (s - s.round()).abs() < 1e-6 * s.max(1.0)
        })
        .unwrap_or(12)
}

/// Labels for ticks spaced by `step`: fixed-point with the decimals the step needs, or
/// scientific notation (`1.5e-5`) when the values are very large or very small.
pub fn tick_labels(ticks: &[f64], step: f64) -> Vec<String> {
    let biggest = ticks.iter().fold(0f64, |a, &v| a.max(v.abs()));
    let scientific =
        biggest >= 1e5 || (biggest > 0.0 && biggest < 1e-3) || decimals_for_step(step) > 5;
    ticks
        .iter()
        .map(|&v| {
            if v == 0.0 {
                "0".to_string()
            } else if scientific {
                let exp = biggest.log10().floor() as i32;
                let mant_dec = decimals_for_step(step / 10f64.powi(exp)).min(4);
                let mant = v / 10f64.powi(exp);
                format!("{mant:.mant_dec$}e{exp}")
            } else {
                let d = decimals_for_step(step);
                let s = format!("{v:.d$}");
                if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
                    s[1..].to_string()
                } else {
                    s
                }
            }
        })
        .collect()
}

/// Ticks and their labels in one call.
pub fn ticks_with_labels(lo: f64, hi: f64, max_ticks: usize) -> Vec<(f64, String)> {
    let step = tick_step(lo, hi, max_ticks);
    let t = nice_ticks(lo, hi, max_ticks);
    let labels = tick_labels(&t, step);
    t.into_iter().zip(labels).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(lo: f64, hi: f64, n: usize) -> Vec<String> {
        ticks_with_labels(lo, hi, n)
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    #[test]
    fn unit_interval() {
        assert_eq!(nice_ticks(0.0, 1.0, 6), vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(
            labels(0.0, 1.0, 6),
            ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]
        );
    }

    #[test]
    fn narrow_interval_around_einstein_radius() {
        assert_eq!(nice_ticks(1.49, 1.53, 6), vec![1.49, 1.5, 1.51, 1.52, 1.53]);
        assert_eq!(
            labels(1.49, 1.53, 6),
            ["1.49", "1.50", "1.51", "1.52", "1.53"]
        );
        assert_eq!(labels(1.492, 1.528, 3), ["1.50", "1.52"]);
    }

    #[test]
    fn other_ranges() {
        assert_eq!(
            nice_ticks(-3.0, 3.0, 7),
            vec![-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(labels(-5.0, 5.0, 5), ["-5.0", "-2.5", "0", "2.5", "5.0"]);
        assert_eq!(labels(0.0, 360.0, 5), ["0", "100", "200", "300"]);
        assert_eq!(labels(0.0, 2.0e-5, 3), ["0", "1e-5", "2e-5"]);
        assert_eq!(labels(0.0, 3.0e6, 4), ["0", "1e6", "2e6", "3e6"]);
        // Every result stays within the limit and inside the range.
        for &(lo, hi) in &[
            (0.013, 0.0171),
            (-7.3, 112.0),
            (1e3, 1e3 + 1.0),
            (-0.2, -0.19),
        ] {
            for n in 3..8 {
                let t = nice_ticks(lo, hi, n);
                assert!(!t.is_empty() && t.len() <= n, "{lo} {hi} {n}: {t:?}");
                assert!(t.iter().all(|&v| v >= lo - 1e-9 && v <= hi + 1e-9));
            }
        }
    }

    #[test]
    fn degenerate_ranges_do_not_panic() {
        let (lo, hi) = safe_range(2.0, 2.0);
        assert!(lo < 2.0 && hi > 2.0);
        assert!(!nice_ticks(2.0, 2.0, 5).is_empty());
        assert_eq!(safe_range(f64::NAN, f64::NAN), (0.0, 1.0));
        assert!(!nice_ticks(0.0, 0.0, 5).is_empty());
        assert_eq!(safe_range(3.0, 1.0), (1.0, 3.0));
    }
}
