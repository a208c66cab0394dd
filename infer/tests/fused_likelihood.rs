//! The fused-kernel likelihood and the burn-autodiff likelihood of the shipped GIGA-Lens model
//! file agree (values and gradients, through the model file's parameter mapping with fixed and
//! free parameters), on the default f32 device.

use std::path::Path;

use burn::tensor::Device;
use infer::model::likelihood::ModelLikelihood;
use infer::model::observation::Observation;
use infer::pipeline::problem::Problem;
use infer::prob::LogLikelihood;
use rand::SeedableRng;

#[test]
fn fused_and_autodiff_paths_agree_on_gigalens2022() {
    let dev = Device::flex();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/gigalens2022.toml");
    let problem = Problem::load(&model, None, &dev).unwrap();
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
