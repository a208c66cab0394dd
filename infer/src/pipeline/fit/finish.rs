//! The end of a fit: its figures (`fit.png`, `corner.png`) and the run's summary.

use super::*;

/// Write the figures and finish the run with its summary.
pub(super) fn finish(
    cx: &Ctx<'_>,
    run: &mut Run,
    map: Option<&MapArtifact>,
    vi: Option<&ViArtifact>,
    hmc: HmcOutcome,
    s: Summaries,
    timings: BTreeMap<String, f64>,
) -> Result<FitOutcome> {
    let Ctx {
        problem,
        obs,
        post,
        names,
        truths,
        layout,
        lik,
        art,
        n_pix,
        ..
    } = *cx;
    let Summaries {
        params: summaries,
        estimate,
        rhat_max,
        ess_min,
    } = s;
    let draws_for_plots = &hmc.draws;
    run.log("stage", json!({"stage": "done"}))?;
    let best_u = map
        .map(|m| m.best_u.clone())
        .or_else(|| vi.as_ref().map(|v| v.mean.clone()));
    let mut plots = Vec::new();
    if let Some(u) = &best_u {
        let theta = to_physical(layout, u);
        match crate::pipeline::figures::fit_figure(
            &art.join("fit.png"),
            problem,
            lik,
            obs,
            &theta,
            truths,
        ) {
            Ok(p) => plots.push(p),
            Err(e) => eprintln!("warning: fit figure not written: {e:#}"),
        }
    }
    if let Some((draws, physical)) = draws_for_plots {
        match crate::pipeline::figures::corner_figure(
            &art.join("corner.png"),
            layout,
            names,
            physical,
            draws.dim,
            vi.map(|v| (&v.mean[..], &v.chol[..])),
            truths
                .is_some()
                .then_some(&|n: &str, c: f64| truth_near(truths, &problem.spec, n, c) as _),
        ) {
            Ok(p) => plots.push(p),
            Err(e) => eprintln!("warning: corner plot not written: {e:#}"),
        }
    }
    let chi2_dof = map.map(|m| m.chi2 / m.dof as f64);
    let params_json: serde_json::Map<String, Value> = summaries
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                serde_json::to_value(s).unwrap_or(Value::Null),
            )
        })
        .collect();
    let summary = json!({
        "estimate": estimate.map(Estimate::as_str),
        "params": params_json,
        "rhat_max": rhat_max,
        "ess_min": ess_min,
        "chi2_dof": chi2_dof,
        "map": map.map(|m| json!({"best_logp": m.best_logp, "chi2": m.chi2, "dof": m.dof,
                                            "laplace_ridge": m.laplace_ridge})),
        "vi": vi.map(|v| json!({"elbo": v.elbo_final})),
        "plots": plots,
        "timings": timings,
        "hmc_efficiency": hmc.cost.map(|(evals, secs)| json!({
            "gradient_evaluations": evals,
            "ms_per_gradient": 1e3 * secs / evals.max(1) as f64,
            "evaluations_per_effective_sample": ess_min.map(|e| evals as f64 / e),
        })),
        // every HMC sampling round; all but the last missed the convergence targets (warm-up)
        "hmc_rounds": hmc.rounds,
        "backend": post.likelihood().backend(),
        "backend_fallback": post.likelihood().fallback,
        "n_pixels": n_pix,
        "warnings": run.info().warnings,
    });
    run.finish(summary)?;
    Ok(FitOutcome {
        run_dir: run.dir().to_path_buf(),
        estimate,
        params: summaries,
        chi2_dof,
        rhat_max,
        ess_min,
        hmc_rounds: hmc.rounds_now,
        plots,
        timings,
    })
}
