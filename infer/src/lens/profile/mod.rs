//! Lens profiles as units. Each file holds one profile: its parameters by name, its per-sample
//! constants, and its deflection (mass) or surface brightness (light) with exact partial derivatives,
//! written once over [`Real`] so the same code runs on one `f32` or on a block of rays. Everything
//! else finds a profile here, in the two lists below ([`mass_profiles!`], [`light_profiles!`]): the
//! model-file parser (names, keys, defaults), the fused kernels (any combination of components,
//! [`Deflector`]) and the tensor path (the host bridges `lens::mass::host` and `lens::light::host`
//! for profiles without a burn-tensor twin).
//!
//! Adding a profile: one new file implementing [`MassProfile`] or [`LightProfile`], one line in its
//! list.

pub mod epl;
pub mod gaussian;
pub mod multipole;
pub mod nfw;
pub mod sersic;
pub mod shear;

use crate::math::complex::C;
use crate::math::real::Real;

/// One deflecting profile, evaluated for one sample.
pub trait MassProfile: Clone + std::fmt::Debug + Send + Sync + Sized {
    /// Parameter keys in model files, in the order of [`Self::new`]'s values and of the derivatives.
    const KEYS: &'static [&'static str];
    /// Keys that must be fixed in a model file (e.g. an integer order), with a check of the value.
    fn check_fixed(_key: &str, _value: f64) -> Option<Result<(), String>> {
        None
    }
    /// Default value of a key a model file may omit.
    fn default_of(key: &str) -> Option<f64> {
        match key {
            "center_x" | "center_y" => Some(0.0),
            _ => None,
        }
    }
    /// The period of an angle-like key (values a whole number of periods apart are the same
    /// profile), given the values of the keys fixed in the model file.
    fn period_of(_key: &str, _fixed: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
        None
    }
    /// Per-sample constants from the parameter values (in [`Self::KEYS`] order).
    fn new(p: &[f64]) -> Self;
    /// Deflection alpha_x + i alpha_y at rays (x, y).
    fn deflection<T: Real>(&self, x: T, y: T) -> C<T>;
    /// Deflection and its derivatives `d[k] = d alpha / d p_k` for every key.
    fn deflection_with_grad<T: Real>(&self, x: T, y: T, d: &mut [C<T>]) -> C<T>;
}

/// The registry: `Kind = "name" => type`. Generates [`MassKind`] (names, keys, defaults) and
/// [`Mass`] (one sample's constants, dispatching to the profile's formulas).
macro_rules! mass_profiles {
    ($($kind:ident = $name:literal => $ty:ty,)*) => {
        /// The mass profiles a model file can name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum MassKind { $($kind,)* }

        impl MassKind {
            /// Every registered profile.
            pub const ALL: &'static [MassKind] = &[$(MassKind::$kind,)*];

            /// Its name in model files.
            pub fn name(self) -> &'static str {
                match self { $(MassKind::$kind => $name,)* }
            }

            /// The profile of a model-file name.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|k| k.name() == s)
            }

            /// Parameter keys, in kernel order.
            pub fn keys(self) -> &'static [&'static str] {
                match self { $(MassKind::$kind => <$ty as MassProfile>::KEYS,)* }
            }

            /// Default value of a key a model file may omit.
            pub fn default_of(self, key: &str) -> Option<f64> {
                match self { $(MassKind::$kind => <$ty as MassProfile>::default_of(key),)* }
            }

            /// `Some` for keys that must be fixed, with the verdict on the value.
            pub fn check_fixed(self, key: &str, value: f64) -> Option<Result<(), String>> {
                match self { $(MassKind::$kind => <$ty as MassProfile>::check_fixed(key, value),)* }
            }

            /// The period of an angle-like key, given the values of the fixed keys.
            pub fn period_of(self, key: &str, fixed: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
                match self { $(MassKind::$kind => <$ty as MassProfile>::period_of(key, fixed),)* }
            }
        }

        /// One sample's constants of a registered profile.
        #[derive(Clone, Debug)]
        pub enum Mass { $($kind($ty),)* }

        impl Mass {
            /// Constants of `kind` from its parameter values (in [`MassKind::keys`] order).
            pub fn new(kind: MassKind, p: &[f64]) -> Self {
                match kind { $(MassKind::$kind => Mass::$kind(<$ty as MassProfile>::new(p)),)* }
            }

            /// Deflection at rays (x, y).
            #[inline(always)]
            pub fn deflection<T: Real>(&self, x: T, y: T) -> C<T> {
                match self { $(Mass::$kind(m) => m.deflection(x, y),)* }
            }

            /// Deflection and its derivatives with respect to the profile's keys.
            #[inline(always)]
            pub fn deflection_with_grad<T: Real>(&self, x: T, y: T, d: &mut [C<T>]) -> C<T> {
                match self { $(Mass::$kind(m) => m.deflection_with_grad(x, y, d),)* }
            }
        }
    };
}

mass_profiles! {
    Epl = "epl" => epl::Epl,
    Sie = "sie" => epl::Sie,
    Sis = "sis" => epl::Sis,
    Shear = "shear" => shear::Shear,
    Nfw = "nfw" => nfw::Nfw,
    Multipole = "multipole" => multipole::Multipole,
}

/// One surface-brightness profile, evaluated for one sample.
pub trait LightProfile: Clone + std::fmt::Debug + Send + Sync + Sized {
    /// Parameter keys in model files, in the order of [`Self::new`]'s values and of the derivatives.
    const KEYS: &'static [&'static str];
    /// The key in counts/s per arcsec^2 (or per arcsec^2 integrated: a flux) that the renderer
    /// multiplies by the pixel area (`model::forward::sersic_amp_scale`).
    const AMP: &'static str = "amp";
    /// Default value of a key a model file may omit.
    fn default_of(key: &str) -> Option<f64> {
        match key {
            "center_x" | "center_y" => Some(0.0),
            _ => None,
        }
    }
    /// Per-sample constants from the parameter values (in [`Self::KEYS`] order).
    fn new(p: &[f64]) -> Self;
    /// Surface brightness at (x, y).
    fn brightness<T: Real>(&self, x: T, y: T) -> T;
    /// Surface brightness, `d[k] = dI / d p_k` for every key, and (dI/dx, dI/dy).
    fn brightness_with_grad<T: Real>(&self, x: T, y: T, d: &mut [T]) -> (T, T, T);
}

/// The light registry: `Kind = "name" => type`. Generates [`LightKind`] and [`Light`].
macro_rules! light_profiles {
    ($($kind:ident = $name:literal => $ty:ty,)*) => {
        /// The light profiles a model file can name (lens light and sources).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum LightKind { $($kind,)* }

        impl LightKind {
            /// Every registered profile.
            pub const ALL: &'static [LightKind] = &[$(LightKind::$kind,)*];

            /// Its name in model files.
            pub fn name(self) -> &'static str {
                match self { $(LightKind::$kind => $name,)* }
            }

            /// The profile of a model-file name.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|k| k.name() == s)
            }

            /// Parameter keys, in kernel order.
            pub fn keys(self) -> &'static [&'static str] {
                match self { $(LightKind::$kind => <$ty as LightProfile>::KEYS,)* }
            }

            /// The amplitude key the renderer scales by the pixel area.
            pub fn amp_key(self) -> &'static str {
                match self { $(LightKind::$kind => <$ty as LightProfile>::AMP,)* }
            }

            /// Default value of a key a model file may omit.
            pub fn default_of(self, key: &str) -> Option<f64> {
                match self { $(LightKind::$kind => <$ty as LightProfile>::default_of(key),)* }
            }
        }

        /// One sample's constants of a registered light profile.
        #[derive(Clone, Debug)]
        pub enum Light { $($kind($ty),)* }

        impl Light {
            /// Constants of `kind` from its parameter values (in [`LightKind::keys`] order).
            pub fn new(kind: LightKind, p: &[f64]) -> Self {
                match kind { $(LightKind::$kind => Light::$kind(<$ty as LightProfile>::new(p)),)* }
            }

            /// Number of parameters.
            pub fn num_params(&self) -> usize {
                match self { $(Light::$kind(_) => <$ty as LightProfile>::KEYS.len(),)* }
            }

            /// Surface brightness at (x, y).
            #[inline(always)]
            pub fn brightness<T: Real>(&self, x: T, y: T) -> T {
                match self { $(Light::$kind(m) => m.brightness(x, y),)* }
            }

            /// Surface brightness, its parameter derivatives and (dI/dx, dI/dy).
            #[inline(always)]
            pub fn brightness_with_grad<T: Real>(&self, x: T, y: T, d: &mut [T]) -> (T, T, T) {
                match self { $(Light::$kind(m) => m.brightness_with_grad(x, y, d),)* }
            }
        }
    };
}

light_profiles! {
    Sersic = "sersic" => sersic::SersicProfile,
    Gaussian = "gaussian" => gaussian::Gaussian,
}

/// Most parameters one light component may have (bounds the kernels' stack buffers).
pub const MAX_LIGHT_PARAMS: usize = 16;

/// Most parameters a [`Deflector`] may have (bounds the kernels' stack buffers).
pub const MAX_MASS_PARAMS: usize = 48;

/// A sum of mass components for one sample (Chianese eq. 10, alpha = sum of the components'
/// alphas), with their parameters concatenated in component order.
#[derive(Clone, Debug)]
pub struct Deflector {
    parts: Vec<(Mass, usize)>,
    num_params: usize,
}

impl Deflector {
    /// Number of parameters of `kinds` together.
    pub fn num_params_of(kinds: &[MassKind]) -> usize {
        kinds.iter().map(|k| k.keys().len()).sum()
    }

    /// The components `kinds` with parameter values `p` (concatenated in order).
    pub fn new(kinds: &[MassKind], p: &[f64]) -> Self {
        let mut parts = Vec::with_capacity(kinds.len());
        let mut at = 0;
        for &k in kinds {
            let n = k.keys().len();
            parts.push((Mass::new(k, &p[at..at + n]), at));
            at += n;
        }
        assert!(
            at <= MAX_MASS_PARAMS,
            "{at} mass parameters > {MAX_MASS_PARAMS}"
        );
        Self {
            parts,
            num_params: at,
        }
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.num_params
    }

    /// Total deflection.
    #[inline(always)]
    pub fn deflection<T: Real>(&self, x: T, y: T) -> C<T> {
        let mut a = C::new(T::splat(0.0), T::splat(0.0));
        for (m, _) in &self.parts {
            a = a + m.deflection(x, y);
        }
        a
    }

    /// Total deflection and `d[q] = d alpha / d p_q` for every parameter (`d.len() >= num_params`).
    #[inline(always)]
    pub fn deflection_with_grad<T: Real>(&self, x: T, y: T, d: &mut [C<T>]) -> C<T> {
        let mut a = C::new(T::splat(0.0), T::splat(0.0));
        for (m, at) in &self.parts {
            a = a + m.deflection_with_grad(x, y, &mut d[*at..]);
        }
        a
    }

    /// Source-plane position beta = theta - sum_k alpha_k (Chianese eq. 6), each component's
    /// deflection subtracted in turn.
    #[inline(always)]
    pub fn ray_shoot<T: Real>(&self, x: T, y: T) -> (T, T) {
        let (mut bx, mut by) = (x, y);
        for (m, _) in &self.parts {
            let a = m.deflection(x, y);
            bx = bx - a.re;
            by = by - a.im;
        }
        (bx, by)
    }

    /// [`Self::ray_shoot`] and `d[q] = d alpha / d p_q` for every parameter.
    #[inline(always)]
    pub fn ray_shoot_with_grad<T: Real>(&self, x: T, y: T, d: &mut [C<T>]) -> (T, T) {
        let (mut bx, mut by) = (x, y);
        for (m, at) in &self.parts {
            let a = m.deflection_with_grad(x, y, &mut d[*at..]);
            bx = bx - a.re;
            by = by - a.im;
        }
        (bx, by)
    }
}
