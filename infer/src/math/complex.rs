//! A minimal complex number over [`Real`] lanes: deflections are written as alpha_x + i alpha_y, and
//! the EPL series and the multipoles are powers of unit complex numbers.

use super::real::Real;
use std::ops::{Add, Mul, Sub};

/// A complex number of lanes.
#[derive(Clone, Copy, Debug)]
pub struct C<T> {
    /// Real part.
    pub re: T,
    /// Imaginary part.
    pub im: T,
}

impl<T: Real> C<T> {
    #[inline(always)]
    pub fn new(re: T, im: T) -> Self {
        Self { re, im }
    }
    #[inline(always)]
    pub fn scale(self, k: T) -> C<T> {
        C::new(self.re * k, self.im * k)
    }
    /// Multiply by i.
    #[inline(always)]
    pub fn times_i(self) -> C<T> {
        C::new(-self.im, self.re)
    }
}

impl<T: Real> Mul for C<T> {
    type Output = C<T>;
    #[inline(always)]
    fn mul(self, o: C<T>) -> C<T> {
        C::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}

impl<T: Real> Add for C<T> {
    type Output = C<T>;
    #[inline(always)]
    fn add(self, o: C<T>) -> C<T> {
        C::new(self.re + o.re, self.im + o.im)
    }
}

impl<T: Real> Sub for C<T> {
    type Output = C<T>;
    #[inline(always)]
    fn sub(self, o: C<T>) -> C<T> {
        C::new(self.re - o.re, self.im - o.im)
    }
}
