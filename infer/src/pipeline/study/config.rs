//! What a study is: its configuration, the identity that decides whether two runs belong to the same
//! study (model file content, seed, n, every fit setting), the shard a process runs, and `study.json`.

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

use crate::inference::MapOptions;
use crate::pipeline::fit::FitConfig;

/// Version of `study.json` and of the result and summary files.
pub const FORMAT: u32 = 1;

/// Everything `infer study` needs; the fit settings are shared by every system.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StudyConfig {
    pub model: PathBuf,
    pub checkpoint: Option<PathBuf>,
    /// Number of mock systems (GIGA-Lens: 100).
    pub n_systems: usize,
    /// System i is mocked with seed `seed + i` and fitted with seed `seed + i`.
    pub seed: u64,
    /// Fit settings shared by every system (`obs`, `truths` and `seed` are set per system).
    pub fit: FitConfig,
    /// Whether the `--quick` smoke settings were the starting point of `fit`.
    #[serde(default)]
    pub quick: bool,
    /// Real-galaxy sources in place of the model's VAE source (`--source-images`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_images: Option<super::SourceImages>,
}

/// `--quick`: a smoke setting (few MAP starts, short chains) for trying the machinery, not for
/// calibration: its chains are far too short for the ESS >= 400 bar, so its systems come out flagged.
pub fn quick_settings(fit: &mut FitConfig) {
    fit.map_starts = 16;
    fit.map_retries = 0;
    fit.map = MapOptions {
        keep_traces: fit.map.keep_traces,
        ..MapOptions::with_steps(100)
    };
    fit.polish_starts = 1;
    fit.lbfgs.max_iter = 200;
    fit.vi = fit.vi.clone().with_steps(40);
    fit.vi.n_samples = 8;
    fit.hmc_chains = 4;
    fit.hmc.n_burn = 40;
    fit.hmc.n_samples = 40;
    // short chains never reach the targets: retrying or continuing them would only multiply the smoke
    // test's time
    fit.hmc.retry.max_rounds = 1;
    fit.hmc.retry.extend = 0.0;
}

impl StudyConfig {
    /// The identity of the study: two runs with the same identity are shards of one study. The model
    /// file enters by content (SHA-256), not by path, so shards may see it at different paths.
    pub fn identity(&self) -> Result<Value> {
        let mut settings = serde_json::to_value(&self.fit)?;
        if let Value::Object(m) = &mut settings {
            // set per system, or named separately below
            for k in ["obs", "truths", "seed", "model", "checkpoint"] {
                m.remove(k);
            }
        }
        // an explicit checkpoint enters by content too: shards may spell its path differently, and
        // one retrained in place is another prior
        let checkpoint = match &self.checkpoint {
            Some(dir) => Some(checkpoint_sha256(dir)?),
            None => None,
        };
        let mut id = json!({
            "model_sha256": sha256_file(&self.model)?,
            "checkpoint": checkpoint,
            "seed": self.seed,
            "n": self.n_systems,
            "quick": self.quick,
            "settings": settings,
        });
        // (absent without real-galaxy sources, so earlier studies keep their identity)
        if let Some(src) = &self.source_images {
            id["source_images"] = json!({"sha256": src.sha256, "split": src.split});
        }
        Ok(id)
    }
}

/// Hex SHA-256 of a VAE checkpoint's content: its decoder weights and latent prior (what a fit
/// uses of it).
pub fn checkpoint_sha256(dir: &Path) -> Result<String> {
    use arclight_vae::checkpoint::{DECODER_FILE, PRIOR_FILE};
    let mut h = Sha256::new();
    for f in [DECODER_FILE, PRIOR_FILE] {
        let path = dir.join(f);
        let (hex, _) = arclight_core::hash::sha256_file(&path)
            .with_context(|| format!("checkpoint {}: cannot read {f}", dir.display()))?;
        h.update(hex.as_bytes());
    }
    Ok(hex(&h.finalize()))
}

/// Hex SHA-256 of a file's bytes.
pub fn sha256_file(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read model file {}", path.display()))?;
    Ok(hex(&Sha256::digest(&bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Short id of an identity: the first 16 hex digits of the SHA-256 of its JSON text (keys sorted).
pub fn study_id(identity: &Value) -> String {
    let text = serde_json::to_string(identity).unwrap_or_default();
    hex(&Sha256::digest(text.as_bytes()))[..16].to_string()
}

/// A shard `K/M` (1-based): the systems i with i mod M = K - 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub k: usize,
    pub m: usize,
}

impl Shard {
    /// The whole study in one process.
    pub const ALL: Shard = Shard { k: 1, m: 1 };

    /// Parse `K/M` with 1 <= K <= M.
    pub fn parse(s: &str) -> Result<Shard> {
        let bad = || anyhow::anyhow!("--shard {s:?}: expected K/M with 1 <= K <= M (e.g. 2/8)");
        let (k, m) = s.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let m: usize = m.trim().parse().map_err(|_| bad())?;
        if m == 0 || k == 0 || k > m {
            return Err(bad());
        }
        Ok(Shard { k, m })
    }

    /// Whether system `i` belongs to this shard.
    pub fn contains(&self, i: usize) -> bool {
        i % self.m == self.k - 1
    }

    /// The systems of this shard among `0..n`, in order.
    pub fn systems(&self, n: usize) -> impl Iterator<Item = usize> + '_ {
        (self.k - 1..n).step_by(self.m)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.m)
    }
}

impl Serialize for Shard {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Shard {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Shard, D::Error> {
        let s = String::deserialize(d)?;
        Shard::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// `study.json`: written once when a study directory is created, checked on `--resume` and by
/// `summarize`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StudyFile {
    pub format: u32,
    pub study_id: String,
    pub identity: Value,
    pub shard: Shard,
    pub config: StudyConfig,
    /// Content of the VAE checkpoint the fits use ([`checkpoint_sha256`]; the model file's or the
    /// shipped one when `--checkpoint` is not given), checked on resume and when shards merge.
    /// Absent for models without a VAE source and in studies started before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_sha256: Option<String>,
}

impl StudyFile {
    pub fn new(config: &StudyConfig, shard: Shard) -> Result<StudyFile> {
        let identity = config.identity()?;
        Ok(StudyFile {
            format: FORMAT,
            study_id: study_id(&identity),
            identity,
            shard,
            config: config.clone(),
            checkpoint_sha256: None,
        })
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join("study.json")
    }

    /// Read `dir/study.json`.
    pub fn load(dir: &Path) -> Result<StudyFile> {
        let path = Self::path(dir);
        if !path.exists() {
            bail!("{}: not a study directory (no study.json)", dir.display());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let f: StudyFile = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a valid study file", path.display()))?;
        if f.format > FORMAT {
            bail!(
                "{}: study format {} is newer than this program's {}",
                path.display(),
                f.format,
                FORMAT
            );
        }
        Ok(f)
    }
}

pub use crate::pipeline::json_diff::json_diff;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_systems() {
        assert_eq!(Shard::parse("2/3").unwrap(), Shard { k: 2, m: 3 });
        for bad in ["0/3", "4/3", "1/0", "3", "a/b", ""] {
            let e = Shard::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--shard"), "{bad}: {e}");
        }
        let n = 10;
        let mut seen = vec![0; n];
        for k in 1..=3 {
            let s = Shard { k, m: 3 };
            for i in s.systems(n) {
                assert!(s.contains(i));
                seen[i] += 1;
            }
        }
        assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
        assert_eq!(
            Shard { k: 2, m: 3 }.systems(n).collect::<Vec<_>>(),
            [1, 4, 7]
        );
        assert_eq!(Shard { k: 3, m: 3 }.systems(2).count(), 0);
        let v = serde_json::to_value(Shard { k: 2, m: 5 }).unwrap();
        assert_eq!(v, json!("2/5"));
        assert_eq!(
            serde_json::from_value::<Shard>(v).unwrap(),
            Shard { k: 2, m: 5 }
        );
    }

    #[test]
    fn identity_depends_on_model_content_seed_n_and_settings_only() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.toml");
        std::fs::write(&model, "name = \"x\"\n").unwrap();
        let cfg = StudyConfig {
            model: model.clone(),
            checkpoint: None,
            n_systems: 4,
            seed: 7,
            fit: FitConfig::new(PathBuf::new(), model.clone()),
            quick: false,
            source_images: None,
        };
        let id = study_id(&cfg.identity().unwrap());
        // same content at another path: same study
        let copy = dir.path().join("copy.toml");
        std::fs::copy(&model, &copy).unwrap();
        let mut moved = cfg.clone();
        moved.model = copy.clone();
        moved.fit.model = copy;
        assert_eq!(study_id(&moved.identity().unwrap()), id);
        // a different seed, n, setting or model content: another study, and the diff names it
        let mut other = cfg.clone();
        other.seed = 8;
        other.fit.hmc_chains = 3;
        let d = json_diff(&cfg.identity().unwrap(), &other.identity().unwrap(), 10);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("seed: 7 vs 8"), "{d:?}");
        assert!(d[1].starts_with("settings.hmc_chains: 8 vs 3"), "{d:?}");
        assert_ne!(study_id(&other.identity().unwrap()), id);
        std::fs::write(&model, "name = \"y\"\n").unwrap();
        assert_ne!(study_id(&cfg.identity().unwrap()), id);
    }
}
