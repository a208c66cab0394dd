//! The side-by-side table of compared runs: flattened config keys and summary figures per run,
//! shared by the compare screen and `arclight runs compare`.

use crate::format;
use crate::store::RunEntry;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Config keys (flattened) and top-level numeric summary figures (`summary.<key>`) of each run,
/// as table cells (blank where a run lacks the key).
pub fn table_rows(runs: &[&RunEntry]) -> BTreeMap<String, Vec<String>> {
    table_values(runs)
        .into_iter()
        .map(|(k, vs)| {
            let cells = vs
                .iter()
                .map(|v| v.as_ref().map(format::value).unwrap_or_default())
                .collect();
            (k, cells)
        })
        .collect()
}

/// The same keys as [`table_rows`] with the values as stored (numbers stay numbers, arrays
/// arrays), `None` where a run lacks the key: for `runs compare --json`.
pub fn table_values(runs: &[&RunEntry]) -> BTreeMap<String, Vec<Option<Value>>> {
    let flat: Vec<BTreeMap<String, Value>> = runs
        .iter()
        .map(|r| {
            let mut f = r
                .info
                .as_ref()
                .map(|i| format::flatten_values(&i.config))
                .unwrap_or_default();
            if let Some(Value::Object(s)) = &r.summary {
                for (k, v) in s {
                    if v.is_number() || v.is_string() {
                        f.insert(format!("summary.{k}"), v.clone());
                    }
                }
            }
            f.insert("status".into(), r.status_label().into());
            f
        })
        .collect();
    let keys: BTreeSet<&String> = flat.iter().flat_map(|f| f.keys()).collect();
    keys.into_iter()
        .map(|k| (k.clone(), flat.iter().map(|f| f.get(k).cloned()).collect()))
        .collect()
}

/// Whether the values of a row differ between runs (a missing value counts as different).
pub fn differs(values: &[String]) -> bool {
    values.windows(2).any(|w| w[0] != w[1])
}
