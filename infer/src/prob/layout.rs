//! The named parameter layout: which columns of the unconstrained vector `u` (GIGA-Lens' Theta~) hold which
//! physical parameter, with its prior and bijector (GIGA-Lens eqs. 11-12).
//!
//! A block parameter (the VAE latent `z` with its fitted multivariate normal prior, or several iid scalars)
//! occupies a contiguous range of columns. Physical and unconstrained vectors have the same length and
//! column order; batches are row-major `batch x dim`. A multivariate normal block N(mu, L L^T) is sampled in
//! its whitened (non-centred) coordinates w, z = mu + L w, where its prior is N(0, I): the shipped latent
//! prior has correlations up to 0.89 and variances over a factor 355, which Adam's per-coordinate steps and
//! L-BFGS's scalar initial Hessian do not undo.

use std::ops::Range;

use anyhow::{Context, Result, bail, ensure};
use rand::Rng;

use super::bijector::Bijector;
use super::prior::{MvNormal, Prior};

/// Prior of one named block.
#[derive(Clone, Debug, PartialEq)]
pub enum BlockPrior {
    /// The same scalar prior for each component (a scalar parameter is a block of size 1).
    Iid(Prior),
    /// A joint multivariate normal, sampled in whitened coordinates (x = mean + L u).
    MvNormal(MvNormal),
}

/// One named parameter (or block of parameters) and its place in the unconstrained vector.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamBlock {
    pub name: String,
    /// First column.
    pub offset: usize,
    /// Number of columns.
    pub dim: usize,
    pub prior: BlockPrior,
    /// Component-wise bijector x = g(u) (unused for a multivariate normal block, which maps its whole
    /// range at once: x = mean + L u).
    pub bijector: Bijector,
}

impl ParamBlock {
    pub fn range(&self) -> Range<usize> {
        self.offset..self.offset + self.dim
    }
}

/// Ordered set of named parameter blocks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ParamLayout {
    blocks: Vec<ParamBlock>,
    dim: usize,
}

impl ParamLayout {
    pub fn new() -> Self {
        Self::default()
    }

    fn check_name(&self, name: &str) -> Result<()> {
        ensure!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.'),
            "parameter name {name:?} must be non-empty and use only ASCII letters, digits, '_' and '.'"
        );
        ensure!(
            self.block(name).is_none(),
            "parameter {name:?} is defined twice"
        );
        Ok(())
    }

    /// Adds a scalar parameter; `bijector = None` takes the prior's default (identity / exp / sigmoid).
    /// Returns its column.
    pub fn add_scalar(
        &mut self,
        name: &str,
        prior: Prior,
        bijector: Option<Bijector>,
    ) -> Result<usize> {
        Ok(self.add_iid(name, 1, prior, bijector)?.start)
    }

    /// Adds a block of `dim` independent parameters sharing one prior and bijector. Returns its columns.
    ///
    /// The bijector must map onto exactly the prior's support: a smaller image would silently truncate the
    /// prior, a larger one would let the samplers step into regions of zero density.
    pub fn add_iid(
        &mut self,
        name: &str,
        dim: usize,
        prior: Prior,
        bijector: Option<Bijector>,
    ) -> Result<Range<usize>> {
        self.check_name(name)?;
        ensure!(dim > 0, "parameter {name:?}: block size must be at least 1");
        prior
            .validate()
            .with_context(|| format!("parameter {name:?}"))?;
        let bijector = bijector.unwrap_or_else(|| prior.default_bijector());
        bijector
            .validate()
            .with_context(|| format!("parameter {name:?}"))?;
        if bijector.support() != prior.support() {
            bail!(
                "parameter {name:?}: the {} bijector maps onto {:?} but the {} prior has support {:?}",
                bijector.name(),
                bijector.support(),
                prior.name(),
                prior.support()
            );
        }
        Ok(self.push(name, dim, BlockPrior::Iid(prior), bijector))
    }

    /// Adds a block with a joint multivariate normal prior (e.g. the VAE latent z). Returns its columns.
    pub fn add_mvnormal(&mut self, name: &str, prior: MvNormal) -> Result<Range<usize>> {
        self.check_name(name)?;
        let dim = prior.dim();
        Ok(self.push(name, dim, BlockPrior::MvNormal(prior), Bijector::Identity))
    }

    fn push(
        &mut self,
        name: &str,
        dim: usize,
        prior: BlockPrior,
        bijector: Bijector,
    ) -> Range<usize> {
        let offset = self.dim;
        self.blocks.push(ParamBlock {
            name: name.to_string(),
            offset,
            dim,
            prior,
            bijector,
        });
        self.dim += dim;
        offset..offset + dim
    }

    /// Total number of columns P.
    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn blocks(&self) -> &[ParamBlock] {
        &self.blocks
    }

    pub fn block(&self, name: &str) -> Option<&ParamBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    /// Columns of a named block; error naming the parameter if unknown.
    pub fn range(&self, name: &str) -> Result<Range<usize>> {
        self.block(name).map(ParamBlock::range).with_context(|| {
            format!(
                "unknown parameter {name:?} (known: {})",
                self.names().join(", ")
            )
        })
    }

    /// Column of a scalar parameter.
    pub fn column(&self, name: &str) -> Result<usize> {
        let r = self.range(name)?;
        ensure!(
            r.len() == 1,
            "parameter {name:?} is a block of {} columns, not a scalar",
            r.len()
        );
        Ok(r.start)
    }

    /// Block names in column order.
    pub fn names(&self) -> Vec<String> {
        self.blocks.iter().map(|b| b.name.clone()).collect()
    }

    /// One label per column: the block name for scalars, `name[i]` inside blocks.
    pub fn column_names(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.dim);
        for b in &self.blocks {
            if b.dim == 1 {
                out.push(b.name.clone());
            } else {
                out.extend((0..b.dim).map(|i| component_name(&b.name, i)));
            }
        }
        out
    }

    fn rows(&self, len: usize, what: &str) -> usize {
        assert!(self.dim > 0, "empty parameter layout");
        assert_eq!(
            len % self.dim,
            0,
            "{what}: length {len} is not a multiple of the layout dimension {}",
            self.dim
        );
        len / self.dim
    }

    /// x = g(u) for a batch (row-major `batch x dim`).
    pub fn to_physical(&self, u: &[f64], x: &mut [f64]) {
        let n = self.rows(u.len(), "to_physical");
        assert_eq!(x.len(), u.len());
        for r in 0..n {
            for b in &self.blocks {
                let at = r * self.dim + b.offset..r * self.dim + b.offset + b.dim;
                match &b.prior {
                    BlockPrior::MvNormal(m) => m.unwhiten(&u[at.clone()], &mut x[at]),
                    BlockPrior::Iid(_) => {
                        for k in at {
                            x[k] = b.bijector.forward(u[k]);
                        }
                    }
                }
            }
        }
    }

    /// u = g^{-1}(x) for a batch; errors name the parameter whose value lies outside its support.
    pub fn from_physical(&self, x: &[f64], u: &mut [f64]) -> Result<()> {
        let n = self.rows(x.len(), "from_physical");
        assert_eq!(x.len(), u.len());
        for r in 0..n {
            for b in &self.blocks {
                let at = r * self.dim + b.offset..r * self.dim + b.offset + b.dim;
                match &b.prior {
                    BlockPrior::MvNormal(m) => {
                        let w = m.whiten(&x[at.clone()]);
                        ensure!(
                            w.iter().all(|v| v.is_finite()),
                            "parameter {:?}: not finite",
                            b.name
                        );
                        u[at].copy_from_slice(&w);
                    }
                    BlockPrior::Iid(_) => {
                        for k in at {
                            u[k] = b
                                .bijector
                                .inverse(x[k])
                                .with_context(|| format!("parameter {:?}", b.name))?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// log p(x) of one physical row (no Jacobian): the prior term of the posterior in physical space.
    pub fn log_prior(&self, x: &[f64]) -> f64 {
        assert_eq!(x.len(), self.dim);
        self.blocks
            .iter()
            .map(|b| match &b.prior {
                BlockPrior::Iid(p) => b.range().map(|c| p.log_prob(x[c])).sum::<f64>(),
                BlockPrior::MvNormal(m) => m.log_prob(&x[b.range()]),
            })
            .sum()
    }

    /// log p(g(u)) + log|J(u)| per row (eq. 11) into `out[batch]`, and, if given, its gradient w.r.t. `u`
    /// into `grad[batch * dim]` (overwritten).
    pub fn log_prior_plus_logdet(&self, u: &[f64], out: &mut [f64], mut grad: Option<&mut [f64]>) {
        let n = self.rows(u.len(), "log_prior_plus_logdet");
        assert_eq!(out.len(), n);
        if let Some(g) = grad.as_deref() {
            assert_eq!(g.len(), u.len());
        }
        let d = self.dim;
        for r in 0..n {
            let row = &u[r * d..(r + 1) * d];
            let mut total = 0.0;
            for b in &self.blocks {
                match &b.prior {
                    BlockPrior::Iid(p) => {
                        for c in b.range() {
                            let x = b.bijector.forward(row[c]);
                            total += p.log_prob(x) + b.bijector.log_det_jacobian(row[c]);
                            if let Some(g) = grad.as_deref_mut() {
                                g[r * d + c] = p.grad_log_prob(x) * b.bijector.derivative(row[c])
                                    + b.bijector.grad_log_det_jacobian(row[c]);
                            }
                        }
                    }
                    // in whitened coordinates: log N(mean + L w) + log|det L| = log N(w; 0, I)
                    BlockPrior::MvNormal(_) => {
                        let w = &row[b.range()];
                        total -= 0.5 * w.iter().map(|v| v * v).sum::<f64>()
                            + b.dim as f64 * crate::math::special::HALF_LN_2PI;
                        if let Some(g) = grad.as_deref_mut() {
                            for (gk, wk) in g[r * d + b.offset..][..b.dim].iter_mut().zip(w) {
                                *gk = -wk;
                            }
                        }
                    }
                }
            }
            out[r] = total;
        }
    }

    /// Chain rule for a batch: `grad_u = grad_x * g'(u)` component-wise, `L^T grad_x` on a multivariate
    /// normal block.
    pub fn pullback_gradient(&self, u: &[f64], grad_x: &[f64], grad_u: &mut [f64]) {
        let n = self.rows(u.len(), "pullback_gradient");
        assert!(grad_x.len() == u.len() && grad_u.len() == u.len());
        for r in 0..n {
            for b in &self.blocks {
                let at = r * self.dim + b.offset..r * self.dim + b.offset + b.dim;
                match &b.prior {
                    BlockPrior::MvNormal(m) => {
                        m.pullback_white(&grad_x[at.clone()], &mut grad_u[at])
                    }
                    BlockPrior::Iid(_) => {
                        for k in at {
                            grad_u[k] = grad_x[k] * b.bijector.derivative(u[k]);
                        }
                    }
                }
            }
        }
    }

    /// `n` draws from the prior, returned in UNCONSTRAINED space (row-major `n x dim`): the multistart MAP
    /// initialisation of GIGA-Lens Sec. 2.3 (Theta~_i ~ p~(Theta~)).
    pub fn sample_prior<R: Rng + ?Sized>(&self, rng: &mut R, n: usize) -> Vec<f64> {
        let x = self.sample_prior_physical(rng, n);
        let mut u = vec![0.0; x.len()];
        for k in 0..x.len() {
            let b = self.block_of_column(k % self.dim);
            if let BlockPrior::MvNormal(m) = &b.prior {
                // the whole block at its first column
                if k % self.dim == b.offset {
                    let w = m.whiten(&x[k..k + b.dim]);
                    u[k..k + b.dim].copy_from_slice(&w);
                }
                continue;
            }
            // Draws lie strictly inside the open support (see `open_unit`), so the inverse exists; a draw
            // that rounds onto a bound in f64 is clamped to the largest finite unconstrained value.
            let xk = x[k];
            u[k] = b.bijector.inverse(xk).unwrap_or_else(|_| {
                let (lo, _) = b.bijector.support();
                if xk <= lo { -700.0 } else { 700.0 }
            });
        }
        u
    }

    /// `n` draws from the prior in PHYSICAL units (row-major `n x dim`).
    pub fn sample_prior_physical<R: Rng + ?Sized>(&self, rng: &mut R, n: usize) -> Vec<f64> {
        let d = self.dim;
        let mut x = vec![0.0; n * d];
        for r in 0..n {
            for b in &self.blocks {
                match &b.prior {
                    BlockPrior::Iid(p) => {
                        for c in b.range() {
                            x[r * d + c] = p.sample(rng);
                        }
                    }
                    BlockPrior::MvNormal(m) => {
                        m.sample_into(rng, &mut x[r * d + b.offset..][..b.dim])
                    }
                }
            }
        }
        x
    }

    fn block_of_column(&self, c: usize) -> &ParamBlock {
        self.blocks
            .iter()
            .find(|b| b.range().contains(&c))
            .expect("column inside the layout")
    }
}

/// The column name of component `i` of the vector block `block` (`src.z[3]`): how samples files,
/// summaries and study results name the components of a block (the VAE latent).
pub fn component_name(block: &str, i: usize) -> String {
    format!("{block}[{i}]")
}

/// The vector block a column name belongs to and its index there (`src.z[3]` -> (`src.z`, 3));
/// None for a scalar parameter.
pub fn vector_component(name: &str) -> Option<(&str, usize)> {
    let (block, index) = name.strip_suffix(']')?.rsplit_once('[')?;
    Some((block, index.parse().ok()?))
}

/// The vector block a column name belongs to (`src.z[3]` -> `src.z`); None for a scalar parameter.
pub fn vector_block(name: &str) -> Option<&str> {
    vector_component(name).map(|(b, _)| b)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    /// Six scalars with every kind of prior (shared with the posterior's tests).
    pub(crate) fn layout() -> ParamLayout {
        let mut l = ParamLayout::new();
        l.add_scalar(
            "theta_e",
            Prior::LogNormal {
                mu: 1.25f64.ln(),
                sigma: 0.4,
            },
            None,
        )
        .unwrap();
        l.add_scalar(
            "gamma",
            Prior::TruncatedNormal {
                mu: 2.0,
                sigma: 0.5,
                lo: 1.0,
                hi: 3.0,
            },
            None,
        )
        .unwrap();
        l.add_scalar(
            "e1",
            Prior::Normal {
                mu: 0.0,
                sigma: 0.2,
            },
            None,
        )
        .unwrap();
        l.add_scalar("n_s", Prior::Uniform { lo: 0.5, hi: 8.0 }, None)
            .unwrap();
        let mvn = MvNormal::new(vec![0.1, -0.2], &[1.0, 0.3, 0.3, 0.5]).unwrap();
        l.add_mvnormal("z", mvn).unwrap();
        l
    }

    #[test]
    fn vector_components_are_named_and_recognised() {
        assert_eq!(component_name("src.z", 3), "src.z[3]");
        assert_eq!(vector_block("src.z[3]"), Some("src.z"));
        assert_eq!(vector_block("lens.gamma"), None);
        assert_eq!(vector_block("odd[x]"), None);
        assert_eq!(vector_block("a[b][2]"), Some("a[b]"));
        assert_eq!(vector_component("src.z[12]"), Some(("src.z", 12)));
    }

    #[test]
    fn physical_round_trip_and_prior_terms() {
        let l = layout();
        assert_eq!(l.dim(), 6);
        assert_eq!(l.column("gamma").unwrap(), 1);
        assert_eq!(l.range("z").unwrap(), 4..6);
        assert_eq!(
            l.column_names(),
            ["theta_e", "gamma", "e1", "n_s", "z[0]", "z[1]"]
        );
        let mut rng = StdRng::seed_from_u64(5);
        let u = l.sample_prior(&mut rng, 3);
        let mut x = vec![0.0; 18];
        l.to_physical(&u, &mut x);
        let mut back = vec![0.0; 18];
        l.from_physical(&x, &mut back).unwrap();
        for (a, b) in u.iter().zip(&back) {
            assert!((a - b).abs() < 1e-9 * (1.0 + a.abs()));
        }
        // log p~(u) = log p(x) + sum log|g'(u)|.
        let mut lp = vec![0.0; 3];
        l.log_prior_plus_logdet(&u, &mut lp, None);
        for r in 0..3 {
            let row = &u[r * 6..(r + 1) * 6];
            let logdet: f64 = l
                .blocks()
                .iter()
                .map(|b| match &b.prior {
                    BlockPrior::Iid(_) => b
                        .range()
                        .map(|c| b.bijector.log_det_jacobian(row[c]))
                        .sum::<f64>(),
                    // x = mean + L u: log|det L|
                    BlockPrior::MvNormal(m) => {
                        (0..b.dim).map(|i| m.cholesky()[i * b.dim + i].ln()).sum()
                    }
                })
                .sum();
            assert!((lp[r] - (l.log_prior(&x[r * 6..(r + 1) * 6]) + logdet)).abs() < 1e-12);
        }
    }

    /// The latent block is sampled in whitened coordinates: x = mean + L u, prior N(0, I) on u.
    #[test]
    fn multivariate_normal_block_is_whitened() {
        let l = layout();
        let u = [0.0, 0.0, 0.0, 1.0, 1.5, -2.0];
        let mut x = [0.0; 6];
        l.to_physical(&u, &mut x);
        // L of [[1, 0.3], [0.3, 0.5]] = [[1, 0], [0.3, sqrt(0.41)]]
        assert!((x[4] - (0.1 + 1.5)).abs() < 1e-12, "{x:?}");
        assert!((x[5] - (-0.2 + 0.3 * 1.5 - 0.41f64.sqrt() * 2.0)).abs() < 1e-12);
        let mut lp = [0.0];
        let mut g = [0.0; 6];
        l.log_prior_plus_logdet(&u, &mut lp, Some(&mut g));
        assert_eq!(&g[4..], &[-1.5, 2.0]);
        // prior draws of the block have unit covariance in u
        let mut rng = StdRng::seed_from_u64(3);
        let n = 20_000;
        let draws = l.sample_prior(&mut rng, n);
        let (mut s44, mut s45) = (0.0, 0.0);
        for r in draws.chunks(6) {
            s44 += r[4] * r[4];
            s45 += r[4] * r[5];
        }
        assert!((s44 / n as f64 - 1.0).abs() < 0.05 && (s45 / n as f64).abs() < 0.05);
    }

    #[test]
    fn layout_errors_name_the_parameter() {
        let mut l = layout();
        let e = l
            .add_scalar(
                "gamma",
                Prior::Normal {
                    mu: 0.0,
                    sigma: 1.0,
                },
                None,
            )
            .unwrap_err();
        assert!(e.to_string().contains("\"gamma\" is defined twice"), "{e}");
        let e = l
            .add_scalar(
                "q",
                Prior::Uniform { lo: 0.2, hi: 1.0 },
                Some(Bijector::Exp),
            )
            .unwrap_err();
        assert!(
            e.to_string().contains("\"q\"") && e.to_string().contains("support"),
            "{e}"
        );
        let e = l
            .add_scalar(
                "s",
                Prior::Normal {
                    mu: 0.0,
                    sigma: -1.0,
                },
                None,
            )
            .unwrap_err();
        assert!(format!("{e:#}").contains("sigma"), "{e:#}");
        let e = l.range("phi").unwrap_err().to_string();
        assert!(
            e.contains("unknown parameter \"phi\"") && e.contains("theta_e"),
            "{e}"
        );
        assert!(l.column("z").is_err());
        let mut u = vec![0.0; 6];
        let e = l
            .from_physical(&[-1.0, 2.0, 0.0, 1.0, 0.0, 0.0], &mut u)
            .unwrap_err();
        assert!(format!("{e:#}").contains("theta_e"), "{e:#}");
    }
}
