//! `infer`: the differentiable strong-lens model and Bayesian inference.

pub mod bench;
pub mod cli;
pub mod density;
pub mod inference;
pub mod lens;
pub mod math;
pub mod model;
pub mod pipeline;
pub mod plots;
pub mod prob;
pub mod source;
pub mod threads;
