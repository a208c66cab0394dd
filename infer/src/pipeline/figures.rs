//! Figures of a fit: observation / model / residual / source plane (Chianese Figs. 6-7) and the
//! corner plot of the lens parameters with VI and HMC (Figs. 8-9).

use anyhow::Result;
use burn::tensor::{Tensor, TensorData};
use std::path::{Path, PathBuf};

use super::problem::Problem;
use crate::model::likelihood::LensLikelihood;
use crate::model::observation::Observation;
use crate::plots::corner::{CornerOptions, SampleSet, corner_plot_with};
use crate::plots::panels::{FitFigureOptions, FitRow, NoiseSigma, lens_fit_figure};
use crate::prob::{MvNormal, ParamLayout};

use crate::pipeline::mock::Truths;

/// Fit figure at the best-fit physical parameters `theta`. The true source comes from the mock's
/// `source.fits` beside the observation when present.
pub fn fit_figure(
    path: &Path,
    problem: &Problem,
    lik: &LensLikelihood,
    obs: &Observation,
    theta: &[f64],
    _truths: Option<&Truths>,
) -> Result<PathBuf> {
    let spec = &problem.spec;
    let model = lik.model_images(theta, 1)?;
    let (ny, nx) = (obs.ny, obs.nx);
    // Noise sigma per pixel at the model (background + Poisson), or the noise map.
    let sigma: Vec<f32> = match &obs.noise_map {
        Some(nm) => nm.clone(),
        None => model
            .iter()
            .map(|&m| {
                let p = spec
                    .noise
                    .exposure_time
                    .map(|t| m.max(0.0) as f64 / (spec.noise.gain * t))
                    .unwrap_or(0.0);
                (spec.noise.sigma_bkg.powi(2) + p).sqrt() as f32
            })
            .collect(),
    };
    let observed: Vec<f32> = obs
        .data
        .iter()
        .zip(&obs.mask)
        .map(|(v, m)| if *m { *v } else { 0.0 })
        .collect();
    let dir = obs.path.parent().unwrap_or(Path::new("."));
    let true_src = arclight_core::fits::read_sky_f32(&dir.join("source.fits"), 0).ok();
    let half = match &true_src {
        Some(_) => arclight_core::fits::read_key_f64(&dir.join("source.fits"), 0, "HALFWID")
            .ok()
            .flatten()
            .unwrap_or(0.5 * nx.max(ny) as f64 * spec.grid.pixel_scale),
        None => 0.5 * nx.max(ny) as f64 * spec.grid.pixel_scale,
    };
    let n_src = true_src.as_ref().map(|s| s.ny).unwrap_or(64);
    let t = Tensor::<2>::from_data(
        TensorData::new(theta.to_vec(), [1, theta.len()]),
        lik.forward_values.device(),
    );
    let fit_src: Vec<f32> = lik
        .forward_values
        .source_plane(&t, n_src, half)?
        .into_data()
        .iter::<f32>()
        .collect();
    let ext_i = [
        -(nx as f64) * spec.grid.pixel_scale / 2.0,
        nx as f64 * spec.grid.pixel_scale / 2.0,
        -(ny as f64) * spec.grid.pixel_scale / 2.0,
        ny as f64 * spec.grid.pixel_scale / 2.0,
    ];
    let row = FitRow {
        label: format!("{} (sigma_bkg {})", spec.name, spec.noise.sigma_bkg),
        ny,
        nx,
        observed: &observed,
        model: &model,
        sigma: NoiseSigma::Map(&sigma),
        src_ny: n_src,
        src_nx: n_src,
        true_source: true_src.as_ref().map(|s| &s.data[..]),
        fit_source: Some(&fit_src),
        image_extent: Some(ext_i),
        source_extent: Some([-half, half, -half, half]),
    };
    let opts = FitFigureOptions {
        title: format!("MAP fit: {}", obs.path.display()),
        ..Default::default()
    };
    lens_fit_figure(path, &[row], &opts)?;
    Ok(path.to_path_buf())
}

/// Corner plot of the non-latent parameters: HMC draws and, when given, draws of the VI
/// posterior; truths marked when known.
pub fn corner_figure(
    path: &Path,
    layout: &ParamLayout,
    names: &[String],
    physical: &[f64],
    dim: usize,
    vi: Option<(&[f64], &[f64])>,
    truth_near: Option<crate::pipeline::mock::TruthNear>,
) -> Result<PathBuf> {
    // Scalars only (a 64-D latent block would swamp the figure); at most 12 parameters.
    let cols: Vec<usize> = layout
        .blocks()
        .iter()
        .filter(|b| b.dim == 1)
        .map(|b| b.offset)
        .take(12)
        .collect();
    let pick = |row: &[f64]| cols.iter().map(|&c| row[c]).collect::<Vec<f64>>();
    let hmc: Vec<Vec<f64>> = physical.chunks(dim).map(pick).collect();
    let mut sets = Vec::new();
    let vi_draws: Vec<Vec<f64>>;
    if let Some((mean, chol)) = vi {
        let q = MvNormal::from_cholesky(mean.to_vec(), chol.to_vec())?;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        let mut u = vec![0.0; dim];
        let mut x = vec![0.0; dim];
        vi_draws = (0..hmc.len().min(4000))
            .map(|_| {
                q.sample_into(&mut rng, &mut u);
                layout.to_physical(&u, &mut x);
                pick(&x)
            })
            .collect();
        sets.push(SampleSet {
            label: "VI",
            colour: [230, 120, 30],
            samples: &vi_draws,
        });
    }
    sets.push(SampleSet {
        label: "HMC",
        colour: [40, 90, 200],
        samples: &hmc,
    });
    let col_names: Vec<&str> = cols.iter().map(|&c| names[c].as_str()).collect();
    // an angle's truth as its equivalent nearest the HMC median, as the summary judges it
    let truth_vals: Option<Vec<f64>> = truth_near.map(|t| {
        col_names
            .iter()
            .enumerate()
            .map(|(j, n)| {
                let mut col: Vec<f64> = hmc.iter().map(|row| row[j]).collect();
                col.sort_by(f64::total_cmp);
                let centre = col.get(col.len() / 2).copied().unwrap_or(f64::NAN);
                t(n, centre).unwrap_or(f64::NAN)
            })
            .collect()
    });
    let opts = CornerOptions {
        title: "posterior".into(),
        ..Default::default()
    };
    corner_plot_with(path, &col_names, &sets, truth_vals.as_deref(), &opts)?;
    Ok(path.to_path_buf())
}
