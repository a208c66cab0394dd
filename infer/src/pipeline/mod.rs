//! The commands of `infer`, as library functions: `mock` (simulate an observation), `fit`
//! (MAP -> VI -> HMC with a run record), `demo` (both, on the shipped prior), `study` (many mocks
//! fitted, GIGA-Lens Table 2) and the figures.

pub mod demo;
pub mod figures;
pub mod fit;
pub mod fit_report;
pub mod inference_data;
pub mod inputs;
pub mod json_diff;
pub mod mock;
pub mod netcdf;
pub mod problem;
pub mod samples;
pub mod snr;
pub mod study;
pub mod summary;
