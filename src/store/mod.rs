//! Reading run records: discovery ([`catalog`]), per-run loading ([`run`]), incremental metrics
//! digests ([`metrics`]) with bounded, spike-preserving downsampling ([`series`]), and the
//! headline figure per run ([`headline`]).

pub mod catalog;
pub mod headline;
pub mod metrics;
pub mod run;
pub mod series;

pub use catalog::Catalog;
pub use metrics::RunMetrics;
pub use run::RunEntry;
pub use series::Series;
