//! The one-line "how is it going" figure per run kind, shared by the list view and
//! `arclight runs list`.
//!
//! - train: best validation ELBO and its epoch (from `summary.json`, or while running from the
//!   tailed `"epoch"` lines: the `val_elbo` at the reported `best_epoch`);
//! - fit: the worst R-hat and smallest ESS of the posterior (Gelman-Rubin / bulk ESS);
//! - study: the bias per parameter;
//! - failed runs: the error message; flagged runs (`run.json` `flags`): the first flag;
//!   anything else: the progress stage.

use super::run::RunEntry;
use crate::format::num;
use arclight_core::record::{RunKind, Status};
use serde_json::Value;

/// Best validation ELBO and its epoch, from the summary or the live metrics (or what the
/// metrics showed before their digest was dropped from memory).
pub fn best_val_elbo(run: &RunEntry) -> Option<(f64, Option<f64>)> {
    if let Some(v) = run.summary_f64("best_val_elbo") {
        return Some((v, run.summary_f64("best_epoch")));
    }
    match run.metrics() {
        Some(m) => m.best_val_elbo(),
        None => run.metrics_best,
    }
}

/// Headline text of a run.
pub fn headline(run: &RunEntry) -> String {
    let Some(info) = &run.info else {
        return run.info_error.clone().unwrap_or_default();
    };
    if run.status == Some(Status::Failed)
        && let Some(e) = &info.error
    {
        return format!("error: {}", e.lines().next().unwrap_or(""));
    }
    // a flagged run says why before anything else
    if let Some(first) = info.flags.first() {
        let more = info.flags.len() - 1;
        return if more > 0 {
            format!("flagged: {first} (+{more} more)")
        } else {
            format!("flagged: {first}")
        };
    }
    let text = match info.kind {
        RunKind::Train => best_val_elbo(run).map(|(v, e)| match e {
            Some(e) => format!("val ELBO {} @ep {}", num(v), num(e)),
            None => format!("val ELBO {}", num(v)),
        }),
        RunKind::Fit => {
            let r = run.summary_f64("rhat_max");
            let e = run.summary_f64("ess_min");
            (r.is_some() || e.is_some()).then(|| {
                format!(
                    "R-hat {}  ESS {}",
                    r.map(num).unwrap_or_else(|| "-".into()),
                    e.map(num).unwrap_or_else(|| "-".into())
                )
            })
        }
        RunKind::Study => run.summary_at("bias").and_then(Value::as_object).map(|m| {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k} {}", crate::format::value(v)))
                .collect();
            format!("bias {}", parts.join(", "))
        }),
        RunKind::Prepare | RunKind::Eval | RunKind::Other => None,
    };
    text.unwrap_or_else(|| info.progress.stage.clone())
}
