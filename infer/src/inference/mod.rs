//! Inference machinery on plain f64 data, independent of the physics and of the tensor backend: the
//! GIGA-Lens pipeline (Sec. 2.3-2.5, Table 1) of multistart MAP -> full-rank VI -> preconditioned HMC, and
//! the convergence diagnostics of Vehtari et al. (2021). Every algorithm works on a batched
//! [`LogDensity`], takes a seed (MAP's randomness is in its prior draws) and reports each step to a
//! progress callback.

pub mod adam;
pub mod density;
pub mod diagnostics;
pub mod hmc;
pub mod map;
pub mod progress;
pub mod schedule;
pub mod vi;

pub use adam::AdamConfig;
pub use density::LogDensity;
pub use diagnostics::{ParamDiagnostics, diagnose};
pub use hmc::{HmcDraws, HmcOptions, MassMatrix, sample_hmc};
pub use map::{LossTrace, MapOptions, MapResult, multistart_map};
pub use progress::{Progress, no_progress};
pub use schedule::{LrSchedule, Ramp};
pub use vi::{ViOptions, ViResult, fit_vi};
