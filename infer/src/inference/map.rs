//! Multistart MAP (GIGA-Lens Sec. 2.3, eqs. 14-15): `n_MAP` starts (drawn from the prior by the caller, e.g.
//! with `ParamLayout::sample_prior`) descend the negative log-posterior together, one batched
//! `value_and_grad` per iteration, each with its own Adam state, under a shared learning-rate schedule
//! (Table 1: 1e-2 -(lin, 300)-> 1e-3 over K_MAP = 300 iterations). The best start by posterior value is the
//! MAP estimate.
//!
//! Robustness: a start whose proposed step lands on a non-finite value or gradient is moved back to its last
//! finite point (with its Adam moments) and its personal learning rate is halved, so one start leaving the
//! region where the model is defined never poisons the others. Starts that are non-finite from the outset
//! are kept out of the run (reported as `-inf`); if no start is finite the run fails with a clear error.
//!
//! Successive halving (optional, `halving_rounds` R > 0; not in GIGA-Lens): the iterations are cut into
//! R + 1 equal segments and after each of the first R the worse half of the running starts (by posterior
//! value) stops where it is; only running starts are evaluated. With R rounds, 2N starts cost about what N
//! starts cost without halving (N (1 + 1/2 + ...) / (R + 1) x 2 segments' worth), and the best start still
//! runs every iteration. Why: with a learned source the posterior is multimodal (an arc-shaped source
//! behind a wrong lens fits almost as well), so more starts for the same compute find the lens more often.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use super::adam::{Adam, AdamConfig};
use super::progress::Progress;
use super::schedule::LrSchedule;
use crate::density::{LogDensity, check_batch, eval_checked_tempered};

/// Options of multistart MAP. Defaults: GIGA-Lens Table 1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MapOptions {
    /// Number of Adam iterations K_MAP (300).
    pub steps: usize,
    /// Learning rate per iteration (1e-2 -(lin, 300)-> 1e-3).
    pub schedule: LrSchedule,
    pub adam: AdamConfig,
    /// How many of the best starts keep their full loss trace in the result (6, as in Fig. 5).
    pub keep_traces: usize,
    /// Successive-halving rounds (0: off, every start runs every iteration, as in GIGA-Lens).
    pub halving_rounds: usize,
    /// Annealing (not in GIGA-Lens): the likelihood's log enters with weight beta, rising geometrically
    /// from this value to 1 over the first segment (the first third without halving), so the early
    /// steps lean on the prior. Every ranking (halving, the result) is on the untempered target; the loss
    /// traces and progress metrics of the first segment are tempered (metric `beta`). Adam's second moment
    /// lags the growing gradients, so its steps run up to ~2x the learning rate during and after the ramp
    /// (the defaults were chosen with this). None: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temper_from: Option<f64>,
}

impl Default for MapOptions {
    fn default() -> Self {
        Self {
            steps: 300,
            schedule: LrSchedule::gigalens_map(),
            adam: AdamConfig::default(),
            keep_traces: 6,
            halving_rounds: 0,
            temper_from: None,
        }
    }
}

impl MapOptions {
    /// Table 1's schedule (1e-2 -(linear)-> 1e-3) stretched over `steps` iterations.
    pub fn with_steps(steps: usize) -> Self {
        Self {
            steps,
            schedule: LrSchedule::ramp(1e-2, 1e-3, steps, 1.0),
            ..Self::default()
        }
    }
}

/// The loss trajectory `-log p~(u_k)` of one start (Fig. 5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossTrace {
    /// Index of the start.
    pub start: usize,
    /// Loss after each iteration (index 0: at the start point).
    pub loss: Vec<f64>,
}

/// Result of multistart MAP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapResult {
    pub dim: usize,
    /// Final points of all starts, row-major `n_starts x dim` (unconstrained space).
    pub points: Vec<f64>,
    /// Final log-posterior of every start (`-inf` for starts that were never finite).
    pub logp: Vec<f64>,
    /// Start indices sorted from best to worst final log-posterior.
    pub order: Vec<usize>,
    /// Loss traces of the `keep_traces` best starts, best first.
    pub traces: Vec<LossTrace>,
    /// Number of steps that were reverted because they produced a non-finite value or gradient.
    pub n_reverted: usize,
    /// Number of starts that were non-finite at their initial point.
    pub n_dead_starts: usize,
}

impl MapResult {
    /// Index of the best start.
    pub fn best_index(&self) -> usize {
        self.order[0]
    }
    /// The MAP estimate u*_MAP.
    pub fn best(&self) -> &[f64] {
        let i = self.best_index();
        &self.points[i * self.dim..(i + 1) * self.dim]
    }
    /// log p~(u*_MAP).
    pub fn best_logp(&self) -> f64 {
        self.logp[self.best_index()]
    }
    /// Final point of start `i`.
    pub fn point(&self, i: usize) -> &[f64] {
        &self.points[i * self.dim..(i + 1) * self.dim]
    }
}

/// Runs multistart MAP from `starts` (row-major `n_starts x dim`, unconstrained space).
///
/// Calls `progress` after every iteration with stage "map" and metrics `lr`, `best_loss` (lowest
/// -log p~ over the starts), `median_loss`, `reverted` (steps reverted so far).
pub fn multistart_map<D, F>(
    density: &D,
    starts: &[f64],
    opts: &MapOptions,
    mut progress: F,
) -> Result<MapResult>
where
    D: LogDensity + ?Sized,
    F: FnMut(&Progress) -> Result<()>,
{
    let d = density.dim();
    let n = check_batch(d, starts.len(), "multistart MAP starts")?;
    opts.schedule.validate()?;

    // Successive halving: segment length and the starts still running.
    let segment = (opts.steps / (opts.halving_rounds + 1)).max(1);
    // Tempering: beta for the evaluation after iteration k (k = -1: the starts), 1 from the end
    // of the first segment on, so every ranking and the result are on the untempered target.
    let temper_steps = if opts.halving_rounds > 0 {
        segment
    } else {
        (opts.steps / 3).max(1)
    };
    let beta_at = |k: isize| match opts.temper_from {
        Some(b0) if opts.steps > 0 => {
            let frac = ((k + 1) as f64 / temper_steps as f64).clamp(0.0, 1.0);
            b0.powf(1.0 - frac)
        }
        _ => 1.0,
    };
    if let Some(b0) = opts.temper_from {
        anyhow::ensure!(
            b0 > 0.0 && b0 <= 1.0,
            "multistart MAP: temper_from {b0} must be in (0, 1]"
        );
    }

    let mut x = starts.to_vec();
    let mut logp = vec![0.0; n];
    let mut grad = vec![0.0; n * d];
    eval_checked_tempered(density, &x, n, beta_at(-1), &mut logp, &mut grad)?;
    // the beta each start's logp and grad were computed at (a reverted step keeps the older one)
    let mut beta_of = vec![beta_at(-1); n];
    let alive: Vec<bool> = logp.iter().map(|l| l.is_finite()).collect();
    let n_dead_starts = alive.iter().filter(|a| !**a).count();
    if n_dead_starts == n {
        bail!(
            "multistart MAP: the log-posterior is not finite (or has a non-finite gradient) at any of the {n} starts"
        );
    }

    let mut adam = Adam::new(opts.adam, n * d);
    let mut lr_scale = vec![1.0; n];
    let mut n_reverted = 0;
    // loss[k * n + i] = -logp of start i after k iterations.
    let mut loss_hist: Vec<f64> = Vec::with_capacity((opts.steps + 1) * n);
    loss_hist.extend(logp.iter().map(|l| -l));

    let mut running = alive.clone();
    let mut rounds_done = 0;
    let mut x_new = vec![0.0; n * d];
    let mut logp_new = vec![0.0; n];
    let mut grad_new = vec![0.0; n * d];
    let mut neg_grad = vec![0.0; d];
    let (mut m_old, mut v_old) = (vec![0.0; d], vec![0.0; d]);
    for step in 0..opts.steps {
        if rounds_done < opts.halving_rounds && step > 0 && step % segment == 0 {
            rescore_untempered(density, &x, &mut logp, &mut grad, &mut beta_of)?;
            let mut idx: Vec<usize> = (0..n).filter(|&i| running[i]).collect();
            idx.sort_by(|&a, &b| logp[b].total_cmp(&logp[a]));
            for &i in &idx[idx.len().div_ceil(2)..] {
                running[i] = false;
            }
            rounds_done += 1;
        }
        let rows: Vec<usize> = (0..n).filter(|&i| running[i]).collect();
        let lr = opts.schedule.at(step);
        adam.tick();
        // Proposed moves of the running starts, packed into the first rows.len() rows.
        let mut saved_moments = Vec::with_capacity(rows.len());
        for (k, &i) in rows.iter().enumerate() {
            let r = i * d..(i + 1) * d;
            let rk = k * d..(k + 1) * d;
            x_new[rk.clone()].copy_from_slice(&x[r.clone()]);
            m_old.copy_from_slice(&adam.m[r.clone()]);
            v_old.copy_from_slice(&adam.v[r.clone()]);
            saved_moments.push(Some((m_old.clone(), v_old.clone())));
            for (ng, g) in neg_grad.iter_mut().zip(&grad[r.clone()]) {
                *ng = -g;
            }
            adam.update_range(&mut x_new[rk], &neg_grad, lr * lr_scale[i], r);
        }
        let m = rows.len();
        let beta = beta_at(step as isize);
        eval_checked_tempered(
            density,
            &x_new[..m * d],
            m,
            beta,
            &mut logp_new[..m],
            &mut grad_new[..m * d],
        )?;
        for (k, &i) in rows.iter().enumerate() {
            let r = i * d..(i + 1) * d;
            let rk = k * d..(k + 1) * d;
            if logp_new[k].is_finite() {
                x[r.clone()].copy_from_slice(&x_new[rk.clone()]);
                grad[r].copy_from_slice(&grad_new[rk]);
                logp[i] = logp_new[k];
                beta_of[i] = beta;
            } else {
                let (m, v) = saved_moments[k]
                    .take()
                    .expect("running start has saved moments");
                adam.m[r.clone()].copy_from_slice(&m);
                adam.v[r].copy_from_slice(&v);
                lr_scale[i] *= 0.5;
                n_reverted += 1;
            }
        }
        loss_hist.extend(logp.iter().map(|l| -l));

        let mut finite: Vec<f64> = logp.iter().filter(|l| l.is_finite()).map(|l| -l).collect();
        finite.sort_by(f64::total_cmp);
        let metrics = [
            ("lr", lr),
            ("best_loss", finite[0]),
            ("median_loss", finite[finite.len() / 2]),
            ("reverted", n_reverted as f64),
            ("running", m as f64),
            ("beta", beta),
        ];
        progress(&Progress {
            stage: "map",
            step,
            total: opts.steps,
            metrics: &metrics,
        })?;
    }

    rescore_untempered(density, &x, &mut logp, &mut grad, &mut beta_of)?;
    let mut order: Vec<usize> = (0..n).collect();
    // Best first; -inf (dead) last.
    order.sort_by(|&a, &b| logp[b].total_cmp(&logp[a]));
    let traces = order
        .iter()
        .take(opts.keep_traces)
        .filter(|&&i| alive[i])
        .map(|&i| LossTrace {
            start: i,
            loss: (0..=opts.steps).map(|k| loss_hist[k * n + i]).collect(),
        })
        .collect();
    Ok(MapResult {
        dim: d,
        points: x,
        logp,
        order,
        traces,
        n_reverted,
        n_dead_starts,
    })
}

/// Re-evaluates on the untempered target (beta = 1) every finite start whose value is still a tempered
/// one, so rankings never compare values of different targets.
fn rescore_untempered<D: LogDensity + ?Sized>(
    density: &D,
    x: &[f64],
    logp: &mut [f64],
    grad: &mut [f64],
    beta_of: &mut [f64],
) -> Result<()> {
    let d = density.dim();
    let stale: Vec<usize> = (0..logp.len())
        .filter(|&i| beta_of[i] != 1.0 && logp[i].is_finite())
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let m = stale.len();
    let mut xs = Vec::with_capacity(m * d);
    for &i in &stale {
        xs.extend_from_slice(&x[i * d..(i + 1) * d]);
    }
    let (mut lp, mut g) = (vec![0.0; m], vec![0.0; m * d]);
    eval_checked_tempered(density, &xs, m, 1.0, &mut lp, &mut g)?;
    for (k, &i) in stale.iter().enumerate() {
        logp[i] = lp[k];
        grad[i * d..(i + 1) * d].copy_from_slice(&g[k * d..(k + 1) * d]);
        beta_of[i] = 1.0;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::progress::no_progress;
    use crate::inference::test_densities::{normal_nan_where, per_row};

    /// Two Gaussian bumps in 2-D: a narrow high one at (2, -1) and a broad lower one at (-2, 1); NaN for
    /// x0 > 3.5 (a region where the "model" is undefined).
    fn bimodal() -> impl LogDensity {
        per_row(2, |x: &[f64], g: &mut [f64]| {
            if x[0] > 3.5 {
                g.fill(f64::NAN);
                return f64::NAN;
            }
            let a = [(x[0] - 2.0) / 0.3, (x[1] + 1.0) / 0.3];
            let b = [(x[0] + 2.0) / 1.0, (x[1] - 1.0) / 1.0];
            let pa = 3.0 * (-0.5 * (a[0] * a[0] + a[1] * a[1])).exp();
            let pb = 1.0 * (-0.5 * (b[0] * b[0] + b[1] * b[1])).exp();
            let p = pa + pb + 1e-300;
            g[0] = (-pa * a[0] / 0.3 - pb * b[0]) / p;
            g[1] = (-pa * a[1] / 0.3 - pb * b[1]) / p;
            p.ln()
        })
    }

    #[test]
    fn best_start_finds_the_global_mode() {
        // A grid of starts over [-4, 3]^2, most of them in the basin of the broad mode.
        let mut starts = Vec::new();
        for i in 0..8 {
            for j in 0..8 {
                starts.push(-4.0 + i as f64);
                starts.push(-4.0 + j as f64);
            }
        }
        // One start inside the undefined region.
        starts.extend([3.9, 0.0]);
        let opts = MapOptions {
            steps: 400,
            schedule: LrSchedule::ramp(5e-2, 1e-3, 400, 1.0),
            ..Default::default()
        };
        let mut calls = 0;
        let res = multistart_map(&bimodal(), &starts, &opts, |p| {
            calls += 1;
            assert!(p.metrics.iter().all(|(_, v)| v.is_finite()));
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 400);
        assert_eq!(res.n_dead_starts, 1);
        let best = res.best();
        assert!(
            (best[0] - 2.0).abs() < 1e-3 && (best[1] + 1.0).abs() < 1e-3,
            "best = {best:?}"
        );
        // The broad bump adds exp(-10) ~ 4.5e-5 to the density at the narrow mode: log(3 + 4.5e-5).
        assert!((res.best_logp() - 3f64.ln()).abs() < 3e-5);
        // Some starts end in the other mode: the multistart matters.
        let n_local = (0..res.logp.len())
            .filter(|&i| (res.point(i)[0] + 2.0).abs() < 0.05)
            .count();
        assert!(n_local > 0);
        // Traces are sorted best first and non-increasing at the end of the run.
        assert_eq!(res.traces.len(), 6);
        assert_eq!(res.traces[0].start, res.best_index());
        assert_eq!(res.traces[0].loss.len(), 401);
        assert!((res.traces[0].loss[400] + res.best_logp()).abs() < 1e-12);
    }

    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the rows it evaluates.
    struct Counted<'a>(&'a dyn LogDensity, AtomicUsize);
    impl LogDensity for Counted<'_> {
        fn dim(&self) -> usize {
            2
        }
        fn value_and_grad(
            &self,
            x: &[f64],
            batch: usize,
            logp: &mut [f64],
            grad: &mut [f64],
        ) -> Result<()> {
            self.1.fetch_add(batch, Ordering::Relaxed);
            self.0.value_and_grad(x, batch, logp, grad)
        }
    }

    #[test]
    fn successive_halving_keeps_the_best_and_evaluates_less() {
        // 64 starts on a grid, 3 rounds over 400 iterations (segments of 100).
        let mut starts = Vec::new();
        for i in 0..8 {
            for j in 0..8 {
                starts.push(-4.0 + i as f64);
                starts.push(-4.0 + j as f64);
            }
        }
        let opts = MapOptions {
            steps: 400,
            schedule: LrSchedule::ramp(5e-2, 1e-3, 400, 1.0),
            halving_rounds: 3,
            ..Default::default()
        };
        let counted = Counted(&bimodal(), AtomicUsize::new(0));
        let mut running = Vec::new();
        let res = multistart_map(&counted, &starts, &opts, |p| {
            running.push(p.metrics.iter().find(|m| m.0 == "running").unwrap().1);
            Ok(())
        })
        .unwrap();
        // 64 rows for 100 iterations, then 32, 16, 8; plus the first evaluation of all starts.
        assert_eq!(
            counted.1.load(Ordering::Relaxed),
            64 + 100 * (64 + 32 + 16 + 8)
        );
        assert_eq!(running[99], 64.0);
        assert_eq!(running[100], 32.0);
        assert_eq!(running[399], 8.0);
        let best = res.best();
        assert!(
            (best[0] - 2.0).abs() < 1e-3 && (best[1] + 1.0).abs() < 1e-3,
            "best = {best:?}"
        );
        // The same with halving off evaluates every start every iteration.
        let counted = Counted(&bimodal(), AtomicUsize::new(0));
        let plain = MapOptions {
            halving_rounds: 0,
            ..opts
        };
        multistart_map(&counted, &starts, &plain, no_progress).unwrap();
        assert_eq!(counted.1.load(Ordering::Relaxed), 64 * 401);
    }

    /// 1-D: prior N(0, 1) times a likelihood with a narrow high mode at 0.5 and a broad lower one at 4
    /// (log L = ln(3 e^{-(x-0.5)^2/(2 0.3^2)} + e^{-(x-4)^2/2}) times 50, a sharp likelihood).
    struct PriorAndTwoModes;
    impl PriorAndTwoModes {
        fn parts(x: f64) -> (f64, f64, f64, f64) {
            let a = (x - 0.5) / 0.3;
            let b = x - 4.0;
            let (pa, pb) = (3.0 * (-0.5 * a * a).exp(), (-0.5 * b * b).exp());
            let p = pa + pb + 1e-300;
            let ll = 50.0 * p.ln();
            let gl = 50.0 * (-pa * a / 0.3 - pb * b) / p;
            (-0.5 * x * x, -x, ll, gl)
        }
    }
    impl LogDensity for PriorAndTwoModes {
        fn dim(&self) -> usize {
            1
        }
        fn value_and_grad(&self, x: &[f64], b: usize, l: &mut [f64], g: &mut [f64]) -> Result<()> {
            self.value_and_grad_tempered(x, b, 1.0, l, g)
        }
        fn value_and_grad_tempered(
            &self,
            x: &[f64],
            batch: usize,
            beta: f64,
            logp: &mut [f64],
            grad: &mut [f64],
        ) -> Result<()> {
            for r in 0..batch {
                let (lp, gp, ll, gl) = Self::parts(x[r]);
                logp[r] = lp + beta * ll;
                grad[r] = gp + beta * gl;
            }
            Ok(())
        }
    }

    #[test]
    fn tempering_leads_a_start_out_of_a_wrong_basin_towards_the_prior() {
        // A start in the broad mode's basin stays there untempered; annealed from beta = 1e-3 the
        // prior first pulls it towards 0, into the high mode's basin, and the result is on the
        // untempered target.
        let opts = MapOptions {
            steps: 600,
            schedule: LrSchedule::ramp(5e-2, 1e-3, 600, 1.0),
            ..Default::default()
        };
        let plain = multistart_map(&PriorAndTwoModes, &[3.0], &opts, no_progress).unwrap();
        assert!((plain.best()[0] - 4.0).abs() < 0.2, "{:?}", plain.best());
        let annealed = MapOptions {
            temper_from: Some(1e-3),
            ..opts
        };
        let mut betas = Vec::new();
        let res = multistart_map(&PriorAndTwoModes, &[3.0], &annealed, |p| {
            betas.push(p.metrics.iter().find(|m| m.0 == "beta").unwrap().1);
            Ok(())
        })
        .unwrap();
        // geometric from 1e-3 to 1 over the first third, then 1
        assert!(betas[0] > 1e-3 && betas[0] < 1.1e-3, "{}", betas[0]);
        assert!((betas[199] - 1.0).abs() < 1e-12 && betas[198] < 1.0);
        assert!(betas.windows(2).all(|w| w[1] >= w[0]));
        let x = res.best()[0];
        assert!((x - 0.5).abs() < 0.05, "annealed start ended at {x}");
        let (lp, _, ll, _) = PriorAndTwoModes::parts(x);
        assert!((res.best_logp() - (lp + ll)).abs() < 1e-9);
        // a density that cannot be tempered says so
        assert!(multistart_map(&bimodal(), &[0.0, 0.0], &annealed, no_progress).is_err());
    }

    /// log p = -(x0 - 5)^2/2 - x1^2/2 for x0 < 3.5 and NaN beyond: the mode lies behind a wall of NaN.
    fn wall() -> impl LogDensity {
        normal_nan_where(vec![5.0, 0.0], |x| x[0] >= 3.5)
    }

    #[test]
    fn steps_into_nan_region_are_reverted_not_fatal() {
        let opts = MapOptions {
            steps: 200,
            schedule: LrSchedule::constant(0.3),
            ..Default::default()
        };
        let res = multistart_map(&wall(), &[3.0, 1.0, 0.0, -1.0], &opts, no_progress).unwrap();
        assert!(res.n_reverted > 0);
        for i in 0..2 {
            let p = res.point(i);
            assert!(
                res.logp[i].is_finite() && p[0] < 3.5 && p[0] > 3.4,
                "start {i}: {p:?}"
            );
        }
        let all_dead =
            multistart_map(&wall(), &[3.9, 0.0, 4.0, 1.0], &opts, no_progress).unwrap_err();
        assert!(all_dead.to_string().contains("not finite"), "{all_dead}");
    }
}
