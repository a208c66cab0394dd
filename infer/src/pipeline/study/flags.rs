//! When a study system is flagged instead of counted as silently done: R-hat >= 1.01 (Vehtari et al.
//! 2021; >= 1.05 for the VAE latent's components, a nuisance for the lens), ESS < 400 (bulk or tail, same source), more than 1% divergent HMC transitions, a MAP
//! chi^2/dof farther from 1 than 5 standard deviations of chi^2/dof for its degrees of freedom
//! (5 sqrt(2 / dof): +-0.089 on the 80x80 GIGA-Lens grid, 6378 dof), or a failed stage. Chains of a
//! lens or placement parameter parted in two groups (`diagnostics::chain_split`) get a flag of their
//! own naming where, since more draws will not join them.

use super::result::{Flag, StageStatus, SystemResult};

/// Largest R-hat that passes.
pub const RHAT_MAX: f64 = 1.01;
/// Largest R-hat of a VAE latent component that passes (the fit's `retry.latent_rhat`).
pub const LATENT_RHAT_MAX: f64 = 1.05;
/// Smallest bulk and tail ESS that pass.
pub const ESS_MIN: f64 = 400.0;
/// Largest fraction of divergent transitions that passes.
pub const DIVERGENT_MAX: f64 = 0.01;
pub use crate::pipeline::fit::{CHI2_SIGMAS, chi2_tolerance};

/// The thresholds, as stored in summaries.
pub fn thresholds() -> serde_json::Value {
    serde_json::json!({
        "rhat_max": RHAT_MAX,
        "latent_rhat_max": LATENT_RHAT_MAX,
        "ess_min": ESS_MIN,
        "divergent_fraction_max": DIVERGENT_MAX,
        "chains_apart_sd": crate::inference::diagnostics::SPLIT_GAP,
        "chi2_dof": format!("|chi2/dof - 1| <= {CHI2_SIGMAS} sqrt(2/dof)"),
        "stage": "every requested stage ended",
    })
}

fn flag(check: &str, message: String) -> Flag {
    Flag {
        check: check.into(),
        message,
    }
}

/// The flags of a system (`hmc`: whether HMC was requested, so R-hat and ESS are expected).
pub fn check(r: &SystemResult, hmc: bool) -> Vec<Flag> {
    let mut out = Vec::new();
    for (name, s) in &r.stages {
        if s.status == StageStatus::Failed {
            let e = s.error.as_deref().unwrap_or("");
            out.push(flag(
                "stage",
                format!("stage {name} failed: {}", e.lines().next().unwrap_or("")),
            ));
        }
    }
    let hmc_ok = r
        .stages
        .get("hmc")
        .is_some_and(|s| s.status == StageStatus::Ok);
    if hmc && hmc_ok {
        // the worst parameter names itself
        let worst = |f: &dyn Fn(&super::result::ParamResult) -> Option<f64>, max: bool| {
            r.params
                .iter()
                .filter_map(|(k, p)| f(p).map(|v| (k.as_str(), v)))
                .fold(None::<(&str, f64)>, |acc, (k, v)| match acc {
                    Some((_, a)) if (max && a >= v) || (!max && a <= v) => acc,
                    _ => Some((k, v)),
                })
        };
        let rhat = |latent: bool| {
            move |p: &super::result::ParamResult| p.rhat.filter(|_| p.latent == latent)
        };
        let (lens, latent) = (worst(&rhat(false), true), worst(&rhat(true), true));
        for (w, bar, which) in [(lens, RHAT_MAX, ""), (latent, LATENT_RHAT_MAX, "latent ")] {
            if let Some((k, v)) = w
                && v >= bar
            {
                out.push(flag("rhat", format!("{which}R-hat {v:.3} >= {bar} ({k})")));
            }
        }
        // chains parted in two groups: say where, as more draws will not join them
        let apart = r
            .params
            .iter()
            .filter(|(_, p)| !p.latent)
            .filter_map(|(k, p)| p.split.map(|c| (k, c)))
            .max_by(|a, b| a.1.gap_sd.total_cmp(&b.1.gap_sd));
        if let Some((k, c)) = apart {
            out.push(flag("modes", format!("chains apart in {k}: {c}")));
        }
        if lens.is_none() && latent.is_none() {
            if r.n_chains.unwrap_or(0) < 2 {
                out.push(flag(
                    "diagnostics",
                    "R-hat unavailable (needs at least 2 chains)".into(),
                ));
            } else {
                out.push(flag("diagnostics", "R-hat unavailable".into()));
            }
        }
        let bulk = worst(&|p| p.ess_bulk, false);
        let tail = worst(&|p| p.ess_tail, false);
        match (bulk, tail) {
            (None, None) => out.push(flag("diagnostics", "ESS unavailable".into())),
            (b, t) => {
                for (kind, w) in [("bulk", b), ("tail", t)] {
                    if let Some((k, v)) = w
                        && v < ESS_MIN
                    {
                        out.push(flag("ess", format!("{kind} ESS {v:.0} < {ESS_MIN} ({k})")));
                    }
                }
            }
        }
        if let (Some(d), Some(n)) = (r.divergences, r.transitions)
            && n > 0
            && d as f64 > DIVERGENT_MAX * n as f64
        {
            out.push(flag(
                "divergences",
                format!(
                    "{:.2}% divergent transitions ({d} of {n}) > {}%",
                    100.0 * d as f64 / n as f64,
                    100.0 * DIVERGENT_MAX
                ),
            ));
        }
    }
    if let (Some(c), Some(dof)) = (r.chi2_dof, r.dof) {
        let tol = chi2_tolerance(dof);
        // NaN (no finite chi^2) is outside too
        let within = (c - 1.0).abs() <= tol;
        if !within {
            out.push(flag(
                "chi2",
                format!(
                    "MAP chi^2/dof {c:.3} outside 1 +- {tol:.3} ({CHI2_SIGMAS} sigma for {dof} dof)"
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::result::{ParamResult, StageOutcome};
    use super::*;
    use std::collections::BTreeMap;

    fn system() -> SystemResult {
        let p = |rhat: f64, ess: f64| ParamResult {
            truth_drawn: None,
            truth: Some(1.0),
            mean: 1.0,
            sd: 0.1,
            median: Some(1.0),
            intervals: BTreeMap::new(),
            z: Some(0.0),
            rank: Some(50),
            rhat: Some(rhat),
            ess_bulk: Some(ess),
            ess_tail: Some(ess + 100.0),
            latent: false,
            split: None,
        };
        SystemResult {
            format: 1,
            study_id: "x".into(),
            index: 3,
            seed: 3,
            stages: ["mock", "map", "vi", "hmc", "summary"]
                .iter()
                .map(|s| (s.to_string(), StageOutcome::ok(Some(1.0))))
                .collect(),
            chi2_dof: Some(1.02),
            dof: Some(6378),
            rhat_max: Some(1.005),
            ess_bulk_min: Some(900.0),
            ess_tail_min: Some(1000.0),
            divergences: Some(10),
            transitions: Some(1000),
            n_chains: Some(4),
            hmc_rounds: Some(1),
            hmc_extended: None,
            rank_draws: Some(99),
            params: [
                ("a".to_string(), p(1.001, 900.0)),
                ("b".to_string(), p(1.005, 1200.0)),
            ]
            .into(),
            flags: Vec::new(),
            wall_s: 1.0,
            threads: 1,
            source_residual: None,
        }
    }

    #[test]
    fn chains_apart_get_their_own_flag_naming_the_parameter() {
        let mut r = system();
        let split = crate::inference::diagnostics::ChainSplit {
            n_low: 6,
            low: 1.33,
            n_high: 2,
            high: 2.79,
            gap_sd: 10.2,
        };
        let b = r.params.get_mut("b").unwrap();
        b.rhat = Some(1.69);
        b.split = Some(split);
        let f = check(&r, true);
        let m: Vec<&str> = f.iter().map(|f| f.message.as_str()).collect();
        assert!(
            m.contains(&"chains apart in b: 6 chains at 1.33, 2 at 2.79 (10 sd apart)"),
            "{m:?}"
        );
        // a latent component's split is left to the latent R-hat flag
        let b = r.params.get_mut("b").unwrap();
        b.latent = true;
        assert!(check(&r, true).iter().all(|f| f.check != "modes"));
    }

    #[test]
    fn a_healthy_system_passes_and_each_check_trips_on_its_own() {
        let ok = system();
        assert!(check(&ok, true).is_empty(), "{:?}", check(&ok, true));
        let mut r = ok.clone();
        r.params.get_mut("b").unwrap().rhat = Some(1.01);
        let f = check(&r, true);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].message, "R-hat 1.010 >= 1.01 (b)");
        let mut r = ok.clone();
        r.params.get_mut("a").unwrap().ess_tail = Some(399.0);
        assert_eq!(check(&r, true)[0].message, "tail ESS 399 < 400 (a)");
        // a latent component passes below 1.05 and is named as latent above it
        let mut r = ok.clone();
        r.params.get_mut("b").unwrap().latent = true;
        r.params.get_mut("b").unwrap().rhat = Some(1.04);
        assert!(check(&r, true).is_empty(), "{:?}", check(&r, true));
        r.params.get_mut("b").unwrap().rhat = Some(1.05);
        assert_eq!(check(&r, true)[0].message, "latent R-hat 1.050 >= 1.05 (b)");
        // exactly 1% passes, one more transition does not
        let mut r = ok.clone();
        r.divergences = Some(11);
        assert_eq!(
            check(&r, true)[0].message,
            "1.10% divergent transitions (11 of 1000) > 1%"
        );
        // 5 sqrt(2 / 6378) = 0.0885
        let mut r = ok.clone();
        r.chi2_dof = Some(1.09);
        assert_eq!(check(&r, true)[0].check, "chi2");
        r.chi2_dof = Some(f64::NAN);
        assert_eq!(check(&r, true)[0].check, "chi2");
        let mut r = ok.clone();
        r.stages.insert(
            "hmc".into(),
            StageOutcome::failed("step size collapsed\nmore".into(), None),
        );
        let f = check(&r, true);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].message, "stage hmc failed: step size collapsed");
        // HMC not requested: no R-hat expected
        let mut r = ok;
        for p in r.params.values_mut() {
            p.rhat = None;
            p.ess_bulk = None;
            p.ess_tail = None;
        }
        assert!(check(&r, false).is_empty());
        assert_eq!(check(&r, true)[0].check, "diagnostics");
    }
}
