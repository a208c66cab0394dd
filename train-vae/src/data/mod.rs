//! Galaxy data sets: reading COSMOS/GREAT3 catalogs and folders of cutouts, the paper's cuts
//! and 64x64 preprocessing (Chianese et al. 2020, Sec. 2.2), the synthetic galaxy generator, and
//! the HDF5 store that training reads.

pub mod store;
