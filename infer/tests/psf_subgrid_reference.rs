//! The PSF on the supersampled grid (issue 10, part 1) against lenstronomy 1.14.2's `ImageModel`
//! with `supersampling_convolution=True`: a noise-free `infer mock` of a model file whose every
//! parameter is pinned (EPL + shear, Sersic lens light and source, 40 x 40 pixels of 0.065",
//! supersampling 2) agrees with lenstronomy to rms(diff) < 1% of the background sigma 0.2, for the
//! shipped pixelated Moffat kernel (re-sampled with 100 iterations, GIGA-Lens's simulator, and
//! with 5, lenstronomy's `PSF` class) and a Gaussian PSF; the sub-grid kernel itself matches
//! lenstronomy's `kernel_util.subgrid_kernel`.
//!
//! `infer/tests/data/psf_subgrid_reference.json` was written by this script (in a venv with
//! `pip install lenstronomy==1.14.2 astropy`), run as
//! `python script.py infer/models/psf/moffat_fwhm0.1_13x13.fits infer/tests/data/psf_subgrid_reference.json`:
//! ```text
//! import json, sys
//! import numpy as np
//! from astropy.io import fits
//! from lenstronomy.Data.imaging_data import ImageData
//! from lenstronomy.Data.psf import PSF
//! from lenstronomy.ImSim.image_model import ImageModel
//! from lenstronomy.LensModel.lens_model import LensModel
//! from lenstronomy.LightModel.light_model import LightModel
//! from lenstronomy.Util import kernel_util
//!
//! n, pix, ss = 40, 0.065, 2
//! kw_lens = [dict(theta_E=1.05, gamma=2.1, e1=0.08, e2=-0.05, center_x=0.02, center_y=-0.01),
//!            dict(gamma1=0.03, gamma2=-0.02)]
//! kw_ll = [dict(amp=300.0, R_sersic=1.2, n_sersic=3.0, e1=0.05, e2=0.02, center_x=0.01, center_y=0.0)]
//! kw_src = [dict(amp=150.0, R_sersic=0.15, n_sersic=1.5, e1=0.1, e2=-0.2, center_x=0.08, center_y=0.05)]
//! data = ImageData(image_data=np.zeros((n, n)), transform_pix2angle=np.eye(2) * pix,
//!                  ra_at_xy_0=-(n - 1) / 2 * pix, dec_at_xy_0=-(n - 1) / 2 * pix)
//! lens, ll, src = LensModel(['EPL', 'SHEAR']), LightModel(['SERSIC_ELLIPSE']), LightModel(['SERSIC_ELLIPSE'])
//! kernel = fits.getdata(sys.argv[1]).astype(float)
//! kernel /= kernel.sum()
//! out = {}
//! for name, iters in [("pixelated_iter100", 100), ("pixelated_iter5", 5)]:
//!     sub = kernel_util.subgrid_kernel(kernel.copy(), ss, odd=True, num_iter=iters)
//!     psf = PSF(psf_type='PIXEL', kernel_point_source=sub, point_source_supersampling_factor=ss)
//!     m = ImageModel(data, psf, lens, src, ll, kwargs_numerics=dict(
//!         supersampling_factor=ss, supersampling_convolution=True, supersampling_kernel_size=len(kernel)))
//!     out[name] = m.image(kw_lens, kw_src, kw_ll).ravel().tolist()
//!     out[name + "_kernel"] = sub.ravel().tolist()
//! sigma = 5.6 * (pix / ss) / 4.0  # truncation radius 5.6 sub-pixels: ceil and round agree
//! # lenstronomy's own Gaussian kernel on the sub-grid, convolved as a pixel kernel (its GAUSSIAN type
//! # convolves with scipy's gaussian_filter, mode='nearest': a different image boundary)
//! r = max(round(4.0 * sigma / pix * ss), 1)
//! sub = kernel_util.kernel_gaussian(2 * r + 1, pix / ss, sigma * 2 * np.sqrt(2 * np.log(2)))
//! psf = PSF(psf_type='PIXEL', kernel_point_source=sub, point_source_supersampling_factor=ss)
//! m = ImageModel(data, psf, lens, src, ll, kwargs_numerics=dict(
//!     supersampling_factor=ss, supersampling_convolution=True, supersampling_kernel_size=99))
//! out["gaussian"] = m.image(kw_lens, kw_src, kw_ll).ravel().tolist()
//! psf = PSF(psf_type='GAUSSIAN', fwhm=sigma * 2 * np.sqrt(2 * np.log(2)), pixel_size=pix, truncation=4.0)
//! m = ImageModel(data, psf, lens, src, ll, kwargs_numerics=dict(
//!     supersampling_factor=ss, supersampling_convolution=True))
//! g = m.image(kw_lens, kw_src, kw_ll)
//! a = np.array(out["gaussian"]).reshape(n, n)
//! print("GAUSSIAN type vs sub-grid pixel kernel: rms all", np.sqrt(np.mean((g - a) ** 2)),
//!       "interior", np.sqrt(np.mean((g - a)[4:-4, 4:-4] ** 2)), file=sys.stderr)
//! out["gaussian_sigma"] = sigma
//! # the former order (average, then convolve with the pixel kernel), for the size of the change
//! psf = PSF(psf_type='PIXEL', kernel_point_source=kernel)
//! m = ImageModel(data, psf, lens, src, ll, kwargs_numerics=dict(supersampling_factor=ss))
//! out["pixelated_pixel_order"] = m.image(kw_lens, kw_src, kw_ll).ravel().tolist()
//! json.dump(out, open(sys.argv[2], "w"))
//! ```
//! `supersampling_kernel_size` is the whole kernel so that lenstronomy, like GIGA-Lens, convolves
//! all of it on the sub-grid (its default 5 convolves only the kernel's core there). lenstronomy's
//! image rows run upwards (row 0 = lowest y), the order of the FITS file `infer mock` writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use infer::lens::psf::Psf;

const BKG_SIGMA: f64 = 0.2;

fn reference() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/psf_subgrid_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn values(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn moffat() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models/psf/moffat_fwhm0.1_13x13.fits")
}

/// A GIGA-Lens-shaped model file with every parameter pinned, and `psf` as its `[psf]` table.
fn pinned_model(dir: &Path, psf: &str) -> PathBuf {
    let text = format!(
        r#"name = "pinned"
[grid]
n = 40
pixel_scale = 0.065
supersample = 2
[psf]
{psf}
[noise]
sigma_bkg = 0.2
[[mass]]
type = "epl"
theta_e = 1.05
gamma = 2.1
e1 = 0.08
e2 = -0.05
center_x = 0.02
center_y = -0.01
[[mass]]
type = "shear"
gamma1 = 0.03
gamma2 = -0.02
[[lens_light]]
type = "sersic"
amp = 300.0
r_sersic = 1.2
n_sersic = 3.0
e1 = 0.05
e2 = 0.02
center_x = 0.01
center_y = 0.0
[[source]]
type = "sersic"
amp = 150.0
r_sersic = 0.15
n_sersic = 1.5
e1 = 0.1
e2 = -0.2
center_x = 0.08
center_y = 0.05
"#
    );
    let p = dir.join("pinned.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// `infer mock` of the pinned model: the noise-free image in FITS row order.
fn mock(dir: &Path, psf: &str) -> Vec<f64> {
    let model = pinned_model(dir, psf);
    let out = dir.join("mock");
    let o = Command::new(env!("CARGO_BIN_EXE_infer"))
        .args(["mock", "--model"])
        .arg(&model)
        .args(["--seed", "1", "--out"])
        .arg(&out)
        .env("ARCLIGHT_QUIET", "1")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "infer mock of a pinned model: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    arclight_core::fits::read_image_f64(&out.join("model.fits"), 0)
        .unwrap()
        .data
}

fn rms_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    (a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

#[test]
fn subgrid_kernel_matches_lenstronomy() {
    let r = reference();
    let img = arclight_core::fits::read_image_f64(&moffat(), 0).unwrap();
    let psf = Psf::pixelated(img.ny, img.nx, img.data).unwrap();
    for (key, iters) in [
        ("pixelated_iter100_kernel", 100),
        ("pixelated_iter5_kernel", 5),
    ] {
        let want = values(&r[key]);
        let (ny, nx, got) = psf.on_subgrid(2, 0.065, iters).kernel_2d();
        assert_eq!((ny, nx), (25, 25));
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-12, "{key}: max |diff| {worst:e}");
    }
}

#[test]
fn pinned_mocks_match_lenstronomy_supersampling_convolution() {
    let r = reference();
    let dir = tempfile::tempdir().unwrap();
    let file = moffat().display().to_string();
    let sigma = r["gaussian_sigma"].as_f64().unwrap();
    let cases = [
        (
            "pixelated_iter100",
            format!("type = \"pixelated\"\nfile = \"{file}\""),
        ),
        (
            "pixelated_iter5",
            format!("type = \"pixelated\"\nfile = \"{file}\"\nsubgrid_iterations = 5"),
        ),
        ("gaussian", format!("type = \"gaussian\"\nsigma = {sigma}")),
    ];
    for (key, psf) in cases {
        let want = values(&r[key]);
        let got = mock(dir.path(), &psf);
        let rms = rms_diff(&got, &want);
        assert!(
            rms < 0.01 * BKG_SIGMA,
            "{key}: rms(diff) {rms:e} vs lenstronomy (bar {:e})",
            0.01 * BKG_SIGMA
        );
        eprintln!(
            "{key}: rms(diff) {rms:.2e} = {:.3}% of sigma_bkg",
            100.0 * rms / BKG_SIGMA
        );
    }
    // The former order stays available and is what lenstronomy's default numerics compute.
    let want = values(&r["pixelated_pixel_order"]);
    let got = mock(
        dir.path(),
        &format!("type = \"pixelated\"\nfile = \"{file}\"\nconvolution = \"pixel\""),
    );
    let rms = rms_diff(&got, &want);
    assert!(rms < 0.01 * BKG_SIGMA, "pixel order: rms(diff) {rms:e}");
    // ... and differs from the sub-grid image by far more than the agreement above.
    let change = rms_diff(&want, &values(&r["pixelated_iter100"]));
    assert!(change > 5.0 * 0.01 * BKG_SIGMA, "order change {change:e}");
}
