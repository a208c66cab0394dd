//! The negative ELBO of eq. (4) (with eqs. C2-C3) against a hand computation on small tensors.

use burn::tensor::{Device, Tensor, TensorData};
use train_vae::train::elbo::{negative_elbo, negative_elbo_per_image};

const LN_2PI: f64 = 1.837_877_066_409_345_3;

#[test]
fn negative_elbo_matches_hand_computation() {
    let device = Device::flex();
    // B = 2 images of 1 x 2 x 2 pixels, M = 2 samples, D = 3.
    let x = [[0.1f32, 0.5, 0.9, 0.0], [1.0, 0.2, 0.3, 0.4]];
    // Sample-major: rows 0,1 = sample 1 of images 0,1; rows 2,3 = sample 2.
    let rec = [
        [0.0f32, 0.4, 1.0, 0.1],
        [0.9, 0.2, 0.2, 0.5],
        [0.2, 0.5, 0.7, -0.1],
        [1.0, 0.0, 0.3, 0.3],
    ];
    let mu = [[0.5f32, -1.0, 0.0], [2.0, 0.1, -0.3]];
    let log_sigma = [[0.0f32, -0.5, 0.3], [-1.0, 0.2, 0.0]];
    let sigma_d = 0.05f64;

    let flat = |rows: &[[f32; 4]]| rows.iter().flatten().copied().collect::<Vec<f32>>();
    let tx = Tensor::<4>::from_data(TensorData::new(flat(&x), [2, 1, 2, 2]), &device);
    let trec = Tensor::<4>::from_data(TensorData::new(flat(&rec), [4, 1, 2, 2]), &device);
    let tmu = Tensor::<2>::from_data(
        TensorData::new(mu.iter().flatten().copied().collect::<Vec<_>>(), [2, 3]),
        &device,
    );
    let tls = Tensor::<2>::from_data(
        TensorData::new(
            log_sigma.iter().flatten().copied().collect::<Vec<_>>(),
            [2, 3],
        ),
        &device,
    );

    // By hand, in f64.
    let mut want_rec = [0.0f64; 2];
    let mut want_kl = [0.0f64; 2];
    let mut want_chi2 = [0.0f64; 2];
    for b in 0..2 {
        for j in 0..2 {
            let r = rec[j * 2 + b];
            let sq: f64 = (0..4).map(|p| (x[b][p] as f64 - r[p] as f64).powi(2)).sum();
            want_rec[b] += 0.5 * sq / (sigma_d * sigma_d) / 2.0;
            want_chi2[b] += sq / (sigma_d * sigma_d) / 2.0;
        }
        // + P * log(sigma_d sqrt(2 pi)) for P = 4 pixels
        want_rec[b] += 4.0 * (sigma_d.ln() + 0.5 * LN_2PI);
        for k in 0..3 {
            let (m, ls) = (mu[b][k] as f64, log_sigma[b][k] as f64);
            want_kl[b] += 0.5 * ((2.0 * ls).exp() + m * m - 1.0 - 2.0 * ls);
        }
    }

    let per = negative_elbo_per_image(tx.clone(), trec.clone(), tmu.clone(), tls.clone(), sigma_d);
    let got = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    let (rec_v, kl_v, loss_v, chi2_v) = (got(per.rec), got(per.kl), got(per.loss), got(per.chi2));
    for b in 0..2 {
        let close = |a: f32, w: f64| (a as f64 - w).abs() <= 1e-4 * w.abs().max(1.0);
        assert!(
            close(rec_v[b], want_rec[b]),
            "rec[{b}] {} vs {}",
            rec_v[b],
            want_rec[b]
        );
        assert!(
            close(kl_v[b], want_kl[b]),
            "kl[{b}] {} vs {}",
            kl_v[b],
            want_kl[b]
        );
        assert!(close(loss_v[b], want_rec[b] + want_kl[b]), "loss[{b}]");
        assert!(
            close(chi2_v[b], want_chi2[b]),
            "chi2[{b}] {} vs {}",
            chi2_v[b],
            want_chi2[b]
        );
    }

    let mean = negative_elbo(tx, trec, tmu, tls, sigma_d);
    let want_loss = (want_rec[0] + want_kl[0] + want_rec[1] + want_kl[1]) / 2.0;
    let loss = mean.loss.into_scalar::<f32>() as f64;
    assert!(
        (loss - want_loss).abs() <= 1e-4 * want_loss.abs(),
        "batch mean {loss} vs {want_loss}"
    );
    let kl = mean.kl.into_scalar::<f32>() as f64;
    assert!((kl - (want_kl[0] + want_kl[1]) / 2.0).abs() < 1e-5);
}

#[test]
fn gradient_of_the_kl_term_is_analytic() {
    // d KL / d mu = mu, d KL / d log_sigma = sigma^2 - 1 (per image; batch mean divides by B).
    let device = Device::flex().autodiff();
    let x = Tensor::<4>::zeros([1, 1, 1, 1], &device);
    let rec = Tensor::<4>::zeros([1, 1, 1, 1], &device);
    let mu =
        Tensor::<2>::from_data(TensorData::new(vec![0.7f32, -0.2], [1, 2]), &device).require_grad();
    let ls =
        Tensor::<2>::from_data(TensorData::new(vec![0.1f32, -0.4], [1, 2]), &device).require_grad();
    let terms = negative_elbo(x, rec, mu.clone(), ls.clone(), 1.0);
    let grads = terms.loss.backward();
    let gmu: Vec<f32> = mu.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
    let gls: Vec<f32> = ls.grad(&grads).unwrap().into_data().try_to_vec().unwrap();
    assert!((gmu[0] - 0.7).abs() < 1e-6 && (gmu[1] + 0.2).abs() < 1e-6);
    assert!((gls[0] as f64 - ((0.2f64).exp() - 1.0)).abs() < 1e-5);
    assert!((gls[1] as f64 - ((-0.8f64).exp() - 1.0)).abs() < 1e-5);
}
