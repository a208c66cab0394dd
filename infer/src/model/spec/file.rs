//! The model file's sections as serde reads them: `deny_unknown_fields` everywhere, so a misspelt
//! key is an error naming it, and enums for the words a field may take. The components stay TOML
//! tables here: their keys come from the profile registry and are checked in `component.rs`.

use serde::Deserialize;
use std::path::Path;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelFile {
    pub name: Option<String>,
    #[allow(dead_code)]
    pub description: Option<String>,
    pub grid: GridTable,
    pub psf: Option<PsfTable>,
    pub noise: NoiseTable,
    pub bounds: Option<BoundsTable>,
    pub mass: Option<toml::Value>,
    pub lens_light: Option<toml::Value>,
    pub source: Option<toml::Value>,
}

/// `[grid]`: `n` (square) or `nx` and `ny` pixels of `pixel_scale` arcsec, `supersample` rays per
/// pixel side.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GridTable {
    pub n: Option<usize>,
    pub nx: Option<usize>,
    pub ny: Option<usize>,
    pub pixel_scale: f64,
    pub supersample: Option<usize>,
}

/// `[psf] type`.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub(super) enum PsfType {
    #[default]
    Gaussian,
    Pixelated,
    None,
}

/// `[psf] convolution`: where the PSF acts on a supersampled grid.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub(super) enum Convolution {
    Subgrid,
    Pixel,
}

/// `[psf]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PsfTable {
    #[serde(rename = "type", default)]
    pub kind: PsfType,
    pub sigma: Option<f64>,
    pub fwhm: Option<f64>,
    pub file: Option<String>,
    pub hdu: Option<usize>,
    pub convolution: Option<Convolution>,
    pub subgrid_iterations: Option<usize>,
}

/// `[noise]` (GIGA-Lens eq. 6).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoiseTable {
    pub sigma_bkg: f64,
    pub exposure_time: Option<f64>,
    pub gain: Option<f64>,
}

/// `[bounds] map`.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub(super) enum BoundsMapName {
    Sigmoid,
    SoftClip,
}

/// `[bounds]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BoundsTable {
    pub map: Option<BoundsMapName>,
    pub width: Option<f64>,
}

/// Read the sections of `text` (the file `path`); an error names the file, the line, the field
/// (`section.key`) and its TOML, and says what is wrong.
pub(super) fn read(text: &str, path: &Path) -> anyhow::Result<ModelFile> {
    toml::from_str(text).map_err(|e| {
        let at = e.span().map(|s| {
            let line = text[..s.start].matches('\n').count() + 1;
            let start = text[..s.start].rfind('\n').map_or(0, |i| i + 1);
            let end = text[s.start..]
                .find('\n')
                .map_or(text.len(), |i| s.start + i);
            let toml = text[start..end].trim();
            // the field: the section header above the line, then the key on it
            let section = text[..start]
                .lines()
                .rev()
                .map(str::trim)
                .find(|l| l.starts_with('['))
                .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
            let key = toml
                .split_once('=')
                .map(|(k, _)| k.trim().to_string())
                .filter(|k| !k.starts_with('['));
            let field = match (section, key) {
                (Some(s), Some(k)) => format!(" {s}.{k}"),
                (None, Some(k)) => format!(" {k}"),
                _ => String::new(),
            };
            format!(" line {line}{field} (`{toml}`)")
        });
        anyhow::anyhow!(
            "{}:{}: {}",
            path.display(),
            at.unwrap_or_default(),
            e.message().trim()
        )
    })
}
