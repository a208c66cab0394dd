//! The fused VAE-source likelihood (placed-image lens kernel + decoder, folded on the host or on
//! burn autodiff) and the all-autodiff tensor likelihood agree on the demo model (EPL, e1/e2), a
//! (q, phi) variant and an SIE variant: values, gradients of every lens/placement parameter and of
//! every latent column, and the model images, on the default f32 device, with a small random
//! decoder.

use std::path::Path;
use std::sync::Arc;

use arclight_vae::model::{Decoder, VaeConfig};
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use infer::model::forward::ForwardModel;
use infer::model::layout;
use infer::model::likelihood::{FusedPath, ModelLikelihood};
use infer::model::observation::Observation;
use infer::model::spec::ModelSpec;
use infer::prob::{LogLikelihood, MvNormal};
use infer::source::folded_decoder::FoldedDecoder;
use infer::source::vae::Decode;
use rand::SeedableRng;

const LATENT: usize = 8;

/// A small randomly initialised decoder (validation mode), its last layer's weights rescaled so
/// the output is of order one and the lensed source dominates the 80x80 image: the Appendix D
/// initialisation (std 0.02) alone gives images of ~1e-5. Also folded for the host path.
struct ScaledDecoder {
    net: Decoder,
    folded: FoldedDecoder,
}

impl ScaledDecoder {
    fn new(device: &Device) -> Self {
        let config = VaeConfig {
            latent_dim: LATENT,
            widths: [8, 16, 32, 64],
            head_width: 64,
            ..VaeConfig::default()
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let net = Decoder::new(&config, &mut rng, device).valid();
        let z: Vec<f32> = (0..4 * LATENT).map(|i| (i as f32 * 0.61).sin()).collect();
        let probe = net.forward(Tensor::from_data(
            burn::tensor::TensorData::new(z, [4, LATENT]),
            device,
        ));
        let peak = probe
            .into_data()
            .iter::<f32>()
            .fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(peak > 0.0, "random decoder gives a blank image");
        let mut net = net;
        net.deconv5.weight = Param::from_tensor(net.deconv5.weight.val() / peak as f64);
        let folded = FoldedDecoder::from_decoder(&net, 64).unwrap();
        ScaledDecoder { net, folded }
    }
}

impl Decode for ScaledDecoder {
    fn latent_dim(&self) -> usize {
        LATENT
    }
    fn decode(&self, z: Tensor<2>) -> Tensor<3> {
        let b = z.dims()[0];
        self.net.forward(z).reshape([b, 64, 64])
    }
    fn folded(&self) -> Option<&FoldedDecoder> {
        Some(&self.folded)
    }
}

fn demo_text() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo.toml")).unwrap()
}

/// demo.toml with the EPL ellipticity as (q, phi) (Chianese eqs. 19-20).
fn q_phi_text() -> String {
    let text = demo_text();
    let lines: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("e1 ") {
                r#"q        = "truncnormal(0.75, 0.1, 0.4, 1)""#.to_string()
            } else if l.starts_with("e2 ") {
                r#"phi      = "normal(0, 1)""#.to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    let out = lines.join("\n");
    assert!(out.contains("q        =") && !out.contains("\ne1 "));
    out
}

/// demo.toml with an SIE (gamma = 2, no gamma parameter) instead of the EPL.
fn sie_text() -> String {
    let text = demo_text().replace("type = \"epl\"", "type = \"sie\"");
    let out: Vec<&str> = text.lines().filter(|l| !l.starts_with("gamma ")).collect();
    let out = out.join("\n");
    assert!(out.contains("type = \"sie\"") && !out.contains("\ngamma "));
    out
}

fn check(text: &str, name: &str, seed: u64) {
    for folded in [true, false] {
        check_path(text, name, seed, folded);
    }
}

fn check_path(text: &str, name: &str, seed: u64, folded: bool) {
    let dev = Device::flex();
    let ad = dev.clone().autodiff();
    let spec = ModelSpec::parse(text, Path::new(name)).unwrap();
    let mut eye = vec![0.0; LATENT * LATENT];
    for k in 0..LATENT {
        eye[k * LATENT + k] = 1.0;
    }
    let prior = MvNormal::new(vec![0.0; LATENT], &eye).unwrap();
    let (layout, slots) = layout::build(&spec, Some(prior)).unwrap();
    let decoder: Arc<dyn Decode> = Arc::new(ScaledDecoder::new(&dev));
    let fwd = ForwardModel::new(spec, slots, &ad, Some(decoder), &[None]).unwrap();
    let (ny, nx) = (80, 80);
    let blank = Observation::new(Path::new("mem"), ny, nx, vec![0.0; ny * nx], None, None).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let truth = layout.sample_prior_physical(&mut rng, 1);
    let img = ModelLikelihood::new(fwd.clone(), &blank, false)
        .unwrap()
        .tensor
        .model_images(&truth, 1)
        .unwrap();
    let peak = img.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        peak > 0.2,
        "{name}: the lensed source is too faint ({peak})"
    );
    let noisy: Vec<f32> = img
        .iter()
        .enumerate()
        .map(|(i, v)| v + 0.05 * ((i as f32 * 1.7).sin()))
        .collect();
    let obs = Observation::new(Path::new("mem"), ny, nx, noisy, None, None).unwrap();
    let fused = ModelLikelihood::new(fwd.clone(), &obs, true)
        .unwrap()
        .with_folded_decoder(folded);
    let tensor = ModelLikelihood::new(fwd, &obs, false).unwrap();
    let expected = if folded {
        "fused+folded decoder"
    } else {
        "fused+burn decoder"
    };
    assert_eq!(fused.backend(), expected, "{name}");
    assert_eq!(tensor.backend(), "autodiff");

    let b = 3;
    let theta = layout.sample_prior_physical(&mut rng, b);
    let d = layout.dim();
    let (mut lf, mut lt, mut lv) = (vec![0.0; b], vec![0.0; b], vec![0.0; b]);
    let (mut gf, mut gt) = (vec![0.0; b * d], vec![0.0; b * d]);
    fused.value_and_grad(&theta, b, &mut lf, &mut gf).unwrap();
    tensor.value_and_grad(&theta, b, &mut lt, &mut gt).unwrap();
    fused.value(&theta, b, &mut lv).unwrap();
    let names = layout.column_names();
    for r in 0..b {
        assert!(
            (lf[r] - lt[r]).abs() < 2e-4 * lt[r].abs(),
            "{name} row {r}: fused {} vs autodiff {}",
            lf[r],
            lt[r]
        );
        assert!(
            (lv[r] - lf[r]).abs() < 1e-6 * lf[r].abs(),
            "{name} row {r}: value() {} vs value_and_grad() {}",
            lv[r],
            lf[r]
        );
        let scale = gt[r * d..(r + 1) * d]
            .iter()
            .fold(0.0f64, |m, g| m.max(g.abs()));
        assert!(scale > 0.0);
        for k in 0..d {
            let (a, t) = (gf[r * d + k], gt[r * d + k]);
            assert!(
                (a - t).abs() < 2e-3 * scale + 1e-3 * t.abs(),
                "{name} row {r} {}: fused {a} vs autodiff {t} (max |grad| {scale})",
                names[k]
            );
        }
    }
    // The fused path's noise-free images equal the tensor render.
    let Some(FusedPath::Vae(f)) = &fused.fused else {
        panic!("{name}: not the VAE fused path")
    };
    let mf = f.model_images(&theta, b);
    let mt = tensor.tensor.model_images(&theta, b).unwrap();
    let top = mt.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (a, t)) in mf.iter().zip(&mt).enumerate() {
        assert!(
            (a - t).abs() < 1e-4 * top,
            "{name} pixel {i}: fused {a} vs tensor {t}"
        );
    }
}

#[test]
fn fused_vae_path_agrees_with_autodiff_on_demo_e1_e2() {
    check(&demo_text(), "demo.toml", 21);
}

#[test]
fn fused_vae_path_agrees_with_autodiff_on_q_phi_variant() {
    check(&q_phi_text(), "demo_q_phi.toml", 22);
}

#[test]
fn fused_vae_path_agrees_with_autodiff_on_sie_variant() {
    check(&sie_text(), "demo_sie.toml", 23);
}
