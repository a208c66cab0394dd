//! Where two JSON documents differ, key by key: how a study refuses to mix settings and how a resumed
//! fit reports settings that changed since its record.

use serde_json::Value;

/// The dotted keys at which two JSON values differ, each as `key: a vs b` (at most `max`).
pub fn json_diff(a: &Value, b: &Value, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    diff_into("", a, b, &mut out);
    out.truncate(max);
    out
}

fn diff_into(prefix: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                diff_into(
                    &p,
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{prefix}: {a} vs {b}")),
        _ => {}
    }
}
