//! When an HMC round counts as converged (split R-hat, bulk and tail ESS, divergences against their
//! bars; latent parameters by their own R-hat bar), and how far a round short only of draws is continued:
//! R-hat - 1 ~ 1/n and ESS ~ n give the draws it still needs.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use super::storage::HmcDraws;
use crate::inference::diagnostics::ParamDiagnostics;

/// When a round counts as converged, and how many rounds to run at most.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryOptions {
    /// Rounds at most (3; 1 samples once, as GIGA-Lens does).
    pub max_rounds: usize,
    /// Split R-hat every parameter must stay below (1.01, Vehtari et al. 2021).
    pub rhat: f64,
    /// Split R-hat bar of the parameters the caller marks as latent (1.05): the VAE source's z, a
    /// nuisance for the lens whose 64 components need not all pass 1.01 for the lens to have.
    pub latent_rhat: f64,
    /// Bulk and tail ESS every parameter must reach (400: 100 per chain of 4 in Vehtari et al.).
    pub ess: f64,
    /// Largest fraction of divergent transitions (0.01).
    pub max_divergent: f64,
    /// Burn-in iterations of a later round, all adapting the step size (100).
    pub n_burn: usize,
    /// Mean trajectory length (whitened units) a later round keeps at least (2, about a third of a unit
    /// Gaussian's period): eps L with a fixed L, T / 2 with ChEES.
    pub trajectory: f64,
    /// Most mean leapfrog steps of a later round, as a multiple of `n_leapfrog` (4).
    pub max_leapfrog_factor: usize,
    /// Most draws per chain a round may add by continuing its chains, as a multiple of `n_samples`
    /// (3; 0: never). Absent from records written before the option, which never extended.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub extend: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            max_rounds: 3,
            rhat: 1.01,
            latent_rhat: 1.05,
            ess: 400.0,
            max_divergent: 0.01,
            n_burn: 100,
            trajectory: 2.0,
            max_leapfrog_factor: 4,
            extend: 3.0,
        }
    }
}

impl RetryOptions {
    /// A single round: the fixed budget of GIGA-Lens Table 1.
    pub fn single() -> Self {
        Self {
            max_rounds: 1,
            extend: 0.0,
            ..Self::default()
        }
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.max_rounds >= 1,
            "HMC: retry.max_rounds must be at least 1"
        );
        ensure!(
            self.rhat > 1.0
                && self.latent_rhat > 1.0
                && self.ess >= 0.0
                && (0.0..=1.0).contains(&self.max_divergent)
                && self.extend >= 0.0,
            "HMC: retry targets need rhat > 1, latent_rhat > 1, ess >= 0, max_divergent in [0, 1] \
             and extend >= 0"
        );
        Ok(())
    }

    /// What a round's draws miss (empty: converged), from their per-parameter diagnostics;
    /// `latent[i]` puts parameter i under `latent_rhat` (missing entries: not latent).
    pub fn misses(
        &self,
        diag: &[ParamDiagnostics],
        latent: &[bool],
        draws: &HmcDraws,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (is_latent, bar) in [(false, self.rhat), (true, self.latent_rhat)] {
            let rhats: Vec<f64> = diag
                .iter()
                .enumerate()
                .filter(|(i, _)| latent.get(*i).copied().unwrap_or(false) == is_latent)
                .map(|(_, d)| d.rhat)
                .collect();
            // NaN (a constant chain) counts as a miss
            let max_rhat = (!rhats.is_empty()).then(|| {
                rhats.iter().fold(f64::NEG_INFINITY, |a, &r| {
                    if r.is_nan() || a.is_nan() {
                        f64::NAN
                    } else {
                        a.max(r)
                    }
                })
            });
            if let Some(m) = max_rhat
                && !(m < bar)
            {
                let which = if is_latent { "latent " } else { "" };
                out.push(format!("{which}R-hat {m:.3} >= {bar}"));
            }
        }
        let min_ess = diag
            .iter()
            .map(|d| d.ess_bulk.min(d.ess_tail))
            .fold(f64::INFINITY, f64::min);
        if !(min_ess >= self.ess) && !diag.is_empty() {
            out.push(format!("ESS {min_ess:.0} < {}", self.ess));
        }
        let frac = draws.divergent_fraction();
        if frac > self.max_divergent {
            out.push(format!(
                "{:.2}% divergent > {}%",
                100.0 * frac,
                100.0 * self.max_divergent
            ));
        }
        out
    }

    /// Draws per chain to add to a round whose `draws` miss only by their length: R-hat - 1 falls as
    /// 1/n and ESS grows as n, so the chains need the worse of (R-hat - 1) / (bar - 1) and target / ESS
    /// times their draws, plus a fifth. None when divergences miss (more draws do not cure them), when
    /// the round's budget (`extend` x `n_samples`, less `extended`) is spent, or when a round that is
    /// not the last would need more than a fresh round's draws in all (a re-estimated metric may cure
    /// the cause for the same cost). The last round takes what its budget allows.
    pub fn extension(
        &self,
        diag: &[ParamDiagnostics],
        latent: &[bool],
        draws: &HmcDraws,
        n_samples: usize,
        extended: usize,
        last: bool,
    ) -> Option<usize> {
        if diag.is_empty() || draws.divergent_fraction() > self.max_divergent {
            return None;
        }
        let cap = if last {
            self.extend
        } else {
            self.extend.min(1.0)
        };
        let budget = (cap * n_samples as f64).floor() as usize;
        let budget = budget.saturating_sub(extended);
        if budget == 0 {
            return None;
        }
        let mut factor: f64 = 1.0;
        for (i, d) in diag.iter().enumerate() {
            let bar = if latent.get(i).copied().unwrap_or(false) {
                self.latent_rhat
            } else {
                self.rhat
            };
            let ess = d.ess_bulk.min(d.ess_tail);
            if !(d.rhat.is_finite() && ess > 0.0) {
                return None;
            }
            factor = factor.max((d.rhat - 1.0) / (bar - 1.0));
            factor = factor.max(self.ess / ess);
        }
        let want = ((1.2 * factor - 1.0) * draws.n_draws as f64).round() as usize;
        let want = want.max(n_samples.div_ceil(4)).max(1);
        if want <= budget {
            Some(want)
        } else {
            last.then_some(budget)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(rhats: &[f64]) -> Vec<ParamDiagnostics> {
        rhats
            .iter()
            .map(|&rhat| ParamDiagnostics {
                rhat,
                ess_bulk: 1000.0,
                ess_tail: 1000.0,
                split: None,
            })
            .collect()
    }

    /// Extensions are sized from the worse of R-hat and ESS, judged per parameter against its own bar,
    /// at least a quarter round, within the budget; divergences and non-finite figures never extend.
    #[test]
    fn extensions_are_sized_from_rhat_and_ess() {
        let opts = RetryOptions::default();
        let draws = HmcDraws::new(4, 100, 3);
        let latent = [false, true, true];
        let ext = |d: &[ParamDiagnostics], extended, last| {
            opts.extension(d, &latent, &draws, 100, extended, last)
        };
        // R-hat 1.015 of 1.01: 1.2 x 1.5 = 1.8 times the draws; latent 1.06 of 1.05 is 1.2 times
        assert_eq!(ext(&diag(&[1.015, 1.06, 1.0]), 0, false), Some(80));
        // a near miss still adds a quarter round
        assert_eq!(ext(&diag(&[1.0101, 1.0, 1.0]), 0, false), Some(25));
        // ESS 250 of 400: 1.2 x 1.6 -> 92 more
        let mut d = diag(&[1.0, 1.0, 1.0]);
        d[2].ess_tail = 250.0;
        assert_eq!(ext(&d, 0, false), Some(92));
        // beyond one round's draws: a new round unless this is the last, which takes its budget
        assert_eq!(ext(&diag(&[1.03, 1.0, 1.0]), 0, false), None);
        assert_eq!(ext(&diag(&[1.015, 1.0, 1.0]), 40, false), None);
        assert_eq!(ext(&diag(&[1.0101, 1.0, 1.0]), 40, false), Some(25));
        assert_eq!(ext(&diag(&[1.03, 1.0, 1.0]), 0, true), Some(260));
        assert_eq!(ext(&diag(&[1.2, 1.0, 1.0]), 0, true), Some(300));
        assert_eq!(ext(&diag(&[1.2, 1.0, 1.0]), 250, true), Some(50));
        assert_eq!(ext(&diag(&[1.2, 1.0, 1.0]), 300, true), None);
        assert_eq!(ext(&diag(&[f64::NAN, 1.0, 1.0]), 0, true), None);
        let mut divergent = HmcDraws::new(4, 100, 3);
        divergent.divergent[..5].fill(true);
        assert_eq!(
            opts.extension(&diag(&[1.015, 1.0, 1.0]), &latent, &divergent, 100, 0, true),
            None
        );
    }

    #[test]
    fn latent_parameters_are_judged_by_their_own_rhat_bar() {
        let opts = RetryOptions::default();
        let draws = HmcDraws::new(2, 10, 3);
        let latent = [false, true, true];
        assert!(
            opts.misses(&diag(&[1.005, 1.03, 1.04]), &latent, &draws)
                .is_empty()
        );
        let m = opts.misses(&diag(&[1.02, 1.03, 1.06]), &latent, &draws);
        assert_eq!(m, ["R-hat 1.020 >= 1.01", "latent R-hat 1.060 >= 1.05"]);
        // without a mask every parameter meets the main bar; a NaN (constant chain) is a miss
        assert_eq!(
            opts.misses(&diag(&[1.005, 1.03, 1.0]), &[], &draws),
            ["R-hat 1.030 >= 1.01"]
        );
        let m = opts.misses(&diag(&[1.0, f64::NAN, 1.0]), &latent, &draws);
        assert_eq!(m, ["latent R-hat NaN >= 1.05"]);
    }
}
