//! Plain numerics with no domain knowledge: dense Cholesky algebra and the special functions of the
//! normal distribution (f64), and the f32 lane arithmetic the per-ray lens formulas are written in
//! (`Real`, `Lanes`, branch-free `exp`/`ln`, a small complex type). A leaf: it imports nothing from the crate.

pub mod complex;
pub mod fastmath;
pub mod linalg;
pub mod periodic;
pub mod real;
pub mod special;
