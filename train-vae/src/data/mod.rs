//! Galaxy data sets: reading COSMOS/GREAT3 catalogs and folders of cutouts, the paper's cuts
//! and 64x64 preprocessing (Chianese et al. 2020, Sec. 2.2), the synthetic galaxy generator, and
//! the HDF5 store that training reads.
//!
//! - [`cosmos`]: catalog + `_fits.fits` reader (GalSim/GREAT3 layout).
//! - [`folder`]: folders of FITS/PNG cutouts, noise from the stamp border.
//! - [`cuts`]: the paper's cuts with their defaults and per-cut counts.
//! - [`preprocess`]: crop, area-averaging downscale, block average, normalisation.
//! - [`prepare`]: the streaming pipeline behind `train-vae prepare`.
//! - [`synth`]: the synthetic galaxy generator behind `train-vae synth`.
//! - [`store`]: the HDF5 layout, writer and readers.
//! - [`cli`]: the two subcommands' flags.

pub mod cli;
pub mod cosmos;
pub mod cuts;
pub mod folder;
pub mod prepare;
pub mod preprocess;
pub mod synth;
