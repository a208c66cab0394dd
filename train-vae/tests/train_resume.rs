//! Resume after an interruption (same result as an uninterrupted run, optimizer state and
//! counters continued), a swap interrupted by a crash, and the NaN-loss stop.

mod train_support;

use arclight_core::record::{RunInfo, Status};
use arclight_vae::checkpoint::{self, TRAINING_DIR};
use arclight_vae::model::Vae;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use std::path::Path;
use train_support::{hdf5_guard, quiet, tiny_arch, tiny_config, tiny_data};
use train_vae::train::state::{ResumeState, VAE_FILE};
use train_vae::train::train;

/// Decoder output (validation mode) of the last-epoch weights in `<ck>/training/vae.bpk`.
fn last_epoch_output(ck: &Path) -> Vec<f32> {
    let device = Device::flex();
    let mut vae = Vae::new(&tiny_arch(), 0, &device);
    checkpoint::load_weights(
        &mut vae,
        &ck.join(TRAINING_DIR).join(VAE_FILE),
        &tiny_arch(),
    )
    .unwrap();
    let z = Tensor::<2>::from_data(
        TensorData::new(vec![0.3f32, -1.0, 0.5, 2.0], [1, 4]),
        &device,
    );
    vae.decoder
        .valid()
        .forward(z)
        .into_data()
        .try_to_vec()
        .unwrap()
}

fn metrics_epochs(run_dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "epoch")
        .map(|v| v["epoch"].as_u64().unwrap())
        .collect()
}

#[test]
fn interrupted_then_resumed_equals_uninterrupted() {
    quiet();
    let _hdf5 = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 40, 8, 4);

    // Reference: 3 epochs in one go.
    let mut straight = tiny_config(dir.path(), &data, 3);
    straight.out = dir.path().join("straight");
    let done = train(straight.clone(), None).unwrap();
    assert_eq!(done.epochs_completed, 3);

    // Interrupted after epoch 1 (a 1-epoch run), then resumed to 3 epochs.
    let mut first = tiny_config(dir.path(), &data, 1);
    first.out = dir.path().join("resumed");
    let one = train(first.clone(), None).unwrap();
    let state1 = ResumeState::load(&first.out).unwrap();
    assert_eq!(state1.epochs_completed, 1);
    assert_eq!(state1.global_step, 5); // 40 images / batch 8
    // A crash between the two renames of the checkpoint swap leaves the old version aside.
    std::fs::rename(&first.out, dir.path().join(".resumed.old-4242")).unwrap();
    assert!(checkpoint::recover_interrupted_swap(&first.out).unwrap());

    let mut state = ResumeState::load(&first.out).unwrap();
    let mut cfg = state.config.clone();
    cfg.epochs = 3;
    state.early_stopping.patience = cfg.patience;
    let resumed = train(cfg, Some(state)).unwrap();
    assert_eq!(
        resumed.run_id, one.run_id,
        "the resumed run continues the same record"
    );
    let state3 = ResumeState::load(&first.out).unwrap();
    assert_eq!(state3.epochs_completed, 3);
    assert_eq!(state3.global_step, 15);

    // Adam moments, step counts, shuffling and noise all continued: bit-identical weights.
    assert_eq!(
        last_epoch_output(&straight.out),
        last_epoch_output(&first.out)
    );

    let info = RunInfo::load(&resumed.run_dir).unwrap();
    assert_eq!(info.status, Status::Done);
    assert_eq!(info.resumed, 1);
    assert_eq!(metrics_epochs(&resumed.run_dir), vec![1, 2, 3]);
}

#[test]
fn nan_loss_stops_with_a_clear_error_and_keeps_the_best_checkpoint() {
    quiet();
    let _hdf5 = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 40, 8, 4);
    let cfg = tiny_config(dir.path(), &data, 1);
    train(cfg.clone(), None).unwrap();
    let decoder_before = std::fs::read(cfg.out.join("decoder.bpk")).unwrap();
    let meta_before = std::fs::read(cfg.out.join("checkpoint.json")).unwrap();

    // Continue with an absurd learning rate: the weights overflow and the loss becomes inf/NaN.
    let mut state = ResumeState::load(&cfg.out).unwrap();
    let mut bad = state.config.clone();
    bad.epochs = 3;
    bad.lr = 1e30;
    state.early_stopping.patience = bad.patience;
    let run_id = state.run_id.clone();
    let e = format!("{:#}", train(bad, Some(state)).unwrap_err());
    assert!(
        e.contains("training loss became") && e.contains("--lr"),
        "{e}"
    );
    assert!(e.contains("best epoch (1)"), "{e}");

    // Best checkpoint and resume state untouched; the run record says failed, with the message.
    assert_eq!(
        std::fs::read(cfg.out.join("decoder.bpk")).unwrap(),
        decoder_before
    );
    assert_eq!(
        std::fs::read(cfg.out.join("checkpoint.json")).unwrap(),
        meta_before
    );
    assert_eq!(ResumeState::load(&cfg.out).unwrap().epochs_completed, 1);
    let info = RunInfo::load(&cfg.experiments.join(&run_id)).unwrap();
    assert_eq!(info.status, Status::Failed);
    assert!(info.error.unwrap().contains("training loss became"));
    // Nothing half-written next to the checkpoint.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".ckpt")), "{names:?}");
}

#[test]
fn early_stopped_run_killed_before_its_prior_is_finished_by_resume() {
    quiet();
    let _hdf5 = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 24, 8, 4);
    let cfg = tiny_config(dir.path(), &data, 2);
    let done = train(cfg.clone(), None).unwrap();
    // As if early stopping had fired after epoch 2 of a 10-epoch run and the process had been
    // killed after that epoch's checkpoint but before the latent prior was fitted.
    let edit = |path: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(path, v.to_string()).unwrap();
    };
    edit(&cfg.out.join(TRAINING_DIR).join("state.json"), &|v| {
        v["config"]["epochs"] = 10.into();
        v["config"]["patience"] = 1.into();
        v["early_stopping"]["patience"] = 1.into();
        v["early_stopping"]["best_epoch"] = 1.into();
        v["early_stopping"]["bad_epochs"] = 1.into();
    });
    edit(&cfg.out.join(checkpoint::META_FILE), &|v| {
        v["prior"] = serde_json::Value::Null;
        v["files"].as_object_mut().unwrap().remove("prior");
        v["training"]["finished"] = false.into();
    });
    std::fs::remove_file(cfg.out.join(checkpoint::PRIOR_FILE)).unwrap();

    let resume = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_train-vae"))
            .args(["train", "--resume", "--out"])
            .arg(&cfg.out)
            .env("ARCLIGHT_QUIET", "1")
            .output()
            .unwrap()
    };
    let o = resume();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let meta = checkpoint::read_meta(&cfg.out).unwrap();
    assert!(meta.prior.is_some() && meta.training.finished);
    assert_eq!(meta.training.epochs_completed, 2);
    assert!(cfg.out.join(checkpoint::PRIOR_FILE).is_file());
    // finished without training another epoch, in the same run record
    assert_eq!(metrics_epochs(&done.run_dir), vec![1, 2]);
    let info = RunInfo::load(&done.run_dir).unwrap();
    assert_eq!((info.status, info.resumed), (Status::Done, 1));
    // once finished, a further resume is refused
    let o = resume();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("already stopped early"),
        "{err}"
    );
}

/// Options fixed when a run starts (batch size, samples, seed, prior scale) were silently ignored by
/// `--resume`; a different value is now refused, naming it and the run's value, and the same value is
/// accepted.
#[test]
fn resume_refuses_a_different_batch_size_or_seed() {
    quiet();
    let _hdf5 = hdf5_guard();
    let dir = tempfile::tempdir().unwrap();
    let data = tiny_data(dir.path(), 24, 8, 4);
    let cfg = tiny_config(dir.path(), &data, 1);
    train(cfg.clone(), None).unwrap();
    let resume = |extra: &[String]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_train-vae"))
            .args(["train", "--resume", "--epochs", "2", "--out"])
            .arg(&cfg.out)
            .args(extra)
            .env("ARCLIGHT_QUIET", "1")
            .output()
            .unwrap()
    };
    let other_batch = (cfg.batch_size + 1).to_string();
    let other_seed = (cfg.seed + 1).to_string();
    let o = resume(&[
        "--batch-size".into(),
        other_batch.clone(),
        "--seed".into(),
        other_seed.clone(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains(&format!(
            "--batch-size {other_batch} (the run's: {})",
            cfg.batch_size
        )) && err.contains(&format!("--seed {other_seed} (the run's: {})", cfg.seed)),
        "{err}"
    );
    assert_eq!(
        checkpoint::read_meta(&cfg.out)
            .unwrap()
            .training
            .epochs_completed,
        1
    );
    let o = resume(&["--batch-size".into(), cfg.batch_size.to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        checkpoint::read_meta(&cfg.out)
            .unwrap()
            .training
            .epochs_completed,
        2
    );
}
