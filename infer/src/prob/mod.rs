//! Probabilistic building blocks, independent of the lens physics: priors (GIGA-Lens eq. 8), bijectors
//! (eqs. 9-13) and the named parameter layout with the `Posterior` adapter.

pub mod bijector;
pub mod layout;
pub mod posterior;
pub mod prior;

pub use bijector::Bijector;
pub use layout::{BlockPrior, ParamBlock, ParamLayout};
pub use posterior::{LogLikelihood, Posterior};
pub use prior::{MvNormal, Prior};
