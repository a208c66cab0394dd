//! Checkpoint round trip (bit-identical decoder output) and clear errors on mismatches.

mod train_support;

use arclight_vae::checkpoint::{self, load_decoder, load_vae};
use arclight_vae::model::{Decoder, Vae};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::Path;
use train_support::{hdf5_guard, quiet, tiny_arch, tiny_config, tiny_data};

fn z_batch(d: usize, device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..3 * d)
        .map(|i| ((i as f32) * 0.37).sin() * 1.5)
        .collect();
    Tensor::from_data(TensorData::new(v, [3, d]), device)
}

fn out(decoder: &Decoder, device: &Device) -> Vec<f32> {
    decoder
        .forward(z_batch(decoder.latent_dim, device))
        .into_data()
        .try_to_vec()
        .unwrap()
}

#[test]
fn saved_weights_reload_bit_identically() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let arch = tiny_arch();
    let vae = Vae::new(&arch, 7, &device);
    checkpoint::save_weights(&vae.decoder, &dir.path().join("d.bpk")).unwrap();
    let mut other = Decoder::new(&arch, &mut StdRng::seed_from_u64(99), &device);
    assert_ne!(
        out(&vae.decoder.valid(), &device),
        out(&other.valid(), &device)
    );
    checkpoint::load_weights(&mut other, &dir.path().join("d.bpk"), &arch).unwrap();
    assert_eq!(
        out(&vae.decoder.valid(), &device),
        out(&other.valid(), &device)
    );
}

#[test]
fn trained_checkpoint_round_trip_and_mismatch_errors() {
    quiet();
    let _hdf5 = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 40, 8, 4);
    let cfg = tiny_config(dir.path(), &data, 2);
    let outcome = train_vae::train::train(cfg.clone(), None).unwrap();
    let ck = outcome.checkpoint.clone();
    let device = Device::flex();

    // Two loads give bit-identical outputs, equal to the full VAE's decoder in validation mode.
    let a = load_decoder(&ck, &device).unwrap();
    let b = load_decoder(&ck, &device).unwrap();
    let (vae, meta) = load_vae(&ck, &device).unwrap();
    assert_eq!(out(&a.decoder, &device), out(&b.decoder, &device));
    assert_eq!(out(&a.decoder, &device), out(&vae.decoder.valid(), &device));
    // The BatchNorm running statistics were trained and saved (not the initial 0 / 1).
    let rm: Vec<f32> = a
        .decoder
        .bn1
        .running_mean
        .value()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert!(rm.iter().any(|v| *v != 0.0));
    assert_eq!(a.latent_dim, 4);
    assert_eq!(a.prior.latent_dim, 4);
    assert_eq!(a.prior.scale, 9.0);
    assert_eq!(a.prior.n_images, 40);
    assert!(meta.training.finished);
    assert_eq!(meta.training.run_id, outcome.run_id);
    assert_eq!(meta.data.normalisation, "max");
    assert_eq!(meta.data.provenance["test"], "tiny synthetic set");

    // The inference path of `infer`: loaded with an autodiff device, z on that device with
    // require_grad; same values as the plain path and a gradient w.r.t. z.
    let ad = Device::flex().autodiff();
    let c = load_decoder(&ck, &ad).unwrap();
    let z = z_batch(4, &ad).require_grad();
    let y = c.decoder.forward(z.clone());
    let yv: Vec<f32> = y.clone().into_data().try_to_vec().unwrap();
    assert_eq!(yv, out(&a.decoder, &device));
    let g: Vec<f32> = z
        .grad(&y.square().sum().backward())
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_eq!(g.len(), 12);
    assert!(g.iter().all(|v| v.is_finite()) && g.iter().any(|v| *v != 0.0));

    let copy = |name: &str| {
        let dst = dir.path().join(name);
        copy_dir(&ck, &dst);
        dst
    };
    let edit_json = |path: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(path, serde_json::to_string(&v).unwrap()).unwrap();
    };
    let err = |dir: &Path| format!("{:#}", load_decoder(dir, &device).unwrap_err());

    let v = copy("version");
    edit_json(&v.join("checkpoint.json"), &|m| {
        m["format_version"] = 99.into()
    });
    let e = err(&v);
    assert!(
        e.contains("checkpoint.json") && e.contains("format_version 99"),
        "{e}"
    );

    let l = copy("latent");
    edit_json(&l.join("checkpoint.json"), &|m| {
        m["architecture"]["latent_dim"] = 6.into()
    });
    let e = err(&l);
    assert!(
        e.contains("prior.json") && e.contains("dimension 4") && e.contains("latent_dim 6"),
        "{e}"
    );

    let w = copy("widths");
    edit_json(&w.join("checkpoint.json"), &|m| {
        m["architecture"]["widths"] = serde_json::json!([4, 8, 8, 32])
    });
    let e = err(&w);
    assert!(
        e.contains("decoder.bpk") && e.contains("do not match the architecture"),
        "{e}"
    );

    let p = copy("noprior");
    edit_json(&p.join("checkpoint.json"), &|m| {
        m["files"]["prior"] = serde_json::Value::Null
    });
    let e = err(&p);
    assert!(e.contains("no latent prior"), "{e}");

    let t = copy("truncated");
    let bytes = std::fs::read(t.join("decoder.bpk")).unwrap();
    std::fs::write(t.join("decoder.bpk"), &bytes[..bytes.len() / 2]).unwrap();
    let e = err(&t);
    assert!(e.contains("decoder.bpk"), "{e}");

    let e = err(&dir.path().join("nowhere"));
    assert!(e.contains("nowhere") && e.contains("not found"), "{e}");

    // A decoder-only checkpoint loads for inference but not as a full VAE.
    let d = copy("deconly");
    std::fs::remove_file(d.join("encoder.bpk")).unwrap();
    edit_json(&d.join("checkpoint.json"), &|m| {
        m["files"]["encoder"] = serde_json::Value::Null
    });
    assert_eq!(
        out(&load_decoder(&d, &device).unwrap().decoder, &device),
        out(&a.decoder, &device)
    );
    let e = format!("{:#}", load_vae(&d, &device).unwrap_err());
    assert!(e.contains("decoder-only"), "{e}");
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn decoder_only_export_and_init_from() {
    quiet();
    let _hdf5 = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 40, 8, 4);
    let device = Device::flex();

    // A full run, then a decoder-only run initialised from it with a vanishing learning rate:
    // its decoder starts from (and so stays at) the source weights.
    let full = tiny_config(dir.path(), &data, 1);
    train_vae::train::train(full.clone(), None).unwrap();
    let mut small = tiny_config(dir.path(), &data, 1);
    small.out = dir.path().join("small");
    small.init_from = Some(full.out.clone());
    small.decoder_only = true;
    small.lr = 1e-30;
    train_vae::train::train(small.clone(), None).unwrap();

    let names: Vec<String> = std::fs::read_dir(&small.out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["checkpoint.json", "decoder.bpk", "prior.json"]);
    let a = load_decoder(&full.out, &device).unwrap();
    let b = load_decoder(&small.out, &device).unwrap();
    assert!(b.meta.files.encoder.is_none());
    // Same weights; the BatchNorm running statistics moved on during the second run's epoch.
    let wa: Vec<f32> = a
        .decoder
        .deconv3
        .weight
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    let wb: Vec<f32> = b
        .decoder
        .deconv3
        .weight
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_eq!(wa, wb);
    // A fresh run (same seed) starts elsewhere: init-from really replaced the initialisation.
    let fresh = Vae::new(&tiny_arch(), small.seed, &device);
    let wf: Vec<f32> = fresh
        .decoder
        .deconv3
        .weight
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_ne!(wa, wf);

    // init-from a decoder-only checkpoint is refused (it needs the encoder).
    let mut again = tiny_config(dir.path(), &data, 1);
    again.out = dir.path().join("again");
    again.init_from = Some(small.out.clone());
    let e = format!("{:#}", train_vae::train::train(again, None).unwrap_err());
    assert!(
        e.contains("--init-from") && e.contains("decoder-only"),
        "{e}"
    );
}
