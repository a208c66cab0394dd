//! `infer study`: a mock-lens recovery study (GIGA-Lens Sec. 3, Table 2) that shards, resumes, merges
//! and flags. System i is mocked from the model file's simulation distributions with seed `seed + i` and
//! fitted by the full pipeline with the same seed, so each system depends on its seed alone and a study
//! can be split into shards (`--shard K/M`: the systems with i mod M = K - 1) run anywhere, in any order.
//!
//! Layout of a study directory (`--out DIR`, one per shard):
//!
//! ```text
//! study.json                  what was asked: study id, identity (model SHA-256, seed, n, settings), shard
//! run.json, metrics.jsonl     the shard's run record (kind study; `flags` when a system is flagged)
//! summary.json, artifacts/    the shard's own summary and figures, once it ends (same format as summarize)
//! results/system-NNNNNN.json  one result per finished system, written atomically (the resume unit)
//! systems/NNNNNN/mock/, fit/  the system's observation and complete fit record
//! ```
//!
//! `infer study summarize DIR... --out DIR` merges shards ([`merge`]) into the calibration summary
//! ([`summarize`]): Table 2, interval coverage, z-score and rank (SBC) histograms, times, flagged systems.

pub mod collect;
pub mod config;
pub mod figures;
pub mod flags;
pub mod merge;
pub mod priors;
pub mod report;
pub mod result;
pub mod run;
pub mod sources;
pub mod summarize;

pub use config::{Shard, StudyConfig, StudyFile, quick_settings};
pub use report::{render_text, write_summary};
pub use result::SystemResult;
pub use run::{Continue, ShardOutcome, run_study, run_summarize};
pub use sources::SourceImages;
pub use summarize::StudySummary;
