//! Plain f64 numerics with no domain knowledge: dense Cholesky algebra and the special functions of the
//! normal distribution. A leaf: it imports nothing from the crate.

pub mod linalg;
pub mod special;
