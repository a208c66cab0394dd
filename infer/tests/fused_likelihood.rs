//! The fused-kernel likelihood and the burn-autodiff likelihood of the shipped GIGA-Lens model
//! file agree (values and gradients, through the model file's parameter mapping with fixed and
//! free parameters), on the default f32 device; also with a 21x21 pixelated PSF, which the fused
//! kernel applies by FFT (`lens::fused::fft`) and burn by direct convolution.

use std::path::Path;

use burn::tensor::Device;
use infer::model::likelihood::ModelLikelihood;
use infer::model::observation::Observation;
use infer::pipeline::problem::Problem;
use infer::prob::LogLikelihood;
use rand::SeedableRng;

#[test]
fn fused_and_autodiff_paths_agree_on_gigalens2022() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml");
    check_agreement(&model);
}

#[test]
fn fused_fft_psf_agrees_with_autodiff_direct_convolution() {
    let tmp = tempfile::tempdir().unwrap();
    // An asymmetric 21x21 kernel (a Moffat-like core with a tilted wing) so a flip would show.
    let n = 21;
    let k: Vec<f32> = (0..n * n)
        .map(|i| {
            let (y, x) = ((i / n) as f32 - 10.0, (i % n) as f32 - 10.0);
            (1.0 + (x * x + y * y) / 6.0).powf(-2.5) + 0.02 * ((x + 2.0 * y) / 8.0).exp().min(3.0)
        })
        .collect();
    let psf = tmp.path().join("psf21.fits");
    arclight_core::fits::write_image_f32(&psf, n, n, &k, &[]).unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml"),
    )
    .unwrap();
    let model = tmp.path().join("gl21.toml");
    std::fs::write(
        &model,
        shipped.replace("psf/moffat_fwhm0.1_13x13.fits", psf.to_str().unwrap()),
    )
    .unwrap();
    check_agreement(&model);
}

fn check_agreement(model: &Path) {
    let dev = Device::flex();
    let problem = Problem::load(model, None, &dev).unwrap();
    let (layout, slots) = problem.layout().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let truth = layout.sample_prior_physical(&mut rng, 1);
    let fwd = problem.forward(slots, &dev.clone().autodiff()).unwrap();
    let blank = Observation::new(Path::new("mem"), 80, 80, vec![0.0; 6400], None, None).unwrap();
    let img = ModelLikelihood::new(fwd.clone(), &blank, false)
        .unwrap()
        .tensor
        .model_images(&truth, 1)
        .unwrap();
    let noisy: Vec<f32> = img
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.2 * ((i as f32 * 1.7).sin()))
        .collect();
    let obs = Observation::new(Path::new("mem"), 80, 80, noisy, None, None).unwrap();
    let fused = ModelLikelihood::new(fwd.clone(), &obs, true).unwrap();
    let tensor = ModelLikelihood::new(fwd, &obs, false).unwrap();
    assert_eq!(fused.backend(), "fused");
    assert_eq!(tensor.backend(), "autodiff");
    let theta = layout.sample_prior_physical(&mut rng, 3);
    let d = layout.dim();
    let (mut lf, mut lt) = (vec![0.0; 3], vec![0.0; 3]);
    let (mut gf, mut gt) = (vec![0.0; 3 * d], vec![0.0; 3 * d]);
    fused.value_and_grad(&theta, 3, &mut lf, &mut gf).unwrap();
    tensor.value_and_grad(&theta, 3, &mut lt, &mut gt).unwrap();
    for b in 0..3 {
        assert!(
            (lf[b] - lt[b]).abs() < 2e-4 * lt[b].abs(),
            "row {b}: fused {} vs autodiff {}",
            lf[b],
            lt[b]
        );
        let scale = gt[b * d..(b + 1) * d]
            .iter()
            .fold(0.0f64, |m, g| m.max(g.abs()));
        for k in 0..d {
            let (a, t) = (gf[b * d + k], gt[b * d + k]);
            assert!(
                (a - t).abs() < 2e-3 * scale + 1e-3 * t.abs(),
                "row {b} param {k}: fused {a} vs autodiff {t}"
            );
        }
    }
}
