//! Branch-free f32 `exp` and `ln` (Cephes `expf`/`logf` polynomials, ~1-2 ulp on the ranges
//! used here), written so that loops over lanes auto-vectorise; `std`'s `f32::exp`/`ln` are
//! library calls that block vectorisation and were most of the fused kernel's time.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// 1.5 * 2^23: adding and subtracting it rounds an f32 of magnitude < 2^22 to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// e^x for x in any range (clamped to [-87.3, 88.0], so the result is finite and positive).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.3, 88.0);
    let n = (x * LOG2E + ROUND_MAGIC) - ROUND_MAGIC;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let z = r * r;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let y = p * z + r + 1.0;
    // 2^n from the bits of n + 1.5 * 2^23 (= 0x4B40_0000 + n): integer ops only, so it
    // vectorises (an `as i32` cast is a saturating conversion with NaN checks).
    let nb = (n + ROUND_MAGIC)
        .to_bits()
        .wrapping_sub(0x4B40_0000)
        .wrapping_add(127);
    let scale = f32::from_bits(nb << 23);
    y * scale
}

/// Natural logarithm of a positive, normal x.
#[inline(always)]
pub fn ln(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 126;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f00_0000); // in [0.5, 1)
    let small = m < std::f32::consts::FRAC_1_SQRT_2;
    e -= small as i32;
    let f = if small { m + m - 1.0 } else { m - 1.0 };
    let ef = e as f32;
    let z = f * f;
    let mut y =
        ((((((((7.037_683_6e-2 * f - 0.115_146_1) * f + 0.116_769_98) * f - 0.124_201_41) * f
            + 0.142_493_23)
            * f
            - 0.166_680_57)
            * f
            + 0.200_007_15)
            * f
            - 0.249_999_94)
            * f
            + 0.333_333_3)
            * f
            * z;
    y += -2.121_944_4e-4 * ef;
    y += -0.5 * z;
    f + y + 0.693_359_4 * ef
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        let mut worst = 0.0f64;
        for i in -8000..8000 {
            let x = i as f32 * 0.01;
            let want = (x as f64).exp();
            let rel = ((exp(x) as f64 - want) / want).abs();
            worst = worst.max(rel);
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert!(exp(-1e4) >= 0.0 && exp(-1e4) < 1e-37);
        assert!(exp(1e4).is_finite());
    }

    #[test]
    fn ln_matches_std() {
        let mut worst = 0.0f64;
        let mut x = 1e-30f32;
        while x < 1e30 {
            let want = (x as f64).ln();
            let err = (ln(x) as f64 - want).abs() / want.abs().max(1.0);
            worst = worst.max(err);
            x *= 1.013;
        }
        assert!(worst < 3e-7, "worst error {worst:e}");
        assert!((ln(1.0)).abs() < 1e-7);
    }
}
