//! The lens model assembled from a model file: spec (TOML), parameter layout, forward model, posterior.

pub mod spec;
