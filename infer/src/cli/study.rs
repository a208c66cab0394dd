//! `infer study` (recovery studies in shards, prior comparisons) and `infer study summarize`.

use anyhow::Result;
use burn::tensor::Device;
use clap::{Args, Subcommand};
use std::path::PathBuf;

use super::fit::FitSettings;
use crate::out;
use crate::pipeline::fit::FitConfig;
use crate::pipeline::study::{
    Continue, Shard, SourceImages, StudyConfig, quick_settings, render_text, run_study,
    run_summarize,
};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct StudyArgs {
    #[command(subcommand)]
    pub action: Option<StudyAction>,
    /// Model file whose simulation distributions the mocks are drawn from.
    #[arg(long, required = true)]
    pub model: Option<PathBuf>,
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Number of mock systems (GIGA-Lens: 100).
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// System i uses seed + i for its mock and its fit.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Study directory of this shard (study.json, results/, systems/, its run record).
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    /// Run shard K of M: the systems i with i mod M = K - 1.
    #[arg(long, value_name = "K/M", default_value = "1/1")]
    pub shard: String,
    /// Continue the study in --out (skip systems with a result, restart a partial one); starts it
    /// if --out is new. Refused if the model, seed, n, settings or shard differ from the recorded ones.
    #[arg(long)]
    pub resume: bool,
    /// With --resume: run again the systems whose result records a failed stage (mock, fit or
    /// summary), once their cause is fixed; without it they are kept as failed results.
    #[arg(long, requires = "resume")]
    pub retry_failed: bool,
    /// Lens real galaxies: each system's source is an image of this prepared data set (`train-vae
    /// prepare`), in a permutation of the split seeded by --seed (no repeats until all are used), in place of the model's VAE source (as `infer mock
    /// --source-image`). The fit still uses the model's source prior.
    #[arg(long)]
    pub source_images: Option<PathBuf>,
    /// Compare priors: the folders of `train-vae sweep`s (every setting) and of single checkpoints (a
    /// baseline such as checkpoints/default), one or more. The same study (same mocks, same seeds) is run
    /// with every prior into `--out/<name>/`, then `--out/comparison.{json,csv,png}` tabulate lens bias,
    /// sd(z), 68% coverage, chi^2/dof, source residual, R-hat/ESS and time per prior, plotted against
    /// latent dimension (against the order given when two priors share one).
    /// Use with --source-images so the sources are real galaxies, not draws of one of the priors.
    /// With --shard K/M each prior's shard goes to `--out/<name>/shard-K-of-M/`, and `infer study
    /// compare` writes the comparison once all are in.
    #[arg(long, conflicts_with = "checkpoint", num_args = 1..)]
    pub priors_from: Vec<PathBuf>,
    /// Split of --source-images the galaxies come from (test: galaxies the prior was not trained on).
    #[arg(long, default_value = "test")]
    pub source_split: String,
    /// Smoke settings (16 MAP starts, VI 40 x 8, 4 chains x (40 + 40) HMC) to try the machinery: far
    /// too short for calibration, so systems come out flagged (ESS). Flags below override them.
    #[arg(long)]
    pub quick: bool,
    #[command(flatten)]
    pub settings: FitSettings,
}

#[derive(Subcommand)]
pub enum StudyAction {
    /// Merge the results of study directories (shards) into one summary: Table 2, interval coverage,
    /// z-score and SBC rank histograms, times, flagged systems (JSON, CSV, PNG).
    Summarize(SummarizeArgs),
    /// Merge a prior comparison run in shards (`infer study --priors-from S --shard K/M --out OUT`)
    /// into OUT/comparison.{json,csv,png}, once every shard of every setting is in.
    Compare(CompareArgs),
}

#[derive(Args)]
pub struct CompareArgs {
    /// The sweep and checkpoint folders the comparison was run with, in the same order.
    #[arg(long, required = true, num_args = 1..)]
    pub priors_from: Vec<PathBuf>,
    /// The comparison's folder (the --out of its shards).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct SummarizeArgs {
    /// Study directories (the --out of each shard).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// Folder for summary.json, artifacts/table.csv, artifacts/systems.csv and the figures.
    #[arg(long)]
    pub out: PathBuf,
}

/// Run `infer study`; `device_name` is recorded in each fit's config.
pub fn run(a: StudyArgs, device: &Device, device_name: String) -> Result<()> {
    match a.action {
        Some(StudyAction::Summarize(b)) => {
            let (_, text) = run_summarize(&b.dirs, &b.out)?;
            out!("{text}");
            out!("summary: {}", b.out.join("summary.json").display());
        }
        Some(StudyAction::Compare(b)) => {
            let rows = crate::pipeline::study::priors::merge_comparison(&b.priors_from, &b.out)?;
            out!(
                "{}",
                crate::pipeline::study::priors::render_comparison(&rows)
            );
            out!("comparison: {}", b.out.join("comparison.json").display());
        }
        None => {
            let (Some(model), Some(dir)) = (a.model, a.out) else {
                anyhow::bail!("study: --model and --out are required");
            };
            let mut fit = FitConfig::new(PathBuf::new(), model.clone());
            if a.quick {
                quick_settings(&mut fit);
            }
            a.settings.apply(&mut fit)?;
            fit.device = device_name;
            let cfg = StudyConfig {
                model,
                checkpoint: a.checkpoint,
                n_systems: a.n,
                seed: a.seed,
                fit,
                quick: a.quick,
                source_images: match &a.source_images {
                    Some(f) => Some(SourceImages::new(f, &a.source_split)?),
                    None => None,
                },
            };
            let shard = Shard::parse(&a.shard)?;
            let cont = Continue {
                resume: a.resume,
                retry_failed: a.retry_failed,
            };
            if !a.priors_from.is_empty() {
                let sources = &a.priors_from;
                match crate::pipeline::study::priors::compare_priors(
                    &cfg, sources, &dir, shard, cont, device,
                )? {
                    Some(rows) => {
                        out!(
                            "{}",
                            crate::pipeline::study::priors::render_comparison(&rows)
                        );
                        out!("comparison: {}", dir.join("comparison.json").display());
                    }
                    None => out!(
                        "shard {shard} of every prior done in {}; when every shard is, `infer study compare \
                         --priors-from {} --out {}` writes the comparison",
                        dir.display(),
                        sources
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                        dir.display()
                    ),
                }
                return Ok(());
            }
            let o = run_study(&cfg, &dir, shard, cont, device)?;
            out!(
                "study shard {shard} in {}: {} systems fitted now, {} kept from before",
                o.dir.display(),
                o.ran,
                o.kept
            );
            out!("{}", render_text(&o.summary));
        }
    }
    Ok(())
}
