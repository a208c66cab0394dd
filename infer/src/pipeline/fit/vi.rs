//! Stage 2, full-rank variational inference (GIGA-Lens Sec. 2.4): a multivariate normal q over the
//! unconstrained parameters, started at the MAP point (its Laplace approximation) or, without MAP,
//! at the prior mean.

use std::time::Instant;

use super::progress::Stage;
use super::*;

/// Reload `vi.json`, or run the stage when enabled.
pub(super) fn stage(
    cx: &Ctx<'_>,
    run: &mut Run,
    map: Option<&MapArtifact>,
) -> Result<Option<ViArtifact>> {
    let Ctx {
        cfg,
        post,
        layout,
        art,
        ..
    } = *cx;
    let vi_path = art.join("vi.json");
    let vi: Option<ViArtifact> = if vi_path.exists() {
        Some(read_json(&vi_path)?)
    } else if cfg.stages.vi {
        let init = match map {
            Some(m) => m.best_u.clone(),
            None => prior_mean_u(layout)?,
        };
        run.begin_stage("vi")?;
        run.log("stage", json!({"stage": "vi"}))?;
        let t0 = Instant::now();
        let total = cfg.vi.steps;
        let bar = StageProgress::new(Stage::Vi, total, cfg.stages);
        let res = fit_vi(post, &init, &cfg.vi, |p| {
            let elbo = p.metric("elbo");
            bar.report(
                run,
                p.step + 1,
                total,
                format!("ELBO {elbo:.1}"),
                p.to_json(),
            )
        })?;
        bar.finish();
        let a = ViArtifact {
            mean: res.mean.clone(),
            chol: res.chol.clone(),
            elbo_final: res.elbo.last().copied().unwrap_or(f64::NAN),
            time_s: t0.elapsed().as_secs_f64(),
            latent_coordinates: latent_coordinates(layout),
        };
        arclight_core::write_json_atomic(&vi_path, &a)?;
        run.end_stage("vi")?;
        Some(a)
    } else {
        None
    };
    Ok(vi)
}

/// VI's start when MAP is skipped: the mean of 256 prior draws in unconstrained space (close to the
/// bijectors' centres and the latent prior's mean), the same for every fit of a model.
fn prior_mean_u(layout: &ParamLayout) -> Result<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(PRIOR_MEAN_STREAM);
    let draws = layout.sample_prior(&mut rng, 256);
    let d = layout.dim();
    let mut m = vec![0.0; d];
    for row in draws.chunks(d) {
        for (a, b) in m.iter_mut().zip(row) {
            *a += b / 256.0;
        }
    }
    Ok(m)
}
