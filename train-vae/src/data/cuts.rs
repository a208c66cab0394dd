//! The paper's data-set cuts (Chianese et al. 2020, Sec. 2.2), each with its default, and the
//! per-cut removal counts that `prepare` prints and records.
//!
//! Order in which a row meets the cuts (a row is counted under the first cut it fails):
//! 1. `image_file_missing`: the GAL_FILENAME file is absent (skipped, the file named once).
//! 2. `sersic_fit_failed`, 3. `sersic_fit_unphysical`: see [`sersic_verdict`]; only when the
//!    catalog's `_fits.fits` companion has the Sersic columns (`--no-fit-cut` disables).
//! 4. `noise_variance_invalid`: NOISE_VARIANCE zero, negative or not finite, and
//!    5. `non_finite_pixels`: a NaN or infinite pixel. Both are **errors** by default (the input
//!    is broken); `--skip-bad-stamps` turns them into counted cuts. A NaN never reaches a set.
//! 6. `too_small`: a side shorter than `--min-size` (64).
//! 7. `snr_below_min`, 8. `snr_above_max`: `snr_min <= max(I_1/4)/sigma_noise <= snr_max`
//!    (15 and 50), see [`SnrNoise`] for sigma_noise.
//! 9. `non_positive_peak`: the 64x64 image has no positive pixel and cannot be divided by its
//!    maximum (only reachable when `--snr-min` is 0 or below).

use super::preprocess::{
    area_noise_factor, block_average, crop_centre, crop_square, downscale_area, max_value,
    normalise_by_max,
};
use arclight_vae::dataset::IMAGE_SIZE;
use serde::{Deserialize, Serialize};

/// One reason for removing a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cut {
    ImageFileMissing,
    SersicFitFailed,
    SersicFitUnphysical,
    NoiseVarianceInvalid,
    NonFinitePixels,
    TooSmall,
    SnrBelowMin,
    SnrAboveMax,
    NonPositivePeak,
}

impl Cut {
    /// Every cut, in the order rows meet them.
    pub const ALL: [Cut; 9] = [
        Cut::ImageFileMissing,
        Cut::SersicFitFailed,
        Cut::SersicFitUnphysical,
        Cut::NoiseVarianceInvalid,
        Cut::NonFinitePixels,
        Cut::TooSmall,
        Cut::SnrBelowMin,
        Cut::SnrAboveMax,
        Cut::NonPositivePeak,
    ];

    /// Stable name used in printed summaries and the provenance JSON.
    pub fn name(self) -> &'static str {
        match self {
            Cut::ImageFileMissing => "image_file_missing",
            Cut::SersicFitFailed => "sersic_fit_failed",
            Cut::SersicFitUnphysical => "sersic_fit_unphysical",
            Cut::NoiseVarianceInvalid => "noise_variance_invalid",
            Cut::NonFinitePixels => "non_finite_pixels",
            Cut::TooSmall => "too_small",
            Cut::SnrBelowMin => "snr_below_min",
            Cut::SnrAboveMax => "snr_above_max",
            Cut::NonPositivePeak => "non_positive_peak",
        }
    }

    /// The command-line flag that controls the cut (for "the data set is empty after ..." errors).
    pub fn flag(self) -> &'static str {
        match self {
            Cut::ImageFileMissing => "--catalog/--folder (the image files)",
            Cut::SersicFitFailed | Cut::SersicFitUnphysical => "--no-fit-cut",
            Cut::NoiseVarianceInvalid | Cut::NonFinitePixels => "--skip-bad-stamps",
            Cut::TooSmall => "--min-size",
            Cut::SnrBelowMin => "--snr-min",
            Cut::SnrAboveMax => "--snr-max",
            Cut::NonPositivePeak => "--snr-min",
        }
    }

    fn index(self) -> usize {
        Cut::ALL.iter().position(|&c| c == self).unwrap_or(0)
    }
}

/// How many rows each cut removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CutCounts {
    counts: [usize; 9],
}

impl CutCounts {
    pub fn add(&mut self, cut: Cut) {
        self.counts[cut.index()] += 1;
    }

    pub fn get(&self, cut: Cut) -> usize {
        self.counts[cut.index()]
    }

    pub fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    pub fn merge(&mut self, other: &CutCounts) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
    }

    /// `{cut name: count}` in cut order.
    pub fn to_json(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = Cut::ALL
            .iter()
            .map(|&c| (c.name().to_string(), self.get(c).into()))
            .collect();
        map.into()
    }

    /// The last cut (in order) that removed anything: the one that emptied an empty set.
    pub fn last_nonzero(&self) -> Option<Cut> {
        Cut::ALL.iter().rev().copied().find(|&c| self.get(c) > 0)
    }
}

/// Which noise sigma divides max(I_1/4) in the S/N cut.
///
/// The paper (Sec. 2.2) uses "σ_noise, the standard deviation of the pixel noise" as provided
/// per image (the catalog's NOISE_VARIANCE, per native 0.03" pixel) and I_1/4, "the image
/// downscaled by a factor of 4". Area averaging keeps pixel values in native surface-brightness
/// units, so `Native` divides the two directly; this is the default and the literal reading.
/// The alternatives scale sigma_noise to the pixels actually compared, for users who want a
/// statistically consistent S/N (they select fainter galaxies at the same thresholds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SnrNoise {
    /// sigma_noise = sqrt(NOISE_VARIANCE), the native-pixel noise (paper, default).
    Native,
    /// sigma of one 64x64 pixel after area averaging: sqrt(NOISE_VARIANCE) * f(s).
    Image,
    /// sigma of one I_1/4 pixel: sqrt(NOISE_VARIANCE) * f(s) / snr_block (4).
    Block,
}

/// The cut settings; `Default` is the paper's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CutConfig {
    /// Drop failed / unphysical Sersic fits when the fit file has them (paper: yes).
    pub fit_cut: bool,
    /// Minimum stamp side in native pixels (paper: 64).
    pub min_size: usize,
    /// S/N window (paper: 15 and 50).
    pub snr_min: f64,
    pub snr_max: f64,
    /// Which sigma the S/N uses (paper: native).
    pub snr_noise: SnrNoise,
    /// Block-averaging factor of I_1/4 (paper: 4).
    pub snr_block: usize,
    /// Count NaN stamps and invalid noise variances as cuts instead of failing.
    pub skip_bad_stamps: bool,
    /// Side (native pixels) of the centred square kept before downscaling, when smaller than the
    /// stamp: for small galaxies in large stamps (not in the paper, whose stamps are cut to fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<usize>,
}

impl Default for CutConfig {
    fn default() -> Self {
        CutConfig {
            fit_cut: true,
            min_size: 64,
            snr_min: 15.0,
            snr_max: 50.0,
            snr_noise: SnrNoise::Native,
            snr_block: 4,
            skip_bad_stamps: false,
            crop: None,
        }
    }
}

/// Sersic-fit columns of one galaxy in the `_fits.fits` companion.
#[derive(Clone, Debug, PartialEq)]
pub struct SersicFit {
    /// fit_status[4], the status of the single-Sersic fit (GalSim: 1..=4 is success).
    pub status: i64,
    /// viable_sersic (1 = usable), when the column exists.
    pub viable: Option<bool>,
    /// sersicfit: intensity at hlr, hlr along the major axis (pixels), n, q, boxiness, x0, y0,
    /// position angle.
    pub params: [f64; 8],
    /// hlr[0]: circularised half-light radius of the Sersic fit in arcsec, when present.
    pub hlr_arcsec: Option<f64>,
}

/// Largest Sersic index GalSim can draw; fits beyond it are unusable.
pub const SERSIC_N_MAX: f64 = 6.2;

/// COSMOS pixel scale of the fit parameters (arcsec / pixel).
const COSMOS_PIXEL_SCALE: f64 = 0.03;

/// Decide the Sersic-fit cut for one galaxy ("we discard the small number of galaxies for
/// which the Sérsic fits failed or gave unphysical parameters", Sec. 2.2). `None` = keep.
///
/// - failed: fit_status[4] outside 1..=4 (GalSim's success codes) or viable_sersic = 0, or no
///   fit row for the galaxy;
/// - unphysical: a non-finite parameter, intensity <= 0, half-light radius <= 0, q outside
///   (0, 1], n outside (0, 6.2] (GalSim's Sersic range), or n >= 5 together with a circularised
///   half-light radius >= 1 arcsec, GalSim's sign of a sky-subtraction failure (its "marginal"
///   exclusion).
pub fn sersic_verdict(fit: Option<&SersicFit>) -> Option<Cut> {
    let Some(fit) = fit else {
        return Some(Cut::SersicFitFailed);
    };
    if !(1..=4).contains(&fit.status) || fit.viable == Some(false) {
        return Some(Cut::SersicFitFailed);
    }
    let [intensity, hlr_pix, n, q, ..] = fit.params;
    if fit.params.iter().any(|v| !v.is_finite())
        || intensity <= 0.0
        || hlr_pix <= 0.0
        || !(q > 0.0 && q <= 1.0)
        || !(n > 0.0 && n <= SERSIC_N_MAX)
    {
        return Some(Cut::SersicFitUnphysical);
    }
    let hlr = fit
        .hlr_arcsec
        .filter(|h| h.is_finite())
        .unwrap_or(COSMOS_PIXEL_SCALE * hlr_pix * q.sqrt());
    if n >= 5.0 && hlr >= 1.0 {
        return Some(Cut::SersicFitUnphysical);
    }
    None
}

/// A raw stamp as read from a catalog or folder, before any image cut.
#[derive(Clone, Debug)]
pub struct RawStamp {
    pub ident: i64,
    pub ny: usize,
    pub nx: usize,
    /// `ny * nx` pixels, row-major in the file's row order (FITS: first row = bottom).
    pub data: Vec<f64>,
    /// Pixel-noise sigma in the stamp's own pixels and units.
    pub sigma: f64,
    /// Where `sigma` came from (for the message when it is unusable).
    pub sigma_from: SigmaFrom,
    /// Where it came from (`file[HDU n]`), for error messages.
    pub origin: String,
}

/// The origin of a stamp's noise sigma.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SigmaFrom {
    /// sqrt(NOISE_VARIANCE) of the catalog row.
    Catalog,
    /// Robust estimate from a border ring this many pixels wide (folder cutouts).
    Border { width: usize },
    /// `--noise-sigma`.
    Given,
}

/// A stamp that passed every cut: the stored 64x64 image and its numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub ident: i64,
    /// `IMAGE_SIZE²` pixels divided by the maximum pixel.
    pub image: Vec<f32>,
    /// Noise sigma of the stored image: sigma * f(s) / peak.
    pub noise_sigma: f32,
    /// The S/N quantity the cut used.
    pub snr: f64,
    /// Where the stamp came from (the raw stamp's `origin`).
    pub source: String,
}

/// Why a stamp is not stored: a counted cut, or an error (bad input, not skipped).
#[derive(Debug)]
pub enum Rejection {
    Cut(Cut),
    Error(anyhow::Error),
}

/// Check a noise variance or sigma (`what` names it): it must be positive and finite, else a
/// counted cut or an error, per `skip_bad_stamps`.
pub fn check_noise(value: f64, origin: &str, what: &str, cfg: &CutConfig) -> Result<(), Rejection> {
    if value.is_finite() && value > 0.0 {
        return Ok(());
    }
    if cfg.skip_bad_stamps {
        Err(Rejection::Cut(Cut::NoiseVarianceInvalid))
    } else {
        Err(Rejection::Error(anyhow::anyhow!(
            "{origin}: {what} is {value} (must be positive and finite; --skip-bad-stamps counts such rows as a cut)"
        )))
    }
}

/// The S/N quantity of Sec. 2.2 for a 64x64 image in native surface-brightness units whose
/// native stamp side was `s` and native noise `sigma`.
pub fn snr(image64: &[f64], s: usize, sigma: f64, cfg: &CutConfig) -> f64 {
    let k = cfg.snr_block;
    let i_quarter = block_average(IMAGE_SIZE, image64, k);
    let sigma_noise = match cfg.snr_noise {
        SnrNoise::Native => sigma,
        SnrNoise::Image => sigma * area_noise_factor(s, IMAGE_SIZE),
        SnrNoise::Block => sigma * area_noise_factor(s, IMAGE_SIZE) / k as f64,
    };
    max_value(&i_quarter) / sigma_noise
}

/// Apply the image cuts (5-9 above) and the preprocessing to one stamp.
///
/// Non-finite pixels are checked before the noise sigma: a folder cutout's sigma is estimated
/// from its pixels, so a NaN pixel would otherwise show up as a NaN sigma. (A catalog row's
/// NOISE_VARIANCE is checked before its stamp is read, so the cut order above holds.)
pub fn prepare_stamp(stamp: &RawStamp, cfg: &CutConfig) -> Result<Prepared, Rejection> {
    if let Some(bad) = stamp.data.iter().position(|v| !v.is_finite()) {
        if cfg.skip_bad_stamps {
            return Err(Rejection::Cut(Cut::NonFinitePixels));
        }
        let n_bad = stamp.data.iter().filter(|v| !v.is_finite()).count();
        return Err(Rejection::Error(anyhow::anyhow!(
            "{}: IDENT {}: {} is {}{} (--skip-bad-stamps counts such stamps as a cut)",
            stamp.origin,
            stamp.ident,
            arclight_core::pixel::in_file_order(bad, stamp.nx),
            stamp.data[bad],
            if n_bad > 1 {
                format!(", the first of {n_bad} non-finite pixels")
            } else {
                String::new()
            }
        )));
    }
    match stamp.sigma_from {
        SigmaFrom::Border { width } if !(stamp.sigma.is_finite() && stamp.sigma > 0.0) => {
            if cfg.skip_bad_stamps {
                return Err(Rejection::Cut(Cut::NoiseVarianceInvalid));
            }
            return Err(Rejection::Error(anyhow::anyhow!(
                "{}: the noise sigma estimated from the stamp border (1.4826 MAD of the {width}-pixel ring) is {}: \
                 the sky there is constant (clipped to black, or a noiseless render); give the pixel noise with \
                 --noise-sigma SIGMA (in the cutout's pixel units), or drop such stamps with --skip-bad-stamps",
                stamp.origin,
                stamp.sigma
            )));
        }
        _ => check_noise(
            stamp.sigma,
            &stamp.origin,
            &format!("IDENT {}: the noise sigma", stamp.ident),
            cfg,
        )?,
    }
    if stamp.ny.min(stamp.nx) < cfg.min_size {
        return Err(Rejection::Cut(Cut::TooSmall));
    }
    let (s, square) = crop_centre(stamp.ny, stamp.nx, &stamp.data);
    let (s, square) = match cfg.crop {
        Some(c) if c < s => (c, crop_square(s, &square, c)),
        _ => (s, square),
    };
    let image64 = downscale_area(s, &square, IMAGE_SIZE);
    let snr = snr(&image64, s, stamp.sigma, cfg);
    if snr.is_nan() || snr < cfg.snr_min {
        return Err(Rejection::Cut(Cut::SnrBelowMin));
    }
    if snr > cfg.snr_max {
        return Err(Rejection::Cut(Cut::SnrAboveMax));
    }
    let Some((image, peak)) = normalise_by_max(&image64) else {
        return Err(Rejection::Cut(Cut::NonPositivePeak));
    };
    let noise_sigma = (stamp.sigma * area_noise_factor(s, IMAGE_SIZE) / peak) as f32;
    Ok(Prepared {
        ident: stamp.ident,
        image,
        noise_sigma,
        snr,
        source: stamp.origin.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(status: i64, params: [f64; 8]) -> SersicFit {
        SersicFit {
            status,
            viable: Some(true),
            params,
            hlr_arcsec: None,
        }
    }
    const GOOD: [f64; 8] = [0.02, 17.0, 0.8, 0.5, 0.0, 150.0, 150.0, 0.3];

    #[test]
    fn sersic_cut_decisions() {
        assert_eq!(sersic_verdict(Some(&fit(1, GOOD))), None);
        assert_eq!(sersic_verdict(Some(&fit(4, GOOD))), None);
        assert_eq!(
            sersic_verdict(Some(&fit(0, GOOD))),
            Some(Cut::SersicFitFailed)
        );
        assert_eq!(
            sersic_verdict(Some(&fit(5, GOOD))),
            Some(Cut::SersicFitFailed)
        );
        assert_eq!(sersic_verdict(None), Some(Cut::SersicFitFailed));
        let mut f = fit(1, GOOD);
        f.viable = Some(false);
        assert_eq!(sersic_verdict(Some(&f)), Some(Cut::SersicFitFailed));
        for (i, v) in [
            (0, -0.1),
            (1, 0.0),
            (2, 7.0),
            (3, 1.2),
            (3, 0.0),
            (6, f64::NAN),
        ] {
            let mut p = GOOD;
            p[i] = v;
            assert_eq!(
                sersic_verdict(Some(&fit(1, p))),
                Some(Cut::SersicFitUnphysical),
                "param {i}={v}"
            );
        }
        // n = 6 at the fit bound is kept when compact, cut when also >= 1 arcsec (sky error).
        let mut p = GOOD;
        p[2] = 6.0;
        assert_eq!(sersic_verdict(Some(&fit(1, p))), None);
        let mut f = fit(1, p);
        f.hlr_arcsec = Some(1.34);
        assert_eq!(sersic_verdict(Some(&f)), Some(Cut::SersicFitUnphysical));
    }

    /// A constructed stamp: flat 4x4-block peak of height `h` on zero background, 128x128.
    fn block_stamp(h: f64, sigma: f64) -> RawStamp {
        let n = 128;
        let mut data = vec![0.0; n * n];
        // One 8x8 native block -> one 4x4 block of the 64x64 image -> one I_1/4 pixel of h.
        for y in 64..72 {
            for x in 64..72 {
                data[y * n + x] = h;
            }
        }
        RawStamp {
            ident: 1,
            ny: n,
            nx: n,
            data,
            sigma,
            sigma_from: SigmaFrom::Catalog,
            origin: "test".into(),
        }
    }

    #[test]
    fn snr_cut_on_constructed_images() {
        let cfg = CutConfig::default();
        // max(I_1/4) = h exactly, sigma_noise = sigma (native): S/N = h / sigma.
        let p = prepare_stamp(&block_stamp(3.0, 0.1), &cfg).unwrap();
        assert!((p.snr - 30.0).abs() < 1e-9, "{}", p.snr);
        // Normalised by max (= h): noise sigma = sigma * 0.5 (128 -> 64) / h.
        assert!((p.noise_sigma as f64 - 0.1 * 0.5 / 3.0).abs() < 1e-7);
        assert_eq!(p.image.iter().cloned().fold(f32::MIN, f32::max), 1.0);
        assert!(matches!(
            prepare_stamp(&block_stamp(1.4, 0.1), &cfg),
            Err(Rejection::Cut(Cut::SnrBelowMin))
        ));
        assert!(matches!(
            prepare_stamp(&block_stamp(5.1, 0.1), &cfg),
            Err(Rejection::Cut(Cut::SnrAboveMax))
        ));
        // Boundaries are inclusive.
        assert!(prepare_stamp(&block_stamp(1.5, 0.1), &cfg).is_ok());
        // Block noise: sigma * 0.5 / 4 -> S/N 8x larger.
        let blk = CutConfig {
            snr_noise: SnrNoise::Block,
            snr_max: 1e9,
            ..cfg.clone()
        };
        assert!((prepare_stamp(&block_stamp(3.0, 0.1), &blk).unwrap().snr - 240.0).abs() < 1e-9);
    }

    fn skip_cfg() -> CutConfig {
        CutConfig {
            skip_bad_stamps: true,
            ..CutConfig::default()
        }
    }

    #[test]
    fn bad_stamps_error_or_count() {
        let cfg = CutConfig::default();
        let mut s = block_stamp(3.0, 0.1);
        s.data[5] = f64::NAN;
        match prepare_stamp(&s, &cfg) {
            Err(Rejection::Error(e)) => assert!(
                e.to_string().contains(
                    "IDENT 1: pixel (x=6, y=1) (FITS, 1-based) = [0, 5] (numpy [row, col]) is NaN ("
                ),
                "{e}"
            ),
            other => panic!("{other:?}"),
        }
        // a folder cutout: its border sigma is NaN too, yet the NaN pixel is what is reported
        let mut f = s.clone();
        f.sigma = f64::NAN;
        f.sigma_from = SigmaFrom::Border { width: 8 };
        f.data[128 * 70 + 3] = f64::INFINITY;
        match prepare_stamp(&f, &cfg) {
            Err(Rejection::Error(e)) => {
                let e = e.to_string();
                assert!(
                    e.contains(
                        "[0, 5] (numpy [row, col]) is NaN, the first of 2 non-finite pixels"
                    ) && !e.contains("noise sigma"),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            prepare_stamp(&f, &skip_cfg()),
            Err(Rejection::Cut(Cut::NonFinitePixels))
        ));
        // a constant (clipped) border: --noise-sigma is the remedy named first
        let mut flat = block_stamp(3.0, 0.0);
        flat.sigma_from = SigmaFrom::Border { width: 8 };
        match prepare_stamp(&flat, &cfg) {
            Err(Rejection::Error(e)) => {
                let e = e.to_string();
                assert!(
                    e.contains("estimated from the stamp border")
                        && e.contains("is 0")
                        && e.contains("--noise-sigma SIGMA"),
                    "{e}"
                )
            }
            other => panic!("{other:?}"),
        }
        let skip = CutConfig {
            skip_bad_stamps: true,
            ..cfg.clone()
        };
        assert!(matches!(
            prepare_stamp(&s, &skip),
            Err(Rejection::Cut(Cut::NonFinitePixels))
        ));
        let z = block_stamp(3.0, 0.0);
        assert!(matches!(prepare_stamp(&z, &cfg), Err(Rejection::Error(_))));
        assert!(matches!(
            prepare_stamp(&z, &skip),
            Err(Rejection::Cut(Cut::NoiseVarianceInvalid))
        ));
        let mut small = block_stamp(3.0, 0.1);
        small.nx = 63;
        small.data.truncate(128 * 63);
        assert!(matches!(
            prepare_stamp(&small, &cfg),
            Err(Rejection::Cut(Cut::TooSmall))
        ));
    }
}
