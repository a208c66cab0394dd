//! Convergence diagnostics of Vehtari, Gelman, Simpson, Carpenter & Buerkner (2021), "Rank-normalization,
//! folding, and localization: an improved R-hat", computed exactly as ArviZ 0.23 (`az.rhat(method="rank")`,
//! `az.ess(method="bulk" | "tail" | "mean")`) and the R `posterior` package do:
//!
//! - chains are split in halves (the middle draw of an odd-length chain is dropped);
//! - rank normalisation: average ranks r over all draws, z = Phi^{-1}((r - 3/8)/(S + 1/4)) (Blom's
//!   fractional offset, S the number of draws);
//! - R-hat = max(R-hat of the rank-normalised split chains, R-hat of the rank-normalised folded draws
//!   |x - median(x)|), with R-hat = sqrt(((N-1)/N W + B/N) / W);
//! - ESS = S / tau with tau = -1 + 2 sum_t rho_t from the multi-chain autocorrelation estimate (eq. 10 of
//!   the paper), truncated by Geyer's initial positive sequence and made monotone (initial monotone
//!   sequence), tau floored at 1/log10(S); autocovariances by FFT;
//! - bulk ESS = ESS of the rank-normalised split chains; tail ESS = min of the ESS of the indicators
//!   I(x <= q_0.05) and I(x <= q_0.95) on split chains (quantiles of type 7, as R's default).
//!
//! Draws of one parameter are passed as `[chain][draw]` contiguous (`HmcDraws::param`). Like ArviZ, the
//! functions return NaN when the input has NaN values, fewer than 4 draws per chain, or (R-hat only) fewer
//! than 2 chains.

use crate::math::special::ndtri;

use super::hmc::HmcDraws;

/// Diagnostics of one parameter.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ParamDiagnostics {
    /// Rank-normalised split R-hat (max of bulk and tail).
    pub rhat: f64,
    pub ess_bulk: f64,
    pub ess_tail: f64,
    /// Chains apart in two groups (multimodal or stuck), if they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split: Option<ChainSplit>,
}

/// R-hat, bulk ESS and tail ESS of every parameter of an HMC run (its unconstrained draws).
pub fn diagnose(draws: &HmcDraws) -> Vec<ParamDiagnostics> {
    diagnose_rows(&draws.draws, draws.n_chains, draws.dim)
}

/// R-hat, bulk ESS and tail ESS of every column of draws laid out `[chain][draw][param]` (row-major,
/// `dim` columns), e.g. the physical values of an HMC run: what ArviZ computes from `posterior.nc`.
/// The folded R-hat is not invariant under a nonlinear bijector (|x - median| ranks differently from
/// |u - median|), so reported diagnostics are taken on the physical values.
pub fn diagnose_rows(x: &[f64], n_chains: usize, dim: usize) -> Vec<ParamDiagnostics> {
    let n = x.len() / dim.max(1);
    (0..dim)
        .map(|k| {
            let col: Vec<f64> = (0..n).map(|i| x[i * dim + k]).collect();
            ParamDiagnostics {
                rhat: rhat(&col, n_chains),
                ess_bulk: ess_bulk(&col, n_chains),
                ess_tail: ess_tail(&col, n_chains),
                split: chain_split(&col, n_chains),
            }
        })
        .collect()
}

/// Chain means apart by at least this many pooled within-chain standard deviations at their widest gap
/// make a [`ChainSplit`]. Well-mixed chains' means differ by a fraction of one; a slowly mixing chain's by
/// about one.
pub const SPLIT_GAP: f64 = 4.0;

/// Chains of one parameter that sit in two separate groups: a multimodal posterior or stuck chains, which
/// more draws of the same chains do not merge (R-hat only says that the chains disagree).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChainSplit {
    /// Chains below the gap and the mean of their draws.
    pub n_low: usize,
    pub low: f64,
    /// Chains above the gap and the mean of their draws.
    pub n_high: usize,
    pub high: f64,
    /// The gap between the nearest chain means of the two groups, in pooled within-chain sd.
    pub gap_sd: f64,
}

impl std::fmt::Display for ChainSplit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = |v: f64| {
            format!("{v:.4}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        };
        write!(
            f,
            "{} chains at {}, {} at {} ({:.0} sd apart)",
            self.n_low,
            g(self.low),
            self.n_high,
            g(self.high),
            self.gap_sd
        )
    }
}

/// The [`ChainSplit`] of one parameter's draws (`[chain][draw]` contiguous), if its chain means part at
/// a gap of at least [`SPLIT_GAP`] pooled within-chain sd; None for agreeing chains or unusable input.
pub fn chain_split(x: &[f64], n_chains: usize) -> Option<ChainSplit> {
    let n = shape(x, n_chains, 2)?;
    let mut stats: Vec<(f64, f64)> = x
        .chunks(n)
        .map(|c| {
            let m = c.iter().sum::<f64>() / n as f64;
            (
                m,
                c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64,
            )
        })
        .collect();
    let pooled = (stats.iter().map(|s| s.1).sum::<f64>() / n_chains as f64).sqrt();
    if !(pooled > 0.0) {
        return None;
    }
    stats.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (g, gap) = (0..n_chains - 1)
        .map(|k| (k, stats[k + 1].0 - stats[k].0))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let gap_sd = gap / pooled;
    if gap_sd < SPLIT_GAP {
        return None;
    }
    let mean = |s: &[(f64, f64)]| s.iter().map(|v| v.0).sum::<f64>() / s.len() as f64;
    Some(ChainSplit {
        n_low: g + 1,
        low: mean(&stats[..=g]),
        n_high: n_chains - g - 1,
        high: mean(&stats[g + 1..]),
        gap_sd,
    })
}

/// Shape of `[chain][draw]` data, or None if it is unusable (NaN, too few draws or chains).
fn shape(x: &[f64], n_chains: usize, min_chains: usize) -> Option<usize> {
    if n_chains < min_chains
        || n_chains == 0
        || !x.len().is_multiple_of(n_chains)
        || x.iter().any(|v| v.is_nan())
    {
        return None;
    }
    let n = x.len() / n_chains;
    (n >= 4).then_some(n)
}

/// Splits every chain in two halves of `n / 2` draws: `(2 m) x (n / 2)`.
fn split_chains(x: &[f64], m: usize, n: usize) -> (Vec<f64>, usize, usize) {
    let half = n / 2;
    let mut out = Vec::with_capacity(2 * m * half);
    for c in 0..m {
        out.extend_from_slice(&x[c * n..c * n + half]);
    }
    for c in 0..m {
        out.extend_from_slice(&x[c * n + n - half..(c + 1) * n]);
    }
    (out, 2 * m, half)
}

/// Average ranks (1-based; ties share the mean of their ranks), as scipy's `rankdata(method="average")`.
fn average_ranks(x: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && x[idx[j + 1]] == x[idx[i]] {
            j += 1;
        }
        let r = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            ranks[k] = r;
        }
        i = j + 1;
    }
    ranks
}

/// Rank normalisation z = Phi^{-1}((r - 3/8) / (S + 1/4)).
fn z_scale(x: &[f64]) -> Vec<f64> {
    let s = x.len() as f64;
    average_ranks(x)
        .into_iter()
        .map(|r| ndtri((r - 0.375) / (s + 0.25)))
        .collect()
}

/// Median (mean of the two middle values for an even count).
fn median(x: &[f64]) -> f64 {
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// Quantile of type 7 (linear interpolation between order statistics at h = (S - 1) p).
pub fn quantile(x: &[f64], p: f64) -> f64 {
    let mut s = x.to_vec();
    s.sort_by(f64::total_cmp);
    let h = (s.len() - 1) as f64 * p;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(s.len() - 1);
    s[lo] + (h - lo as f64) * (s[hi] - s[lo])
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn var_ddof1(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() as f64 - 1.0)
}

/// Classic (non-split) potential scale reduction of `m` chains of `n` draws.
fn rhat_basic(x: &[f64], m: usize, n: usize) -> f64 {
    let means: Vec<f64> = (0..m).map(|c| mean(&x[c * n..(c + 1) * n])).collect();
    let w = (0..m)
        .map(|c| var_ddof1(&x[c * n..(c + 1) * n]))
        .sum::<f64>()
        / m as f64;
    let b = n as f64 * var_ddof1(&means);
    ((b / w + n as f64 - 1.0) / n as f64).sqrt()
}

/// Rank-normalised split R-hat (Vehtari et al. 2021): max of the bulk and the folded (tail) R-hat.
pub fn rhat(x: &[f64], n_chains: usize) -> f64 {
    let Some(n) = shape(x, n_chains, 2) else {
        return f64::NAN;
    };
    let (split, m2, half) = split_chains(x, n_chains, n);
    let bulk = rhat_basic(&z_scale(&split), m2, half);
    let med = median(&split);
    let folded: Vec<f64> = split.iter().map(|v| (v - med).abs()).collect();
    let tail = rhat_basic(&z_scale(&folded), m2, half);
    bulk.max(tail)
}

/// Bulk ESS: ESS of the rank-normalised split chains.
pub fn ess_bulk(x: &[f64], n_chains: usize) -> f64 {
    let Some(n) = shape(x, n_chains, 1) else {
        return f64::NAN;
    };
    let (split, m2, half) = split_chains(x, n_chains, n);
    ess_raw(&z_scale(&split), m2, half)
}

/// Tail ESS: the smaller ESS of the 5% and 95% quantile indicators.
pub fn ess_tail(x: &[f64], n_chains: usize) -> f64 {
    ess_quantile(x, n_chains, 0.05).min(ess_quantile(x, n_chains, 0.95))
}

/// ESS of the indicator I(x <= q_p) on split chains (the ESS for estimating the p-quantile).
pub fn ess_quantile(x: &[f64], n_chains: usize, p: f64) -> f64 {
    let Some(n) = shape(x, n_chains, 1) else {
        return f64::NAN;
    };
    let q = quantile(x, p);
    let ind: Vec<f64> = x.iter().map(|&v| if v <= q { 1.0 } else { 0.0 }).collect();
    let (split, m2, half) = split_chains(&ind, n_chains, n);
    ess_raw(&split, m2, half)
}

/// ESS for the mean: split chains, no rank normalisation (ArviZ `method="mean"`).
pub fn ess_mean(x: &[f64], n_chains: usize) -> f64 {
    let Some(n) = shape(x, n_chains, 1) else {
        return f64::NAN;
    };
    let (split, m2, half) = split_chains(x, n_chains, n);
    ess_raw(&split, m2, half)
}

/// Multi-chain ESS of `m` chains of `n` draws (Vehtari et al. 2021 eqs. 10-11, Geyer's initial monotone
/// sequence), step for step as ArviZ's `_ess`.
fn ess_raw(x: &[f64], m: usize, n: usize) -> f64 {
    let total = (m * n) as f64;
    let (lo, hi) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if hi - lo < 1e-15 {
        // Constant draws: ArviZ reports the number of draws.
        return total;
    }
    let nf = n as f64;
    let acov: Vec<Vec<f64>> = (0..m)
        .map(|c| autocovariance(&x[c * n..(c + 1) * n]))
        .collect();
    let mean_acov = |t: usize| acov.iter().map(|a| a[t]).sum::<f64>() / m as f64;
    let chain_means: Vec<f64> = (0..m).map(|c| mean(&x[c * n..(c + 1) * n])).collect();
    let mean_var = mean_acov(0) * nf / (nf - 1.0);
    let mut var_plus = mean_var * (nf - 1.0) / nf;
    if m > 1 {
        var_plus += var_ddof1(&chain_means);
    }
    let mut rho = vec![0.0; n];
    let mut rho_even = 1.0;
    rho[0] = rho_even;
    let mut rho_odd = 1.0 - (mean_var - mean_acov(1)) / var_plus;
    rho[1] = rho_odd;
    // Geyer's initial positive sequence.
    let mut t = 1;
    while t + 3 < n && rho_even + rho_odd > 0.0 {
        rho_even = 1.0 - (mean_var - mean_acov(t + 1)) / var_plus;
        rho_odd = 1.0 - (mean_var - mean_acov(t + 2)) / var_plus;
        if rho_even + rho_odd >= 0.0 {
            rho[t + 1] = rho_even;
            rho[t + 2] = rho_odd;
        }
        t += 2;
    }
    // max_t may be -1 when the loop never ran (ArviZ then uses rho[0] alone); index with care.
    let max_t = t as isize - 2;
    let at = |k: isize| k as usize;
    if rho_even > 0.0 {
        rho[at(max_t + 1)] = rho_even;
    }
    // Geyer's initial monotone sequence.
    let mut t: isize = 1;
    while t <= max_t - 2 {
        let (a, b, c, e) = (at(t - 1), at(t), at(t + 1), at(t + 2));
        if rho[c] + rho[e] > rho[a] + rho[b] {
            rho[c] = (rho[a] + rho[b]) / 2.0;
            rho[e] = rho[c];
        }
        t += 2;
    }
    let head: f64 = rho[..at(max_t + 1)].iter().sum();
    let next = rho.get(at(max_t + 1)).copied().unwrap_or(0.0);
    let mut tau = -1.0 + 2.0 * head + next;
    tau = tau.max(1.0 / total.log10());
    let ess = total / tau;
    if rho.iter().any(|r| r.is_nan()) {
        f64::NAN
    } else {
        ess
    }
}

/// Biased autocovariance c(t) = (1/n) sum_{i} (x_i - mean)(x_{i+t} - mean) for t = 0..n, via FFT with zero
/// padding to a power of two >= 2n (no circular wrap-around).
pub fn autocovariance(x: &[f64]) -> Vec<f64> {
    let n = x.len();
    let m = mean(x);
    let size = (2 * n).next_power_of_two();
    let mut re: Vec<f64> = x
        .iter()
        .map(|v| v - m)
        .chain(std::iter::repeat_n(0.0, size - n))
        .collect();
    let mut im = vec![0.0; size];
    fft(&mut re, &mut im, false);
    for k in 0..size {
        re[k] = re[k] * re[k] + im[k] * im[k];
        im[k] = 0.0;
    }
    fft(&mut re, &mut im, true);
    re.truncate(n);
    for v in re.iter_mut() {
        *v /= n as f64;
    }
    re
}

/// In-place iterative radix-2 FFT (length a power of two); `inverse` includes the 1/N factor.
fn fft(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let ang = sign * 2.0 * std::f64::consts::PI / len as f64;
        for start in (0..n).step_by(len) {
            for k in 0..len / 2 {
                let (s, c) = (ang * k as f64).sin_cos();
                let (a, b) = (start + k, start + k + len / 2);
                let tr = re[b] * c - im[b] * s;
                let ti = re[b] * s + im[b] * c;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len <<= 1;
    }
    if inverse {
        for k in 0..n {
            re[k] /= n as f64;
            im[k] /= n as f64;
        }
    }
}

#[cfg(test)]
mod tests {

    /// `m` chains of `n` AR(1) draws (coefficient `rho`, unit marginal sd) about the given means.
    fn ar1_chains(means: &[f64], n: usize, rho: f64, sd: f64, seed: u64) -> Vec<f64> {
        use rand::{RngExt, SeedableRng, rngs::StdRng};
        let mut rng = StdRng::seed_from_u64(seed);
        let mut normal = || {
            let (u1, u2): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random::<f64>());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        };
        let mut out = Vec::new();
        for &m in means {
            let mut e = normal();
            for _ in 0..n {
                out.push(m + sd * e);
                e = rho * e + (1.0 - rho * rho).sqrt() * normal();
            }
        }
        out
    }

    #[test]
    fn chains_in_two_modes_are_split_and_agreeing_or_slow_chains_are_not() {
        // six chains about 1.3 and two about 2.8, within-chain sd 0.12 (system 6 of the real-galaxy study)
        let means = [1.3, 2.8, 1.3, 1.3, 2.8, 1.3, 1.3, 1.3];
        let x = ar1_chains(&means, 300, 0.5, 0.12, 1);
        let c = chain_split(&x, 8).expect("split");
        assert_eq!((c.n_low, c.n_high), (6, 2));
        assert!(
            (c.low - 1.3).abs() < 0.05 && (c.high - 2.8).abs() < 0.05,
            "{c:?}"
        );
        assert!(c.gap_sd > 10.0, "{c:?}");
        assert_eq!(
            c.to_string(),
            format!(
                "6 chains at {}, 2 at {} ({:.0} sd apart)",
                format!("{:.4}", c.low).trim_end_matches('0'),
                format!("{:.4}", c.high).trim_end_matches('0'),
                c.gap_sd
            )
        );
        // well-mixed chains, and slowly mixing ones (rho 0.98: about six correlation times per chain)
        for (rho, seed) in [(0.0, 2), (0.5, 3), (0.98, 4), (0.98, 5)] {
            let x = ar1_chains(&[0.0; 8], 300, rho, 1.0, seed);
            assert_eq!(chain_split(&x, 8), None, "rho {rho}");
        }
        // one chain, NaN, or constant draws: nothing to say
        assert_eq!(chain_split(&x[..300], 1), None);
        assert_eq!(chain_split(&[1.0; 80], 8), None);
        let mut nan = ar1_chains(&means, 10, 0.0, 0.1, 6);
        nan[3] = f64::NAN;
        assert_eq!(chain_split(&nan, 8), None);
    }

    use super::*;

    /// splitmix64 + Box-Muller: a generator simple enough to reproduce bit for bit in Python, so the test
    /// series can be fed to ArviZ. Reference script (ArviZ 0.23.4, NumPy 2.4, SciPy 1.17):
    ///
    /// ```python
    /// import math, numpy as np, arviz as az
    /// M64 = (1 << 64) - 1
    /// class SplitMix:
    ///     def __init__(self, seed): self.s = seed & M64
    ///     def next(self):
    ///         self.s = (self.s + 0x9E3779B97F4A7C15) & M64
    ///         z = self.s
    ///         z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    ///         z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    ///         return z ^ (z >> 31)
    ///     def uniform(self): return ((self.next() >> 11) + 0.5) / 2.0**53
    ///     def normal(self):
    ///         u1 = self.uniform(); u2 = self.uniform()
    ///         return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
    /// def ar1(seed, chains, draws, rho, shift=0.0):
    ///     g = SplitMix(seed); out = np.zeros((chains, draws))
    ///     for c in range(chains):
    ///         x = g.normal() / math.sqrt(1 - rho * rho)
    ///         for t in range(draws):
    ///             out[c, t] = x + shift * c
    ///             x = rho * x + g.normal()
    ///     return out
    /// cases = {"ar09": ar1(1, 4, 1000, 0.9), "ar05": ar1(2, 4, 1001, 0.5), "iid": ar1(3, 4, 500, 0.0),
    ///          "shift": ar1(4, 4, 500, 0.0, 0.5), "anti": ar1(5, 2, 800, -0.6)}
    /// for k, a in cases.items():
    ///     print(k, az.rhat(a, method="rank"), az.ess(a, method="bulk"), az.ess(a, method="tail"),
    ///           az.ess(a, method="mean"))
    /// ```
    struct SplitMix(u64);
    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn uniform(&mut self) -> f64 {
            ((self.next() >> 11) as f64 + 0.5) / 2f64.powi(53)
        }
        fn normal(&mut self) -> f64 {
            let (u1, u2) = (self.uniform(), self.uniform());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    fn ar1(seed: u64, chains: usize, draws: usize, rho: f64, shift: f64) -> Vec<f64> {
        let mut g = SplitMix(seed);
        let mut out = Vec::with_capacity(chains * draws);
        for c in 0..chains {
            let mut x = g.normal() / (1.0 - rho * rho).sqrt();
            for _ in 0..draws {
                out.push(x + shift * c as f64);
                x = rho * x + g.normal();
            }
        }
        out
    }

    fn close(got: f64, want: f64, what: &str) {
        assert!(
            ((got - want) / want).abs() < 1e-9,
            "{what}: got {got}, ArviZ {want}"
        );
    }

    /// Bit-for-bit the same series as the Python script; values printed by ArviZ.
    #[test]
    fn matches_arviz_on_ar1_series() {
        let x = ar1(1, 4, 1000, 0.9, 0.0);
        assert_eq!(
            x[..3],
            [
                -0.06480936232237543,
                -0.28624794895777306,
                -0.15453220237625603
            ]
        );
        // (name, series, chains, rhat, ess_bulk, ess_tail, ess_mean)
        let cases = [
            (
                "ar09",
                x,
                4,
                1.0209907930640865,
                214.9134720509221,
                305.99358221119456,
                212.10254569224708,
            ),
            (
                "ar05",
                ar1(2, 4, 1001, 0.5, 0.0),
                4,
                1.0017360225163596,
                1208.519633574694,
                2257.5643864429753,
                1211.2474128704587,
            ),
            (
                "iid",
                ar1(3, 4, 500, 0.0, 0.0),
                4,
                1.0005994751936809,
                1947.00656727113,
                1933.7808563078484,
                1938.7374228521974,
            ),
            (
                "shift",
                ar1(4, 4, 500, 0.0, 0.5),
                4,
                1.1588844046887037,
                17.579938710721734,
                242.6134612297542,
                17.5070588404885,
            ),
            (
                "anti",
                ar1(5, 2, 800, -0.6, 0.0),
                2,
                1.0031170364194841,
                5126.591972249479,
                1463.4625453120589,
                5126.591972249479,
            ),
        ];
        for (name, x, m, r, eb, et, em) in cases {
            close(rhat(&x, m), r, &format!("{name} rhat"));
            close(ess_bulk(&x, m), eb, &format!("{name} ess_bulk"));
            close(ess_tail(&x, m), et, &format!("{name} ess_tail"));
            close(ess_mean(&x, m), em, &format!("{name} ess_mean"));
        }
    }

    /// Against theory: AR(1) with coefficient rho has ESS ~ S (1 - rho)/(1 + rho); iid chains R-hat ~ 1,
    /// chains with shifted means R-hat >> 1.01.
    #[test]
    fn agrees_with_ar1_theory() {
        for (seed, rho) in [(11, 0.0), (12, 0.5), (13, 0.8), (14, 0.95)] {
            let (m, n) = (8, 5000);
            let x = ar1(seed, m, n, rho, 0.0);
            let want = (m * n) as f64 * (1.0 - rho) / (1.0 + rho);
            let got = ess_mean(&x, m);
            // Relative sd of an ESS estimate is ~ sqrt(2 tau / S) * (a few); 15% covers all rho here.
            assert!(
                (got / want - 1.0).abs() < 0.15,
                "rho = {rho}: ESS {got}, theory {want}"
            );
            assert!((ess_bulk(&x, m) / want - 1.0).abs() < 0.15);
            // R-hat noise grows with the autocorrelation time (ESS per split chain ~ 64 at rho = 0.95).
            let limit = if rho < 0.9 { 1.01 } else { 1.03 };
            assert!(rhat(&x, m) < limit, "rho = {rho}: R-hat {}", rhat(&x, m));
        }
        let shifted = ar1(21, 4, 1000, 0.3, 0.3);
        assert!(rhat(&shifted, 4) > 1.05);
    }

    #[test]
    fn edge_cases_follow_arviz() {
        assert!(rhat(&[1.0, 2.0, 3.0, 4.0], 1).is_nan());
        assert!(ess_bulk(&[1.0, 2.0, 3.0], 1).is_nan());
        assert!(rhat(&[1.0, f64::NAN, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], 2).is_nan());
        assert_eq!(ess_mean(&[2.0; 40], 4), 40.0);
        // Autocovariance by FFT equals the direct sum.
        let x = ar1(9, 1, 37, 0.7, 0.0);
        let c = autocovariance(&x);
        let m = mean(&x);
        for t in [0, 1, 5, 36] {
            let direct: f64 = (0..37 - t)
                .map(|i| (x[i] - m) * (x[i + t] - m))
                .sum::<f64>()
                / 37.0;
            assert!((c[t] - direct).abs() < 1e-12);
        }
        assert_eq!(quantile(&[3.0, 1.0, 2.0, 4.0], 0.5), 2.5);
        assert_eq!(average_ranks(&[2.0, 1.0, 2.0, 3.0]), [2.5, 1.0, 2.5, 4.0]);
    }
}
