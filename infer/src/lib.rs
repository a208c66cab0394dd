//! `infer`: the differentiable strong-lens model and Bayesian inference.

pub mod inference;
pub mod plots;
pub mod prob;
