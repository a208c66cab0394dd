//! Text formatting shared by the TUI and the `runs` tables: numbers, durations, times, and
//! flattening of nested JSON configs into `dotted.key = value` pairs.

use serde_json::Value;
use std::collections::BTreeMap;

/// A number in at most ~9 characters: 4 significant digits, scientific outside [1e-3, 1e6).
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.3e}");
    }
    if v.fract() == 0.0 && a < 1e6 {
        return format!("{}", v as i64);
    }
    let min_digits = if a < 1e5 { 1 } else { 0 };
    let digits = (3 - a.log10().floor() as i32).clamp(min_digits, 6) as usize;
    let s = format!("{v:.digits$}");
    // 4 significant digits, without trailing zeros: 0.013 rather than 0.01300
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A JSON value as a short cell: numbers via [`num`], strings bare, `-` for null, compact JSON
/// for arrays and objects.
pub fn value(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => num(f),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An optional number, blank when absent.
pub fn opt(v: Option<f64>) -> String {
    v.map(num).unwrap_or_default()
}

/// Seconds as `42s`, `3m05s`, `2h07m`, `3d04h`.
pub fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return String::new();
    }
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// An RFC 3339 UTC time as `2026-11-21 10:00` (the stored text if it does not look like one).
pub fn started(s: &str) -> String {
    match (s.get(..10), s.get(10..11), s.get(11..16)) {
        (Some(date), Some("T"), Some(time)) => format!("{date} {time}"),
        _ => s.to_string(),
    }
}

/// Flatten nested objects into dotted keys; arrays and scalars become cells via [`value`].
pub fn flatten(v: &Value) -> BTreeMap<String, String> {
    flatten_values(v)
        .into_iter()
        .map(|(k, v)| (k, value(&v)))
        .collect()
}

/// Flatten nested objects into dotted keys, keeping the leaves (numbers, arrays, ...) as JSON.
pub fn flatten_values(v: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    flatten_into(v, "", &mut out);
    out
}

fn flatten_into(v: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(child, &key, out);
            }
        }
        other => {
            if !prefix.is_empty() {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
}

/// Cut `s` to at most `width` characters, marking the cut with `…`.
pub fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_are_short() {
        assert_eq!(num(-1234.5678), "-1234.6");
        assert_eq!(num(-0.013), "-0.013");
        assert_eq!(num(-1159.04), "-1159");
        assert_eq!(num(0.012346), "0.01235");
        assert_eq!(num(1e-5), "1.000e-5");
        assert_eq!(num(30.0), "30");
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(started("2026-11-21T10:00:00Z"), "2026-11-21 10:00");
        assert_eq!(started("2026-11-21T10:0é"), "2026-11-21T10:0é");
    }

    #[test]
    fn flatten_nests_with_dots() {
        let f = flatten(&json!({"a": 1, "b": {"c": [1, 2], "d": null}}));
        assert_eq!(f["a"], "1");
        assert_eq!(f["b.c"], "[1,2]");
        assert_eq!(f["b.d"], "-");
    }
}
