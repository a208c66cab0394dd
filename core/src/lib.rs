//! Shared plumbing for the arclight binaries.
//!
//! Nothing in here knows about neural networks or lensing: it holds the pieces that both
//! `train-vae` and `infer` (and the `arclight` tracker) need — crash-safe file writes, the run
//! record format, compute-device selection, FITS/PNG image IO and progress reporting.

pub mod atomic;
pub mod device;
pub mod fits;
pub mod hash;
pub mod json_nan;
pub mod pixel;
pub mod plot;
pub mod png;
pub mod progress;
pub mod record;

pub use atomic::{write_atomic, write_json_atomic};
pub use device::DeviceChoice;
