//! Adam (Kingma & Ba 2015), as the paper trains with it (Sec. 2.2), in one fused pass per
//! parameter on the host.
//!
//! The update is PyTorch's (and burn's `Adam`, to f32 rounding):
//!
//! ```text
//! m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,   t <- t + 1
//! theta <- theta - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//! ```
//!
//! Why not burn's `Adam`: on burn-flex it runs about ten element-wise tensor operations per
//! parameter, each allocating a temporary the size of the parameter; for the paper's 40 M
//! parameters (33.5 M of them in the last encoder convolution) that cost about 1 s per step,
//! a fifth of the whole step. Here parameter, gradient and both moments are read and written once,
//! in parallel chunks (rayon), which takes a small fraction of that. The state (moments and step
//! count per parameter, keyed by burn's parameter id, which the saved weights preserve) is saved
//! and restored with [`FusedAdam::save`] / [`FusedAdam::load`] for `--resume`.

use anyhow::{Context, Result, bail, ensure};
use burn::backend::Flex;
use burn::module::{Module, ModuleMapper, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

/// Elements per parallel chunk of the update.
const CHUNK: usize = 1 << 15;
/// File magic of a saved state.
const MAGIC: &[u8; 8] = b"ARCADAM1";

/// Adam hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamParams {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

/// A parameter's gradient as laid out in memory.
enum Grad<'a> {
    /// Same element order as the parameter.
    Contiguous(&'a [f32]),
    /// The parameter is `[d0, d1, inner]`, the data is its `[d1, d0, inner]` transpose.
    Swapped {
        data: &'a [f32],
        d0: usize,
        d1: usize,
        inner: usize,
    },
}

/// The element-wise Adam update with the bias corrections of the current step.
#[derive(Clone, Copy)]
struct Kernel {
    b1: f32,
    b2: f32,
    eps: f32,
    step_size: f32,
    inv_bc2_sqrt: f32,
}

impl Kernel {
    #[inline]
    fn apply(&self, th: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        for i in 0..th.len() {
            let gi = g[i];
            m[i] = self.b1 * m[i] + (1.0 - self.b1) * gi;
            v[i] = self.b2 * v[i] + (1.0 - self.b2) * gi * gi;
            th[i] -= self.step_size * m[i] / (v[i].sqrt() * self.inv_bc2_sqrt + self.eps);
        }
    }
}

/// First and second moments of one parameter.
#[derive(Clone, Debug, PartialEq)]
struct Moments {
    step: u64,
    m: Vec<f32>,
    v: Vec<f32>,
}

/// Adam with per-parameter state on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedAdam {
    params: AdamParams,
    state: BTreeMap<u64, Moments>,
}

impl FusedAdam {
    pub fn new(params: AdamParams) -> Self {
        FusedAdam {
            params,
            state: BTreeMap::new(),
        }
    }

    /// Number of parameters with a state (those that have received a gradient).
    pub fn len(&self) -> usize {
        self.state.len()
    }

    /// True before the first step.
    pub fn is_empty(&self) -> bool {
        self.state.is_empty()
    }

    /// Apply one Adam step with learning rate `lr` to every parameter of `module` that has a
    /// gradient in `grads`; other parameters (and BatchNorm running statistics) are untouched.
    pub fn step<M: Module>(&mut self, lr: f64, module: M, grads: GradientsParams) -> M {
        let mut mapper = Mapper {
            adam: self,
            grads,
            lr,
            containers: Vec::new(),
        };
        module.map(&mut mapper)
    }

    /// Update `theta` in place from `grad`, creating the moments on first use.
    fn update(&mut self, id: u64, theta: &mut [f32], grad: Grad<'_>, lr: f64) {
        let p = self.params;
        let mom = self.state.entry(id).or_insert_with(|| Moments {
            step: 0,
            m: vec![0.0; theta.len()],
            v: vec![0.0; theta.len()],
        });
        assert_eq!(
            mom.m.len(),
            theta.len(),
            "Adam state of parameter {id} has the wrong size"
        );
        mom.step += 1;
        let t = mom.step as i32;
        let k = Kernel {
            b1: p.beta_1,
            b2: p.beta_2,
            eps: p.epsilon,
            step_size: (lr / (1.0 - (p.beta_1 as f64).powi(t))) as f32,
            inv_bc2_sqrt: (1.0 / (1.0 - (p.beta_2 as f64).powi(t)).sqrt()) as f32,
        };
        match grad {
            Grad::Contiguous(g) => {
                assert_eq!(
                    g.len(),
                    theta.len(),
                    "gradient of parameter {id} has the wrong size"
                );
                theta
                    .par_chunks_mut(CHUNK)
                    .zip(mom.m.par_chunks_mut(CHUNK))
                    .zip(mom.v.par_chunks_mut(CHUNK))
                    .zip(g.par_chunks(CHUNK))
                    .for_each(|(((th, m), v), g)| k.apply(th, m, v, g));
            }
            Grad::Swapped {
                data,
                d0,
                d1,
                inner,
            } => {
                // theta is [d0, d1, inner]; data holds the gradient as [d1, d0, inner].
                assert_eq!(
                    data.len(),
                    theta.len(),
                    "gradient of parameter {id} has the wrong size"
                );
                let row = d1 * inner;
                theta
                    .par_chunks_mut(row)
                    .zip(mom.m.par_chunks_mut(row))
                    .zip(mom.v.par_chunks_mut(row))
                    .enumerate()
                    .for_each(|(i0, ((th, m), v))| {
                        for i1 in 0..d1 {
                            let (a, b) = (i1 * inner, (i1 * d0 + i0) * inner);
                            k.apply(
                                &mut th[a..a + inner],
                                &mut m[a..a + inner],
                                &mut v[a..a + inner],
                                &data[b..b + inner],
                            );
                        }
                    });
            }
        }
    }

    /// Write the state to `path` (little-endian binary; use inside an atomic write).
    pub fn save(&self, path: &Path) -> Result<()> {
        let f = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = std::io::BufWriter::new(f);
        w.write_all(MAGIC)?;
        for x in [self.params.beta_1, self.params.beta_2, self.params.epsilon] {
            w.write_all(&x.to_le_bytes())?;
        }
        w.write_all(&(self.state.len() as u64).to_le_bytes())?;
        for (id, mom) in &self.state {
            for x in [*id, mom.step, mom.m.len() as u64] {
                w.write_all(&x.to_le_bytes())?;
            }
            for buf in [&mom.m, &mom.v] {
                let bytes: Vec<u8> = buf.iter().flat_map(|x| x.to_le_bytes()).collect();
                w.write_all(&bytes)?;
            }
        }
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// Read a state written by [`FusedAdam::save`]. The hyper-parameters are the caller's (the
    /// resumed run's configuration); the stored ones are informational.
    pub fn load(path: &Path, params: AdamParams) -> Result<FusedAdam> {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut r = &bytes[..];
        let bad = || {
            format!(
                "{}: not a complete optimizer state (truncated or corrupt)",
                path.display()
            )
        };
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic).with_context(bad)?;
        if &magic != MAGIC {
            bail!("{}: not an arclight optimizer state", path.display());
        }
        let mut f32s = [0f32; 3];
        for x in &mut f32s {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).with_context(bad)?;
            *x = f32::from_le_bytes(b);
        }
        let read_u64 = |r: &mut &[u8]| -> Result<u64> {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).with_context(bad)?;
            Ok(u64::from_le_bytes(b))
        };
        let n = read_u64(&mut r)?;
        let mut state = BTreeMap::new();
        for _ in 0..n {
            let (id, step, len) = (
                read_u64(&mut r)?,
                read_u64(&mut r)?,
                read_u64(&mut r)? as usize,
            );
            ensure!(r.len() >= 8 * len, "{}", bad());
            let take = |r: &mut &[u8]| -> Vec<f32> {
                let (head, tail) = r.split_at(4 * len);
                *r = tail;
                head.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            };
            let m = take(&mut r);
            let v = take(&mut r);
            state.insert(id, Moments { step, m, v });
        }
        ensure!(
            r.is_empty(),
            "{}: trailing bytes after the optimizer state",
            path.display()
        );
        Ok(FusedAdam { params, state })
    }
}

struct Mapper<'a> {
    adam: &'a mut FusedAdam,
    grads: GradientsParams,
    lr: f64,
    /// Container types of the fields being visited, innermost last (burn passes the type of the
    /// struct that owns the field: a Conv2d weight is visited inside "Struct:Conv2d").
    containers: Vec<String>,
}

/// True when `grad` is stored as the (0, 1) transpose of a contiguous buffer, the layout of
/// burn's own Conv2d weight gradient (burn-backend `conv2d_weight_grad_no_groups` swaps the dims
/// of a convolution result). On burn-flex the layout is read off the tensor (the batch-GEMM
/// layers of `model::conv` give contiguous gradients); other backends run burn's convolution, so
/// a Conv2d weight's gradient is taken to be swapped there (`in_conv2d`).
fn stored_swapped<const D: usize>(grad: &Tensor<D>, in_conv2d: bool) -> bool {
    match grad.clone().try_into_primitive::<Flex>() {
        Ok(t) => {
            D >= 2
                && !t.is_contiguous()
                && grad
                    .clone()
                    .swap_dims(0, 1)
                    .try_into_primitive::<Flex>()
                    .is_ok_and(|t| t.is_contiguous())
        }
        Err(_) => D == 4 && in_conv2d,
    }
}

impl ModuleMapper for Mapper<'_> {
    fn enter_module(&mut self, _name: &str, container_type: &str) {
        self.containers.push(container_type.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.containers.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let require_grad = tensor.is_require_grad();
        let autodiff = tensor.device().is_autodiff();
        let inner = tensor.inner();
        let (shape, device) = (inner.shape(), inner.device());
        // Moved out of the module (not cloned) the parameter's buffer is reused without a copy.
        let mut theta: Vec<f32> = inner
            .into_data()
            .try_into_vec()
            .expect("parameters are f32");
        let grad = grad.inner();
        // burn computes a Conv2d weight gradient as the (0, 1) transpose of a convolution result:
        // reading it back through the transpose is a copy-free view, where asking for the
        // weight's own order costs a strided copy (a quarter of a second for the 33.5 M weights
        // of the last encoder convolution). The batched-GEMM layers (model::conv) give
        // contiguous gradients. The update is correct for any layout; only speed depends on this.
        let data;
        let in_conv2d = self.containers.last().is_some_and(|c| c == "Struct:Conv2d");
        let view = if stored_swapped(&grad, in_conv2d) {
            let dims = shape.dims::<D>();
            data = grad.swap_dims(0, 1).into_data();
            Grad::Swapped {
                data: data.as_slice::<f32>().expect("gradients are f32"),
                d0: dims[0],
                d1: dims[1],
                inner: dims[2..].iter().product(),
            }
        } else {
            data = grad.into_data();
            Grad::Contiguous(data.as_slice::<f32>().expect("gradients are f32"))
        };
        self.adam.update(id_of(id), &mut theta, view, self.lr);
        let mut updated = Tensor::<D>::from_data(TensorData::new(theta, shape), &device);
        if autodiff {
            updated = updated.autodiff();
        }
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

fn id_of(id: ParamId) -> u64 {
    id.val()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::AdamConfig;
    use burn::tensor::Device;

    fn loss(l: &Linear, device: &Device, k: usize) -> Tensor<1> {
        let x = Tensor::<2>::from_data(
            TensorData::new(
                (0..12)
                    .map(|i| ((i + 3 * k) as f32 * 0.7).sin())
                    .collect::<Vec<f32>>(),
                [4, 3],
            ),
            device,
        );
        l.forward(x).square().sum()
    }

    #[test]
    fn conv_weights_take_the_transposed_gradient_path_and_match_burns_adam() {
        use burn::nn::conv::{Conv2d, Conv2dConfig};
        let device = Device::flex().autodiff();
        let p = AdamParams {
            beta_1: 0.5,
            beta_2: 0.999,
            epsilon: 1e-8,
        };
        let mut a: Conv2d = Conv2dConfig::new([3, 5], [2, 2])
            .with_bias(false)
            .init(&device);
        let mut b = a.clone();
        let mut ours = FusedAdam::new(p);
        let mut theirs = AdamConfig::new()
            .with_beta_1(0.5)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .init();
        let x = |k: usize| {
            let v: Vec<f32> = (0..2 * 3 * 4 * 4)
                .map(|i| ((i * 7 + k) as f32 * 0.31).cos())
                .collect();
            Tensor::<4>::from_data(TensorData::new(v, [2, 3, 4, 4]), &device)
        };
        // burn's own convolution stores the weight gradient transposed; the batched-GEMM layer
        // of model::conv stores it contiguous.
        let g = a.forward(x(0)).square().sum().backward();
        assert!(stored_swapped(&a.weight.grad(&g).unwrap(), false));
        let g = arclight_vae::model::conv::conv2d_layer(&a, x(0))
            .square()
            .sum()
            .backward();
        assert!(!stored_swapped(&a.weight.grad(&g).unwrap(), true));
        for k in 0..4 {
            let ga = GradientsParams::from_grads(a.forward(x(k)).square().sum().backward(), &a);
            a = ours.step(1e-2, a, ga);
            let gb = GradientsParams::from_grads(b.forward(x(k)).square().sum().backward(), &b);
            b = theirs.step(1e-2, b, gb);
        }
        let wa: Vec<f32> = a.weight.val().into_data().try_to_vec().unwrap();
        let wb: Vec<f32> = b.weight.val().into_data().try_to_vec().unwrap();
        for (x, y) in wa.iter().zip(&wb) {
            assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{wa:?} vs {wb:?}");
        }
    }

    #[test]
    fn matches_burns_adam_and_survives_save_load() {
        let device = Device::flex().autodiff();
        let p = AdamParams {
            beta_1: 0.5,
            beta_2: 0.999,
            epsilon: 1e-8,
        };
        let mut a = LinearConfig::new(3, 2).init(&device);
        let mut b = a.clone();
        let mut ours = FusedAdam::new(p);
        let mut theirs = AdamConfig::new()
            .with_beta_1(0.5)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .init();
        let dir = tempfile::tempdir().unwrap();
        for k in 0..6 {
            let ga = GradientsParams::from_grads(loss(&a, &device, k).backward(), &a);
            a = ours.step(1e-2, a, ga);
            let gb = GradientsParams::from_grads(loss(&b, &device, k).backward(), &b);
            b = theirs.step(1e-2, b, gb);
            if k == 2 {
                // Round trip through a file mid-way (as --resume does).
                ours.save(&dir.path().join("adam.bin")).unwrap();
                ours = FusedAdam::load(&dir.path().join("adam.bin"), p).unwrap();
            }
        }
        assert_eq!(ours.len(), 2);
        let wa: Vec<f32> = a.weight.val().into_data().try_to_vec().unwrap();
        let wb: Vec<f32> = b.weight.val().into_data().try_to_vec().unwrap();
        for (x, y) in wa.iter().zip(&wb) {
            assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{wa:?} vs {wb:?}");
        }
        // Parameters moved (the comparison is not vacuous) and still require gradients.
        let w0: Vec<f32> = LinearConfig::new(3, 2)
            .init(&device)
            .weight
            .val()
            .into_data()
            .try_to_vec()
            .unwrap();
        assert_ne!(wa, w0);
        assert!(a.weight.val().is_require_grad());
        let bytes = std::fs::read(dir.path().join("adam.bin")).unwrap();
        std::fs::write(dir.path().join("cut.bin"), &bytes[..bytes.len() - 3]).unwrap();
        let e = FusedAdam::load(&dir.path().join("cut.bin"), p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
    }
}
