//! What a fit reports: the posterior of the last stage that ran (HMC draws; else draws of q; else the
//! MAP point with Laplace widths), with R-hat and ESS, and the HMC draws for ArviZ (`posterior.nc`).

use super::*;

/// The fit's parameter summaries and what they describe.
pub(super) struct Summaries {
    pub params: Vec<ParamSummary>,
    pub estimate: Option<Estimate>,
    pub rhat_max: Option<f64>,
    pub ess_min: Option<f64>,
}

/// Summarise the best available stage result (and write `posterior.nc` if it is missing).
pub(super) fn summaries(
    cx: &Ctx<'_>,
    run: &mut Run,
    hmc: &HmcOutcome,
    vi: Option<&ViArtifact>,
    map: Option<&MapArtifact>,
    mut map_estimate: Option<Vec<ParamSummary>>,
) -> Result<Summaries> {
    let Ctx {
        cfg,
        problem,
        post,
        names,
        truths,
        layout,
        art,
        dim,
        ..
    } = *cx;
    let draws_for_plots = &hmc.draws;
    let mut summaries = Vec::new();
    let mut estimate = None;
    let (mut rhat_max, mut ess_min) = (None, None);
    // the same draws for ArviZ; on resume, written if an earlier run stopped before it
    let nc_path = art.join("posterior.nc");
    if let Some((draws, physical)) = draws_for_plots
        && !nc_path.exists()
    {
        let prov = Provenance {
            model_file: cfg.model.display().to_string(),
            // the checkpoint actually loaded (--checkpoint, the model file's, or the default)
            checkpoint: problem.vae.as_ref().map(|v| v.2.display().to_string()),
            observation: cfg.obs.display().to_string(),
            run: run.id().to_string(),
        };
        if let Err(e) = write_posterior_nc(&nc_path, layout, draws, physical, &prov) {
            eprintln!("warning: {e:#}");
            run.log("warning", json!({"posterior_nc": format!("{e:#}")}))?;
        }
    }
    if let Some((draws, physical)) = draws_for_plots {
        // on the physical values, as ArviZ computes them from posterior.nc
        let diag = diagnose_rows(physical, draws.n_chains, draws.dim);
        summaries = summarize(names, physical, dim, &diag, &|n, c| {
            truth_near(truths, &problem.spec, n, c)
        });
        estimate = Some(Estimate::Hmc);
        // R-hat needs at least two (split) chains: with one chain it is NaN and reported as absent.
        let r = diag
            .iter()
            .map(|d| d.rhat)
            .fold(f64::NEG_INFINITY, f64::max);
        rhat_max = r.is_finite().then_some(r);
        let e = diag
            .iter()
            .map(|d| d.ess_bulk.min(d.ess_tail))
            .fold(f64::INFINITY, f64::min);
        ess_min = e.is_finite().then_some(e);
        run.log(
            "hmc_done",
            json!({"divergences": draws.n_divergent(), "accept": draws.mean_accept(), "step_size": draws.adapted_step_size,
                   "rhat_max": rhat_max, "ess_min": ess_min}),
        )?;
    } else if let Some(v) = vi {
        // Without HMC, summarise the VI posterior from draws of q.
        let q = MvNormal::from_cholesky(v.mean.clone(), v.chol.clone())?;
        let mut rng = StdRng::seed_from_u64(cfg.seed ^ VI_DRAWS_STREAM);
        let n = 4000;
        let mut u = vec![0.0; n * dim];
        for row in u.chunks_mut(dim) {
            q.sample_into(&mut rng, row);
        }
        let physical = to_physical(layout, &u);
        let nan = vec![
            crate::inference::ParamDiagnostics {
                rhat: f64::NAN,
                ess_bulk: f64::NAN,
                ess_tail: f64::NAN,
                split: None,
            };
            dim
        ];
        summaries = summarize(names, &physical, dim, &nan, &|n, c| {
            truth_near(truths, &problem.spec, n, c)
        });
        estimate = Some(Estimate::Vi);
    } else if let Some(m) = map {
        // MAP only: the named physical MAP values with Laplace widths
        summaries = match map_estimate.take() {
            Some(s) => s,
            None => {
                let lap = crate::inference::laplace::laplace(post, &m.best_u).ok();
                summarize_map(layout, names, &m.best_u, lap.as_ref(), &|n, c| {
                    truth_near(truths, &problem.spec, n, c)
                })
            }
        };
        estimate = Some(Estimate::Map);
    }

    Ok(Summaries {
        params: summaries,
        estimate,
        rhat_max,
        ess_min,
    })
}
