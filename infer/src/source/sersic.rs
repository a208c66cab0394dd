//! Sersic source: the elliptical Sersic profile of `lens::light::sersic` evaluated on the source
//! plane, with the same parameters (amp, R_sersic, n_sersic, e1, e2, center_x, center_y) and
//! conventions (lenstronomy's `SERSIC_ELLIPSE`). The profile is one implementation shared by lens
//! light and source; this module only names its use as a source.

pub use crate::lens::light::sersic::Sersic as SersicSource;
