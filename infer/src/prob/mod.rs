//! Probabilistic building blocks, independent of the lens physics: priors (GIGA-Lens eq. 8), bijectors
//! (eqs. 9-13), the named parameter layout with the `Posterior` adapter, and the small numerical helpers
//! they need (normal-distribution special functions, dense Cholesky algebra).

pub mod bijector;
pub mod linalg;
pub mod params;
pub mod prior;
pub mod special;

pub use bijector::Bijector;
pub use params::{BlockPrior, LogLikelihood, ParamBlock, ParamLayout, Posterior};
pub use prior::{MvNormal, Prior};
