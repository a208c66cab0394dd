//! The HMC draws on disk: `samples.h5` (format 1: one dataset per parameter block in physical
//! units, `[chain, draw(, component)]`, plus logp, acceptance, divergences, per-draw leapfrog steps
//! and step sizes), written atomically, read back for a resumed fit (in the samplers' coordinates)
//! and, without the model, by studies. `posterior.nc` (ArviZ) is [`super::inference_data`].

use anyhow::{Context, Result, bail};
use std::path::Path;

use crate::inference::hmc::HmcDraws;
use crate::prob::ParamLayout;

/// Write `samples.h5` atomically.
pub fn write_samples(
    path: &Path,
    layout: &ParamLayout,
    draws: &HmcDraws,
    physical: &[f64],
) -> Result<()> {
    let (c, t, d) = (draws.n_chains, draws.n_draws, draws.dim);
    arclight_core::atomic::write_atomic_with(path, |tmp| {
        let f =
            hdf5::File::create(tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        for b in layout.blocks() {
            let mut v = Vec::with_capacity(c * t * b.dim);
            for row in physical.chunks(d) {
                v.extend_from_slice(&row[b.range()]);
            }
            let ds = if b.dim == 1 {
                f.new_dataset::<f64>()
                    .shape([c, t])
                    .create(b.name.as_str())?
            } else {
                f.new_dataset::<f64>()
                    .shape([c, t, b.dim])
                    .create(b.name.as_str())?
            };
            ds.write_raw(&v)?;
        }
        f.new_dataset::<f64>()
            .shape([c, t])
            .create("logp")?
            .write_raw(&draws.logp)?;
        f.new_dataset::<f64>()
            .shape([c, t])
            .create("accept_prob")?
            .write_raw(&draws.accept_prob)?;
        let div: Vec<u8> = draws.divergent.iter().map(|&b| b as u8).collect();
        f.new_dataset::<u8>()
            .shape([c, t])
            .create("divergent")?
            .write_raw(&div)?;
        if draws.n_steps.len() == c * t {
            let steps: Vec<i64> = draws.n_steps.iter().map(|&s| s as i64).collect();
            f.new_dataset::<i64>()
                .shape([c, t])
                .create("n_steps")?
                .write_raw(&steps)?;
        }
        if draws.step_size.len() == t {
            f.new_dataset::<f64>()
                .shape([t])
                .create("step_size")?
                .write_raw(&draws.step_size)?;
        }
        let attr = |name: &str, v: i64| -> Result<()> {
            f.new_attr::<i64>().create(name)?.write_scalar(&v)?;
            Ok(())
        };
        attr("format", 1)?;
        attr("n_chains", c as i64)?;
        attr("n_draws", t as i64)?;
        let names = serde_json::to_string(&layout.names())?;
        let s: hdf5::types::VarLenUnicode = names.parse().map_err(|e| anyhow::anyhow!("{e:?}"))?;
        f.new_attr::<hdf5::types::VarLenUnicode>()
            .create("parameters")?
            .write_scalar(&s)?;
        Ok(())
    })
}

/// The draws of a `samples.h5`, one column per scalar (`name`, or `name[i]` inside a vector block),
/// chain-major (`[chain][draw]`), physical units; plus the divergence flags of the same transitions.
pub struct SampleColumns {
    pub n_chains: usize,
    pub n_draws: usize,
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
    pub divergent: Vec<bool>,
}

/// Read every parameter column of a `samples.h5` (format 1) without knowing the model: the
/// `parameters` attribute lists the blocks, their shapes give the vector lengths.
pub fn read_sample_columns(path: &Path) -> Result<SampleColumns> {
    let ctx = || format!("{}: not a readable samples file", path.display());
    let f = hdf5::File::open(path).with_context(ctx)?;
    let c = f.attr("n_chains").with_context(ctx)?.read_scalar::<i64>()? as usize;
    let t = f.attr("n_draws").with_context(ctx)?.read_scalar::<i64>()? as usize;
    let names: hdf5::types::VarLenUnicode = f
        .attr("parameters")
        .with_context(ctx)?
        .read_scalar()
        .with_context(ctx)?;
    let blocks: Vec<String> = serde_json::from_str(names.as_str()).with_context(|| {
        format!(
            "{}: parameters attribute is not a JSON list",
            path.display()
        )
    })?;
    let mut out = SampleColumns {
        n_chains: c,
        n_draws: t,
        names: Vec::new(),
        columns: Vec::new(),
        divergent: Vec::new(),
    };
    for b in &blocks {
        let ds = f
            .dataset(b)
            .with_context(|| format!("{}: no dataset {b}", path.display()))?;
        let shape = ds.shape();
        let v: Vec<f64> = ds.read_raw()?;
        let dim = if shape.len() == 3 { shape[2] } else { 1 };
        if v.len() != c * t * dim {
            bail!(
                "{}: dataset {b} has {} values, expected {c} x {t} x {dim}",
                path.display(),
                v.len()
            );
        }
        for k in 0..dim {
            out.names.push(if shape.len() == 3 {
                crate::prob::layout::component_name(b, k)
            } else {
                b.clone()
            });
            out.columns
                .push(v.iter().skip(k).step_by(dim).copied().collect());
        }
    }
    let div: Vec<u8> = f.dataset("divergent").with_context(ctx)?.read_raw()?;
    out.divergent = div.into_iter().map(|b| b != 0).collect();
    Ok(out)
}

/// Read `samples.h5` back as the draws of `layout` (unconstrained, for a resumed fit) and their
/// physical values.
pub fn read_samples(path: &Path, layout: &ParamLayout) -> Result<(HmcDraws, Vec<f64>)> {
    let f = hdf5::File::open(path)
        .with_context(|| format!("{}: cannot open samples", path.display()))?;
    let c = f.attr("n_chains")?.read_scalar::<i64>()? as usize;
    let t = f.attr("n_draws")?.read_scalar::<i64>()? as usize;
    let d = layout.dim();
    let mut physical = vec![0.0; c * t * d];
    for b in layout.blocks() {
        let v: Vec<f64> = f.dataset(&b.name)?.read_raw()?;
        for (i, chunk) in v.chunks(b.dim).enumerate() {
            physical[i * d + b.offset..i * d + b.offset + b.dim].copy_from_slice(chunk);
        }
    }
    let mut u = vec![0.0; physical.len()];
    layout.from_physical(&physical, &mut u)?;
    let logp: Vec<f64> = f.dataset("logp")?.read_raw()?;
    let accept: Vec<f64> = f.dataset("accept_prob")?.read_raw()?;
    let div: Vec<u8> = f.dataset("divergent")?.read_raw()?;
    // per-draw step counts and step sizes: absent in samples of runs that predate them
    let n_steps: Vec<usize> = if f.link_exists("n_steps") {
        let v: Vec<i64> = f.dataset("n_steps")?.read_raw()?;
        v.into_iter().map(|s| s.max(0) as usize).collect()
    } else {
        Vec::new()
    };
    let step_size: Vec<f64> = if f.link_exists("step_size") {
        f.dataset("step_size")?.read_raw()?
    } else {
        Vec::new()
    };
    let draws = HmcDraws {
        n_chains: c,
        n_draws: t,
        dim: d,
        draws: u,
        logp,
        accept_prob: accept,
        divergent: div.into_iter().map(|b| b != 0).collect(),
        n_steps,
        step_size,
        adapted_step_size: f64::NAN,
        adapted_trajectory: None,
        warmup: Default::default(),
        n_evaluations: 0,
        rounds: Vec::new(),
    };
    Ok((draws, physical))
}
