//! Reading back numbers that JSON cannot spell: serde_json writes a non-finite f64 (NaN, +-inf) as
//! `null`, and a plain `f64` field then refuses to read its own file. These read `null` as NaN.
//! Use with `#[serde(deserialize_with = "arclight_core::json_nan::f64")]` (or `vec`, `map`, `pair_map`).

use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;

fn or_nan(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

/// An `f64` written as a number or as `null` (read as NaN).
pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(or_nan(Option::<f64>::deserialize(d)?))
}

/// A `Vec<f64>` whose elements may be `null` (read as NaN).
pub fn vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(or_nan)
        .collect())
}

/// A map of `f64` values that may be `null` (read as NaN).
pub fn map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, f64>, D::Error> {
    Ok(BTreeMap::<String, Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| (k, or_nan(v)))
        .collect())
}

/// A map of `[f64; 2]` intervals whose bounds may be `null` (read as NaN).
pub fn pair_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, [f64; 2]>, D::Error> {
    Ok(BTreeMap::<String, [Option<f64>; 2]>::deserialize(d)?
        .into_iter()
        .map(|(k, [a, b])| (k, [or_nan(a), or_nan(b)]))
        .collect())
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    #[derive(Serialize, Deserialize)]
    struct S {
        #[serde(deserialize_with = "super::f64")]
        x: f64,
        #[serde(deserialize_with = "super::vec")]
        v: Vec<f64>,
        #[serde(deserialize_with = "super::map")]
        m: BTreeMap<String, f64>,
        #[serde(default, deserialize_with = "super::pair_map")]
        p: BTreeMap<String, [f64; 2]>,
    }

    /// Non-finite values written by serde_json (as null) read back as NaN; finite ones unchanged.
    #[test]
    fn non_finite_values_round_trip_as_nan() {
        let s = S {
            x: f64::NAN,
            v: vec![1.5, f64::INFINITY, -2.0],
            m: [("a".to_string(), f64::NEG_INFINITY), ("b".to_string(), 3.0)].into(),
            p: [("68".to_string(), [f64::NAN, 1.0])].into(),
        };
        let text = serde_json::to_string(&s).unwrap();
        assert!(serde_json::from_str::<BTreeMap<String, serde_json::Value>>(&text).is_ok());
        let back: S = serde_json::from_str(&text).unwrap();
        assert!(back.x.is_nan());
        assert_eq!(back.v[0], 1.5);
        assert!(back.v[1].is_nan());
        assert_eq!(back.v[2], -2.0);
        assert!(back.m["a"].is_nan());
        assert_eq!(back.m["b"], 3.0);
        assert!(back.p["68"][0].is_nan());
        assert_eq!(back.p["68"][1], 1.0);
        // A missing defaulted field still defaults.
        let back: S = serde_json::from_str(r#"{"x":1,"v":[],"m":{}}"#).unwrap();
        assert_eq!(back.x, 1.0);
        assert!(back.p.is_empty());
    }
}
