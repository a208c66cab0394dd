//! Timing harness for the lensing forward model (timings live here, not in tests).
//!
//! The GIGA-Lens reference model (GIGA-Lens Sec. 2.1; issue "Speed"): EPL + external shear +
//! Sersic lens light + Sersic source, 80 x 80 pixels of 0.065", supersampling 2, a 13 x 13 PSF,
//! Gaussian likelihood with sigma_bkg = 0.2 and Poisson noise for t_exp = 100 s. Measured:
//!
//! - `tensor`: the burn tensor library (`lens::render` + eq. 6 likelihood) on flex + autodiff,
//!   value + gradient w.r.t. the 22 parameters (`[B]` tensors with `require_grad`);
//! - `fused`: [`crate::lens::fused::FusedLens::value_and_grad`], the hand-written kernel;
//! - PSF convolution alone: direct 13 x 13 conv2d versus the separable Gaussian (two 1-D passes),
//!   value + gradient on `[B, 80, 80]`.
//!
//! Each figure is the median over `reps` timed repetitions after one warm-up, divided by the
//! batch size: milliseconds per sample.

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

use crate::lens::fused::{FusedLens, NUM_PARAMS};
use crate::lens::grid::Grid;
use crate::lens::light::Sersic;
use crate::lens::mass::{Epl, MassComponent, MassModel, Shear};
use crate::lens::psf::{Psf, PsfOrder};
use crate::lens::render::Renderer;

/// Truth of the reference system (lenstronomy starting-guide values used by GIGA-Lens Fig. 1,
/// rounded), in the [`crate::lens::fused::PARAM_NAMES`] layout.
pub const REFERENCE_TRUTH: [f64; NUM_PARAMS] = [
    1.5, 2.1, 0.05, -0.1, 0.0, 0.0, // EPL
    0.02, -0.03, // shear
    10.0, 1.0, 3.5, 0.1, -0.05, 0.0, 0.0, // lens light
    15.0, 0.25, 1.5, 0.2, -0.1, 0.05, 0.1, // source
];

/// One timing line.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Timing {
    /// What was timed.
    pub name: String,
    /// Batch size.
    pub batch: usize,
    /// Median milliseconds per sample.
    pub ms_per_sample: f64,
    /// Median milliseconds per call (whole batch).
    pub ms_per_call: f64,
}

/// A timing with the process CPU milliseconds per sample (all threads). CPU time is robust to
/// other load on the machine: on an idle 2-core machine the wall time is about cpu / 2 when
/// both threads are busy.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CpuTiming {
    /// Wall-clock figures.
    pub timing: Timing,
    /// Mean process CPU milliseconds per sample.
    pub cpu_ms_per_sample: f64,
}

/// The reference setup: grid, 13 x 13 Gaussian PSF kernel (sigma = 0.08"), observation with
/// seeded noise, background variance and Poisson factor.
pub struct ReferenceSystem {
    /// 80 x 80 at 0.065", k = 2.
    pub grid: Grid,
    /// 13 x 13 pixelated PSF.
    pub psf: Psf,
    /// Noisy observation.
    pub obs: Vec<f64>,
    /// sigma_bkg^2 per pixel.
    pub bkg_var: Vec<f64>,
    /// 1/(gain t_exp).
    pub poisson: f64,
}

impl ReferenceSystem {
    /// Build the reference system, noise drawn with `seed`.
    pub fn new(seed: u64) -> anyhow::Result<Self> {
        let grid = Grid::new(80, 80, 0.065, 2)?;
        let (sigma, d) = (0.08f64, 0.065f64);
        let mut k = Vec::with_capacity(169);
        for i in -6i32..=6 {
            for j in -6i32..=6 {
                let r2 = ((i * i + j * j) as f64) * d * d;
                k.push((-0.5 * r2 / (sigma * sigma)).exp());
            }
        }
        let psf = Psf::pixelated(13, 13, k)?;
        let n = grid.num_pixels();
        let (bkg, poisson) = (0.2f64, 1.0 / 100.0);
        let clean = FusedLens::new(
            grid.clone(),
            &psf,
            PsfOrder::default(),
            &vec![0.0; n],
            &vec![bkg * bkg; n],
            None,
            None,
        )?
        .render(&REFERENCE_TRUTH);
        let mut rng = StdRng::seed_from_u64(seed);
        let unit = Normal::new(0.0, 1.0)?;
        let obs = clean
            .iter()
            .map(|&m| m + (bkg * bkg + m.max(0.0) * poisson).sqrt() * unit.sample(&mut rng))
            .collect();
        Ok(Self {
            grid,
            psf,
            obs,
            bkg_var: vec![bkg * bkg; n],
            poisson,
        })
    }

    /// The fused model of this system.
    pub fn fused(&self) -> anyhow::Result<FusedLens> {
        FusedLens::new(
            self.grid.clone(),
            &self.psf,
            PsfOrder::default(),
            &self.obs,
            &self.bkg_var,
            Some(self.poisson),
            None,
        )
    }

    /// `batch` parameter vectors scattered around the truth (seeded).
    pub fn batch(&self, batch: usize, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let unit = Normal::new(0.0, 1.0).expect("unit normal");
        let mut out = Vec::with_capacity(batch * NUM_PARAMS);
        for _ in 0..batch {
            for &t in &REFERENCE_TRUTH {
                out.push(t + 0.02 * t.abs().max(0.1) * unit.sample(&mut rng));
            }
        }
        out
    }
}

/// CPU time of this process (user + system, all threads) in seconds, from `/proc/self/stat`
/// (clock ticks of 1/100 s); `None` where unavailable.
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the parenthesised command name; utime and stime are fields 14 and 15
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// (median wall ms per call, mean CPU ms per call) over `reps` calls after one warm-up.
fn measure(reps: usize, mut f: impl FnMut()) -> (f64, f64) {
    f();
    let reps = reps.max(1);
    let cpu0 = process_cpu_seconds();
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    let cpu = match (cpu0, process_cpu_seconds()) {
        (Some(a), Some(b)) => (b - a) * 1e3 / reps as f64,
        _ => f64::NAN,
    };
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], cpu)
}

fn timing(name: &str, batch: usize, (ms, cpu): (f64, f64)) -> CpuTiming {
    CpuTiming {
        timing: Timing {
            name: name.to_string(),
            batch,
            ms_per_sample: ms / batch as f64,
            ms_per_call: ms,
        },
        cpu_ms_per_sample: cpu / batch as f64,
    }
}

/// Value + gradient of the fused kernel at `batch`.
pub fn bench_fused(sys: &ReferenceSystem, batch: usize, reps: usize) -> anyhow::Result<CpuTiming> {
    let model = sys.fused()?;
    let params = sys.batch(batch, 7);
    let ms = measure(reps, || {
        std::hint::black_box(model.value_and_grad(&params));
    });
    Ok(timing("fused value+grad", batch, ms))
}

/// Value only of the fused kernel at `batch` (what a gradient-free evaluation costs).
pub fn bench_fused_value(
    sys: &ReferenceSystem,
    batch: usize,
    reps: usize,
) -> anyhow::Result<CpuTiming> {
    let model = sys.fused()?;
    let params = sys.batch(batch, 7);
    let ms = measure(reps, || {
        std::hint::black_box(model.log_likelihood(&params));
    });
    Ok(timing("fused value only", batch, ms))
}

/// Value + gradient with plain burn tensor ops on the autodiff flex device (f32).
pub fn bench_tensor(sys: &ReferenceSystem, batch: usize, reps: usize) -> anyhow::Result<CpuTiming> {
    let device = Device::flex().autodiff();
    let params = sys.batch(batch, 7);
    let renderer = Renderer::new(sys.grid.clone(), sys.psf.clone(), &device);
    let n = sys.grid.num_pixels();
    let row =
        |v: &[f64]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [1, v.len()]), &device);
    let obs = row(&sys.obs);
    let bkg = row(&sys.bkg_var);
    let ms = measure(reps, || {
        let cols: Vec<Tensor<1>> = (0..NUM_PARAMS)
            .map(|q| {
                let c: Vec<f64> = (0..batch).map(|s| params[s * NUM_PARAMS + q]).collect();
                Tensor::<1>::from_data(TensorData::new(c, [batch]), &device).require_grad()
            })
            .collect();
        let p = |i: usize| cols[i].clone();
        let mass = MassModel::new(vec![
            MassComponent::Epl(Epl {
                theta_e: p(0),
                gamma: p(1),
                e1: p(2),
                e2: p(3),
                center_x: p(4),
                center_y: p(5),
            }),
            MassComponent::Shear(Shear {
                gamma1: p(6),
                gamma2: p(7),
            }),
        ]);
        let sersic = |o: usize| Sersic {
            amp: p(o),
            r_sersic: p(o + 1),
            n_sersic: p(o + 2),
            e1: p(o + 3),
            e2: p(o + 4),
            center_x: p(o + 5),
            center_y: p(o + 6),
        };
        let (light, source) = (sersic(8), sersic(15));
        let model = renderer
            .render(&mass, &source, Some(&light))
            .reshape([batch, n]);
        let var = bkg.clone() + model.clone().mul_scalar(sys.poisson);
        let r2 = (obs.clone() - model).powi_scalar(2);
        let ll = (r2 / var.clone() + var.log()).sum().mul_scalar(-0.5);
        let grads = ll.backward();
        for c in &cols {
            std::hint::black_box(c.grad(&grads));
        }
    });
    Ok(timing("tensor value+grad", batch, ms))
}

/// PSF convolution alone (value + gradient w.r.t. the image) on `[batch, 80, 80]`.
pub fn bench_psf(
    sys: &ReferenceSystem,
    psf: &Psf,
    name: &str,
    batch: usize,
    reps: usize,
) -> CpuTiming {
    let device = Device::flex().autodiff();
    let (ny, nx) = (sys.grid.ny, sys.grid.nx);
    let img: Vec<f32> = (0..batch * ny * nx)
        .map(|i| ((i * 31 % 17) as f32) / 17.0)
        .collect();
    let ms = measure(reps, || {
        let x = Tensor::<3>::from_data(TensorData::new(img.clone(), [batch, ny, nx]), &device)
            .require_grad();
        let y = psf.convolve(x.clone()).powi_scalar(2).sum();
        let g = y.backward();
        std::hint::black_box(x.grad(&g));
    });
    timing(name, batch, ms)
}

/// The lensing part of the VAE-source model of Chianese et al. (256 x 256 over 10", Gaussian PSF
/// of 0.05", no supersampling): EPL + shear, a 64 x 64 source image placed with
/// `source::pixelated` (bilinear), value + gradient w.r.t. the lens parameters, the source
/// position and amplitude, and every source pixel (what the decoder's backward needs), with
/// plain burn tensor ops on flex + autodiff. The decoder itself is not included.
pub fn bench_pixelated_source(batch: usize, reps: usize) -> anyhow::Result<CpuTiming> {
    use crate::source::pixelated::PixelatedSource;
    let device = Device::flex().autodiff();
    let grid = Grid::new(256, 256, 10.0 / 256.0, 1)?;
    let psf = Psf::gaussian(0.05, grid.pixel_scale, 4.0)?;
    let renderer = Renderer::new(grid.clone(), psf, &device);
    let n = grid.num_pixels();
    let stamp: Vec<f64> = (0..64 * 64)
        .map(|i| {
            let (r, c) = ((i / 64) as f64 - 31.5, (i % 64) as f64 - 31.5);
            (-(r * r + 0.5 * c * c) / 120.0).exp()
        })
        .collect();
    let obs = Tensor::<2>::from_data(TensorData::new(vec![0.1f64; n], [1, n]), &device);
    let ms = measure(reps, || {
        let full = |v: f64| {
            Tensor::<1>::from_data(TensorData::new(vec![v; batch], [batch]), &device).require_grad()
        };
        let p: Vec<Tensor<1>> = [
            1.2, 2.0, 0.1, -0.05, 0.02, -0.01, 0.03, 0.01, 0.05, -0.03, 1.0,
        ]
        .iter()
        .map(|&v| full(v))
        .collect();
        let image = Tensor::<3>::from_data(TensorData::new(stamp.clone(), [1, 64, 64]), &device)
            .require_grad();
        let mass = MassModel::new(vec![
            MassComponent::Epl(Epl {
                theta_e: p[0].clone(),
                gamma: p[1].clone(),
                e1: p[2].clone(),
                e2: p[3].clone(),
                center_x: p[4].clone(),
                center_y: p[5].clone(),
            }),
            MassComponent::Shear(Shear {
                gamma1: p[6].clone(),
                gamma2: p[7].clone(),
            }),
        ]);
        let src = PixelatedSource {
            image: image.clone(),
            pixel_scale: 0.03,
            x_src: p[8].clone(),
            y_src: p[9].clone(),
            amp: p[10].clone(),
        };
        let model = renderer.render(&mass, &src, None).reshape([batch, n]);
        let ll = (obs.clone() - model)
            .powi_scalar(2)
            .sum()
            .mul_scalar(-0.5 / 0.01);
        let g = ll.backward();
        std::hint::black_box(image.grad(&g));
        for t in &p {
            std::hint::black_box(t.grad(&g));
        }
    });
    Ok(timing(
        "pixelated source 256x256 tensor value+grad",
        batch,
        ms,
    ))
}

/// The same 256 x 256 placed-image model through the fused kernel
/// [`crate::lens::fused::placed::FusedPlacedImage`]: value + gradient w.r.t. the 12 parameters
/// and the 64 x 64 source pixels (decoder excluded).
pub fn bench_fused_placed(batch: usize, reps: usize) -> anyhow::Result<CpuTiming> {
    use crate::lens::fused::placed::{FusedPlacedImage, NUM_PLACED_PARAMS};
    let grid = Grid::new(256, 256, 10.0 / 256.0, 1)?;
    let psf = Psf::gaussian(0.05, grid.pixel_scale, 4.0)?;
    let n = grid.num_pixels();
    let stamp: Vec<f32> = (0..64 * 64)
        .map(|i| {
            let (r, c) = ((i / 64) as f32 - 31.5, (i % 64) as f32 - 31.5);
            (-(r * r + 0.5 * c * c) / 120.0).exp()
        })
        .collect();
    let model = FusedPlacedImage::new(
        grid,
        &psf,
        (64, 64),
        &vec![0.1; n],
        &vec![0.01; n],
        None,
        None,
    )?;
    let one = [
        1.2, 2.0, 0.1, -0.05, 0.02, -0.01, 0.03, 0.01, 0.05, -0.03, 5.0, 1.0,
    ];
    let params: Vec<f64> = (0..batch).flat_map(|_| one).collect();
    assert_eq!(params.len(), batch * NUM_PLACED_PARAMS);
    let ms = measure(reps, || {
        std::hint::black_box(model.value_and_grad(&params, &stamp));
    });
    Ok(timing(
        "pixelated source 256x256 fused value+grad",
        batch,
        ms,
    ))
}

/// Run every benchmark: fused and tensor value+gradient at batch 300 and 1, the 256 x 256
/// placed-image (VAE-source) lens model at batch 1 (tensor and fused), and the PSF variants at
/// batch 300. `reps` timed repetitions each (the tensor path at batch 300 takes
/// seconds per call, so it uses `reps.min(3)`).
pub fn run_all(reps: usize) -> anyhow::Result<Vec<Timing>> {
    Ok(run_all_cpu(reps)?.into_iter().map(|t| t.timing).collect())
}

/// [`run_all`] with CPU times.
pub fn run_all_cpu(reps: usize) -> anyhow::Result<Vec<CpuTiming>> {
    let sys = ReferenceSystem::new(1)?;
    let gaussian = Psf::gaussian(0.08, 0.065, 4.0)?;
    Ok(vec![
        bench_fused(&sys, 300, reps)?,
        // the batch of one step of the default 8 HMC chains
        bench_fused(&sys, 8, reps * 4)?,
        bench_fused(&sys, 1, reps * 10)?,
        bench_tensor(&sys, 1, reps)?,
        bench_tensor(&sys, 300, reps.min(3))?,
        bench_pixelated_source(1, reps)?,
        bench_fused_placed(1, reps * 4)?,
        bench_psf(
            &sys,
            &sys.psf,
            "PSF 13x13 direct conv2d value+grad",
            300,
            reps,
        ),
        bench_psf(
            &sys,
            &gaussian,
            "PSF Gaussian separable value+grad",
            300,
            reps,
        ),
    ])
}

/// Fused value + gradient at `batch` for the reference system's light and source deflected by
/// other sums of registered mass profiles: what a profile costs on the fast path. Rows: (mass
/// components, timing); the first is the reference EPL + shear.
pub fn bench_profiles(
    sys: &ReferenceSystem,
    batch: usize,
    reps: usize,
) -> anyhow::Result<Vec<(String, CpuTiming)>> {
    use crate::lens::fused::FusedLayout;
    use crate::lens::profile::LightKind;
    use crate::lens::profile::MassKind::{self, Epl, Multipole, Nfw, Shear};
    let epl = &REFERENCE_TRUTH[..6];
    let shear = &REFERENCE_TRUTH[6..8];
    let nfw = [3.0, 0.4, 0.3, -0.2];
    let multipole = [4.0, 0.03, 0.4, 0.0, 0.0, 1.0];
    let cases: [(&[MassKind], Vec<&[f64]>); 4] = [
        (&[Epl, Shear], vec![epl, shear]),
        (&[Nfw, Shear], vec![&nfw, shear]),
        (&[Epl, Multipole, Shear], vec![epl, &multipole, shear]),
        (
            &[Epl, Nfw, Multipole, Shear],
            vec![epl, &nfw, &multipole, shear],
        ),
    ];
    let light = &REFERENCE_TRUTH[8..];
    let mut rng = StdRng::seed_from_u64(7);
    let unit = Normal::new(0.0, 1.0)?;
    let mut rows = Vec::new();
    for (kinds, parts) in cases {
        let model = FusedLens::with_layout(
            FusedLayout {
                mass: kinds.to_vec(),
                lights: vec![LightKind::Sersic],
                sources: vec![LightKind::Sersic],
            },
            sys.grid.clone(),
            &sys.psf,
            PsfOrder::default(),
            &sys.obs,
            &sys.bkg_var,
            Some(sys.poisson),
            None,
        )?;
        let mut params = Vec::new();
        for _ in 0..batch {
            for (kind, part) in kinds.iter().zip(&parts) {
                for (k, &t) in part.iter().enumerate() {
                    // the multipole's order m stays the integer it is
                    let keep = *kind == Multipole && k == 0;
                    let jitter = if keep { 0.0 } else { 0.02 * t.abs().max(0.1) };
                    params.push(t + jitter * unit.sample(&mut rng));
                }
            }
            for &t in light {
                params.push(t + 0.02 * t.abs().max(0.1) * unit.sample(&mut rng));
            }
        }
        let ms = measure(reps, || {
            std::hint::black_box(model.value_and_grad(&params));
        });
        let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
        let name = names.join(" + ");
        rows.push((
            name.clone(),
            timing(&format!("fused value+grad, {name}"), batch, ms),
        ));
    }
    Ok(rows)
}
