//! The distribution mini-language of model files: `normal(mu, sigma)`, `lognormal(mu, sigma)`,
//! `truncnormal(mu, sigma, lo, hi)`, `uniform(lo, hi)`, `fixed(v)`.

use anyhow::{Result, anyhow, bail};

/// A one-dimensional distribution named in a model file.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    Normal {
        mu: f64,
        sigma: f64,
    },
    /// ln x ~ N(mu, sigma).
    LogNormal {
        mu: f64,
        sigma: f64,
    },
    TruncNormal {
        mu: f64,
        sigma: f64,
        lo: f64,
        hi: f64,
    },
    Uniform {
        lo: f64,
        hi: f64,
    },
    Fixed(f64),
}

impl Dist {
    /// Parse `normal(0, 1)` and friends. `what` names the field for errors.
    pub fn parse(s: &str, what: &str) -> Result<Dist> {
        let s = s.trim();
        let open = s
            .find('(')
            .ok_or_else(|| anyhow!("{what}: expected e.g. \"normal(0, 1)\", got {s:?}"))?;
        if !s.ends_with(')') {
            bail!("{what}: missing ')' in {s:?}");
        }
        let name = s[..open].trim().to_ascii_lowercase();
        let args: Vec<f64> = s[open + 1..s.len() - 1]
            .split(',')
            .map(|a| {
                parse_number(a.trim())
                    .ok_or_else(|| anyhow!("{what}: {a:?} is not a number in {s:?}"))
            })
            .collect::<Result<_>>()?;
        let want = |n: usize| -> Result<()> {
            if args.len() != n {
                bail!(
                    "{what}: {name} takes {n} arguments, got {} in {s:?}",
                    args.len()
                );
            }
            Ok(())
        };
        let d = match name.as_str() {
            "normal" | "gaussian" => {
                want(2)?;
                Dist::Normal {
                    mu: args[0],
                    sigma: args[1],
                }
            }
            "lognormal" => {
                want(2)?;
                Dist::LogNormal {
                    mu: args[0],
                    sigma: args[1],
                }
            }
            "truncnormal" | "truncated_normal" => {
                want(4)?;
                Dist::TruncNormal {
                    mu: args[0],
                    sigma: args[1],
                    lo: args[2],
                    hi: args[3],
                }
            }
            "uniform" => {
                want(2)?;
                Dist::Uniform {
                    lo: args[0],
                    hi: args[1],
                }
            }
            "fixed" | "delta" => {
                want(1)?;
                Dist::Fixed(args[0])
            }
            other => bail!(
                "{what}: unknown prior {other:?} (known: normal, lognormal, truncnormal, uniform, fixed)"
            ),
        };
        d.validate(what)?;
        Ok(d)
    }

    fn validate(&self, what: &str) -> Result<()> {
        let finite = |v: f64| v.is_finite();
        match *self {
            Dist::Normal { mu, sigma } | Dist::LogNormal { mu, sigma } => {
                if !(finite(mu) && sigma > 0.0 && finite(sigma)) {
                    bail!("{what}: needs a finite mean and a positive sigma");
                }
            }
            Dist::TruncNormal { mu, sigma, lo, hi } => {
                if !finite(mu) || !(sigma > 0.0) || !(lo < hi) {
                    bail!("{what}: truncnormal needs sigma > 0 and lo < hi");
                }
            }
            Dist::Uniform { lo, hi } => {
                if !(lo < hi) || !finite(lo) || !finite(hi) {
                    bail!("{what}: uniform needs finite lo < hi");
                }
            }
            Dist::Fixed(v) => {
                if !finite(v) {
                    bail!("{what}: fixed value must be finite");
                }
            }
        }
        Ok(())
    }

    pub fn is_fixed(&self) -> bool {
        matches!(self, Dist::Fixed(_))
    }
}

fn parse_number(s: &str) -> Option<f64> {
    // Allow `ln 1.25` / `ln(1.25)` for GIGA-Lens's exp(N(ln 1.25, 0.25)) notation.
    let t = s.trim();
    if let Some(rest) = t.strip_prefix("ln") {
        let inner = rest
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .trim();
        return inner.parse::<f64>().ok().filter(|v| *v > 0.0).map(f64::ln);
    }
    t.parse::<f64>().ok()
}
