//! Model components: the kinds a model file can name (every registered mass profile, Sersic light,
//! the VAE and pixelated sources), their parameters, and the parser of a `[[mass]]`, `[[lens_light]]`
//! or `[[source]]` array.

use anyhow::{Result, anyhow, bail};
use std::path::{Path, PathBuf};
use toml::Value;

use super::dist::Dist;
use super::{check_keys, opt_int};
use crate::lens::profile::{LightKind, MassKind};

/// One scalar parameter of a component.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    /// Full name, `<component>.<param>` (e.g. `lens.theta_e`).
    pub name: String,
    /// The parameter's own name within its component (e.g. `theta_e`).
    pub key: String,
    pub prior: Dist,
    /// Simulation distribution for `infer mock` (defaults to the prior).
    pub sim: Dist,
    /// A pinned truth for `infer mock`, if given.
    pub truth: Option<f64>,
}

/// The kinds of model component a file can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComponentKind {
    /// A mass profile of the registry ([`crate::lens::profile`]): EPL, SIE, SIS, shear, NFW, ...
    Mass(MassKind),
    /// A light profile of the registry ([`crate::lens::profile`]): Sersic, Gaussian, ...
    Light(LightKind),
    /// VAE source of Chianese eq. (17).
    Vae,
    /// A fixed pixelated source image (e.g. a COSMOS stamp).
    Pixelated,
}

impl ComponentKind {
    fn parse(s: &str) -> Option<Self> {
        let s = s.to_ascii_lowercase();
        Some(match s.as_str() {
            "spep" | "sple" => ComponentKind::Mass(MassKind::Epl),
            "vae" => ComponentKind::Vae,
            "pixelated" => ComponentKind::Pixelated,
            _ => match LightKind::parse(&s) {
                Some(k) => ComponentKind::Light(k),
                None => ComponentKind::Mass(MassKind::parse(&s)?),
            },
        })
    }

    /// Its name in model files.
    pub fn name(self) -> &'static str {
        match self {
            ComponentKind::Mass(k) => k.name(),
            ComponentKind::Light(k) => k.name(),
            ComponentKind::Vae => "vae",
            ComponentKind::Pixelated => "pixelated",
        }
    }

    /// Parameter keys the component accepts (ellipticity as e1/e2 or q/phi, not both).
    pub fn keys(self) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = match self {
            ComponentKind::Mass(k) => k.keys().to_vec(),
            ComponentKind::Light(k) => k.keys().to_vec(),
            ComponentKind::Vae | ComponentKind::Pixelated => vec!["x_src", "y_src", "s", "i"],
        };
        if self.is_elliptical() {
            let at = keys
                .iter()
                .position(|k| *k == "e2")
                .map_or(keys.len(), |i| i + 1);
            keys.splice(at..at, ["q", "phi"]);
        }
        keys
    }

    /// Defaults for keys a file may omit.
    fn default_of(self, key: &str) -> Option<f64> {
        match (self, key) {
            (ComponentKind::Mass(k), _) => k.default_of(key),
            (ComponentKind::Light(k), _) => k.default_of(key),
            (_, "center_x" | "center_y" | "x_src" | "y_src") => Some(0.0),
            (ComponentKind::Vae | ComponentKind::Pixelated, "s" | "i") => Some(1.0),
            _ => None,
        }
    }

    /// The period of an angle-like key: an ellipse's position angle `phi` (pi, Chianese eqs.
    /// 19-20) and what a mass profile declares (a multipole's `phi_m`), given the fixed keys' values.
    pub fn period_of(self, key: &str, fixed: &dyn Fn(&str) -> Option<f64>) -> Option<f64> {
        match self {
            _ if key == "phi" && self.is_elliptical() => Some(std::f64::consts::PI),
            ComponentKind::Mass(k) => k.period_of(key, fixed),
            _ => None,
        }
    }

    /// Whether the ellipticity (e1, e2) may be given as (q, phi) instead.
    pub fn is_elliptical(self) -> bool {
        match self {
            ComponentKind::Mass(k) => k.keys().contains(&"e1") && k.keys().contains(&"e2"),
            ComponentKind::Light(k) => k.keys().contains(&"e1") && k.keys().contains(&"e2"),
            _ => false,
        }
    }
}

/// A model component with its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    pub kind: ComponentKind,
    /// Prefix of its parameter names (default: `lens`, `shear`, `light`, `src`, numbered if repeated).
    pub label: String,
    pub params: Vec<ParamSpec>,
    /// Ellipticity given as (q, phi) instead of (e1, e2) (Chianese eqs. 19-20).
    pub q_phi: bool,
    /// Pixelated source: data set file and image index; VAE: checkpoint override.
    pub file: Option<PathBuf>,
    pub index: usize,
}

impl Component {
    /// The parameter with this key.
    pub fn param(&self, key: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.key == key)
    }

    /// The period of this key's parameter, if it is an angle ([`ComponentKind::period_of`]).
    pub fn period_of(&self, key: &str) -> Option<f64> {
        let fixed = |k: &str| match self.param(k)?.prior {
            Dist::Fixed(v) => Some(v),
            _ => None,
        };
        self.kind.period_of(key, &fixed)
    }
}

pub(super) fn components(
    v: Option<&Value>,
    key: &str,
    f: &str,
    dir: &Path,
    labels: &mut Vec<String>,
    allowed: &[ComponentKind],
) -> Result<Vec<Component>> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let items: Vec<&toml::Table> = match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_table()
                    .ok_or_else(|| anyhow!("{f}: every [[{key}]] entry must be a table"))
            })
            .collect::<Result<_>>()?,
        Value::Table(t) => vec![t],
        _ => bail!("{f}: {key} must be a table or an array of tables ([[{key}]])"),
    };
    let mut out = Vec::new();
    for (i, t) in items.into_iter().enumerate() {
        let ty = t
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{f}: {key}[{i}].type is missing"))?;
        let kind = ComponentKind::parse(ty)
            .filter(|k| allowed.contains(k))
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|k| k.name()).collect();
                anyhow!(
                    "{f}: {key}[{i}].type {ty:?} is not allowed here (allowed: {})",
                    names.join(", ")
                )
            })?;
        let default_label = match (key, kind) {
            ("mass", ComponentKind::Mass(MassKind::Shear)) => "shear",
            ("mass", _) => "lens",
            ("lens_light", _) => "light",
            _ => "src",
        };
        let mut label = t
            .get("label")
            .and_then(Value::as_str)
            .unwrap_or(default_label)
            .to_string();
        if labels.contains(&label) {
            let mut n = 2;
            while labels.contains(&format!("{label}{n}")) {
                n += 1;
            }
            label = format!("{label}{n}");
        }
        labels.push(label.clone());
        let what = format!("{key}[{i}] ({label})");
        let file = t.get("file").and_then(Value::as_str).map(|s| dir.join(s));
        let index = opt_int(t, "index", f, &what)?.unwrap_or(0);
        let mut params = Vec::new();
        for (k, v) in t {
            if matches!(
                k.as_str(),
                "type" | "label" | "file" | "index" | "checkpoint"
            ) {
                continue;
            }
            if !kind.keys().contains(&k.as_str()) {
                bail!(
                    "{f}: {what}: unknown parameter {k:?} for type {ty:?} (known: {})",
                    kind.keys().join(", ")
                );
            }
            params.push(param(&label, k, v, f, &what)?);
        }
        let file = if kind == ComponentKind::Vae {
            t.get("checkpoint")
                .and_then(Value::as_str)
                .map(|s| dir.join(s))
                .or(file)
        } else {
            file
        };
        let present: Vec<String> = params.iter().map(|p| p.key.clone()).collect();
        let has = |k: &str| present.iter().any(|p| p == k);
        let q_phi = has("q") || has("phi");
        if kind.is_elliptical() {
            if q_phi && (has("e1") || has("e2")) {
                bail!("{f}: {what}: give the ellipticity as e1/e2 or as q/phi, not both");
            }
            let pair: [&str; 2] = if q_phi { ["q", "phi"] } else { ["e1", "e2"] };
            for k in pair {
                if !has(k) {
                    let v = if k == "q" { 1.0 } else { 0.0 };
                    params.push(fixed(&label, k, v));
                }
            }
        }
        for k in kind.keys() {
            if has(k) || (kind.is_elliptical() && matches!(k, "e1" | "e2" | "q" | "phi")) {
                continue;
            }
            match kind.default_of(k) {
                Some(v) => params.push(fixed(&label, k, v)),
                None => bail!("{f}: {what}: parameter {k:?} is missing"),
            }
        }
        // Stable order: the kind's key order.
        params.sort_by_key(|p| {
            kind.keys()
                .iter()
                .position(|k| *k == p.key)
                .unwrap_or(usize::MAX)
        });
        if let ComponentKind::Mass(mk) = kind {
            for p in &params {
                let value = match (&p.prior, &p.sim) {
                    (Dist::Fixed(a), Dist::Fixed(b)) if a == b => Some(*a),
                    _ => None,
                };
                let verdict = mk.check_fixed(&p.key, value.unwrap_or(f64::NAN));
                match (verdict, value) {
                    (None, _) => {}
                    (Some(_), None) => {
                        bail!("{f}: {what}.{}: must be a fixed number", p.key)
                    }
                    (Some(Err(e)), Some(_)) => bail!("{f}: {what}.{}: {e}", p.key),
                    (Some(Ok(())), Some(_)) => {}
                }
            }
        }
        if kind == ComponentKind::Pixelated && file.is_none() {
            bail!(
                "{f}: {what}: a pixelated source needs `file` (a prepared .h5 data set) and `index`"
            );
        }
        out.push(Component {
            kind,
            label,
            params,
            q_phi: q_phi && kind.is_elliptical(),
            file,
            index,
        });
    }
    Ok(out)
}

fn fixed(label: &str, key: &str, v: f64) -> ParamSpec {
    ParamSpec {
        name: format!("{label}.{key}"),
        key: key.into(),
        prior: Dist::Fixed(v),
        sim: Dist::Fixed(v),
        truth: None,
    }
}

fn param(label: &str, key: &str, v: &Value, f: &str, what: &str) -> Result<ParamSpec> {
    let field = format!("{f}: {what}.{key}");
    let name = format!("{label}.{key}");
    let num = |v: &Value| v.as_float().or_else(|| v.as_integer().map(|i| i as f64));
    let (prior, sim, truth) = match v {
        Value::String(s) => {
            let d = Dist::parse(s, &field)?;
            (d.clone(), d, None)
        }
        v if num(v).is_some() => {
            let x = num(v).unwrap_or_default();
            (Dist::Fixed(x), Dist::Fixed(x), None)
        }
        Value::Table(t) => {
            check_keys(t, &["prior", "sim", "truth"], f, &format!("{what}.{key}."))?;
            let prior = match t.get("prior") {
                Some(Value::String(s)) => Dist::parse(s, &format!("{field}.prior"))?,
                Some(v) if num(v).is_some() => Dist::Fixed(num(v).unwrap_or_default()),
                Some(_) => bail!("{field}.prior must be a distribution string or a number"),
                None => bail!("{field}: `prior` is missing"),
            };
            let sim = match t.get("sim") {
                Some(Value::String(s)) => Dist::parse(s, &format!("{field}.sim"))?,
                Some(v) if num(v).is_some() => Dist::Fixed(num(v).unwrap_or_default()),
                Some(_) => bail!("{field}.sim must be a distribution string or a number"),
                None => prior.clone(),
            };
            let truth = match t.get("truth") {
                Some(v) => Some(num(v).ok_or_else(|| anyhow!("{field}.truth must be a number"))?),
                None => None,
            };
            (prior, sim, truth)
        }
        _ => bail!(
            "{field}: expected a distribution string, a number or a table {{ prior = ..., sim = ... }}"
        ),
    };
    Ok(ParamSpec {
        name,
        key: key.into(),
        prior,
        sim,
        truth,
    })
}
