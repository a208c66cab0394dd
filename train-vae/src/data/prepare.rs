//! The `prepare` pipeline: catalogs and folders -> cuts -> 64x64 images -> seeded split -> HDF5.
//!
//! Streaming: rows are grouped by GAL_FILENAME so each image file is opened once, stamps are
//! read and processed in small batches (processing in parallel, results kept in input order),
//! and each surviving 64x64 image goes straight to a scratch file beside the output. Only when
//! the number of survivors is known are the split sizes fixed, a seeded permutation drawn, and
//! the HDF5 file written from the scratch file. Memory stays at one batch of raw stamps, whatever
//! the catalog size (87,798 rows for the full COSMOS 25.2 sample). The scratch file is removed
//! on every exit path but a kill, whose leftovers the next `prepare` to the same output removes;
//! the output appears only when complete (atomic rename).

use super::cosmos::{Catalog, FitInfo, read_catalog_ctx};
use super::cuts::{
    Cut, CutConfig, CutCounts, Prepared, RawStamp, Rejection, SigmaFrom, check_noise,
    prepare_stamp, sersic_verdict,
};
use super::folder::{list_cutouts, read_cutout};
use super::synth::{SynthConfig, generate_range};
use anyhow::{Context, Result, bail, ensure};
use arclight_vae::dataset::{IMAGE_SIZE, Split, write_dataset};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Paper split sizes (Sec. 2.2), used as default proportions: train, validation, test.
pub const PAPER_SPLIT: [f64; 3] = [15500.0, 1543.0, 500.0];

/// Raw stamps read before a parallel processing pass (bounds memory).
const BATCH: usize = 64;

/// Everything `prepare` needs.
#[derive(Clone, Debug)]
pub struct PrepareConfig {
    pub catalogs: Vec<PathBuf>,
    pub folders: Vec<PathBuf>,
    /// Fixed noise sigma for folder cutouts (default: estimated from the border).
    pub folder_noise_sigma: Option<f64>,
    pub cuts: CutConfig,
    pub seed: u64,
    /// Split proportions (train, validation, test).
    pub split: [f64; 3],
    /// Synthetic galaxies mixed into the pool (none by default).
    pub synth: Option<SynthInput>,
}

/// Synthetic galaxies added to a prepared set (`--synth N`), e.g. to train a prior on synthetic
/// plus real stamps. They skip the cuts (they are made at 64x64 with noise ~1/50 of the peak)
/// and get ident `-(i + 1)` for galaxy `i`, so negative idents mark synthetic images.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthInput {
    pub n: usize,
    pub seed: u64,
    pub config: SynthConfig,
}

impl Default for PrepareConfig {
    fn default() -> Self {
        PrepareConfig {
            catalogs: Vec::new(),
            folders: Vec::new(),
            folder_noise_sigma: None,
            cuts: CutConfig::default(),
            seed: 0,
            split: PAPER_SPLIT,
            synth: None,
        }
    }
}

/// Counts for one input (catalog or folder).
#[derive(Clone, Debug)]
pub struct InputReport {
    pub path: PathBuf,
    pub rows: usize,
    pub kept: usize,
    pub removed: CutCounts,
    /// Image files named by the catalog but absent.
    pub missing_files: Vec<PathBuf>,
    /// How the Sersic-fit cut applied to this input.
    pub fit_cut: String,
}

/// What `prepare` did.
#[derive(Clone, Debug)]
pub struct PrepareReport {
    pub inputs: Vec<InputReport>,
    pub rows: usize,
    pub removed: CutCounts,
    pub kept: usize,
    pub split_sizes: [usize; 3],
}

/// Split `n` items by `proportions` with the largest-remainder rule (sizes sum to `n`; ties go
/// to the earlier split).
pub fn split_sizes(n: usize, proportions: [f64; 3]) -> Result<[usize; 3]> {
    let total: f64 = proportions.iter().sum();
    ensure!(
        proportions.iter().all(|p| p.is_finite() && *p >= 0.0) && total > 0.0,
        "--split: proportions must be non-negative numbers with a positive sum, got {proportions:?}"
    );
    let exact: Vec<f64> = proportions.iter().map(|p| n as f64 * p / total).collect();
    let mut sizes = [0usize; 3];
    for i in 0..3 {
        sizes[i] = exact[i].floor() as usize;
    }
    let mut order: Vec<usize> = (0..3).collect();
    order.sort_by(|&a, &b| {
        (exact[b] - exact[b].floor())
            .total_cmp(&(exact[a] - exact[a].floor()))
            .then(a.cmp(&b))
    });
    let mut left = n - sizes.iter().sum::<usize>();
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        if proportions[i] > 0.0 {
            sizes[i] += 1;
            left -= 1;
        }
    }
    Ok(sizes)
}

/// Seeded assignment of `n` items to splits: for each split, the item indices (ascending).
pub fn assign_splits(n: usize, sizes: [usize; 3], seed: u64) -> [Vec<usize>; 3] {
    let mut perm: Vec<usize> = (0..n).collect();
    perm.shuffle(&mut StdRng::seed_from_u64(seed));
    let mut out: [Vec<usize>; 3] = Default::default();
    let mut at = 0;
    for (i, s) in sizes.iter().enumerate() {
        out[i] = perm[at..at + s].to_vec();
        out[i].sort_unstable();
        at += s;
    }
    out
}

/// Fixed-size records of surviving images in a temporary file beside the output; their
/// sources (file and HDU, path) and idents stay in memory.
struct Scratch {
    path: PathBuf,
    writer: Option<BufWriter<std::fs::File>>,
    n: usize,
    sources: Vec<String>,
    idents: Vec<i64>,
}

const RECORD_BYTES: usize = 8 + 4 + IMAGE_SIZE * IMAGE_SIZE * 4;

impl Scratch {
    fn create(out: &Path) -> Result<Self> {
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = out.with_file_name(format!(".{name}.scratch-{}", std::process::id()));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create directory {}", dir.display()))?;
        }
        // a killed earlier run's scratch and half-written output (up to GBs for the full sample)
        for p in arclight_core::atomic::remove_stale_siblings(out) {
            eprintln!(
                "prepare: removed {}, left by an interrupted run",
                p.display()
            );
        }
        let f = std::fs::File::create(&path)
            .with_context(|| format!("cannot create scratch file {}", path.display()))?;
        Ok(Scratch {
            path,
            writer: Some(BufWriter::new(f)),
            n: 0,
            sources: Vec::new(),
            idents: Vec::new(),
        })
    }

    fn push(&mut self, p: &Prepared) -> Result<()> {
        let w = self.writer.as_mut().expect("scratch already sealed");
        w.write_all(&p.ident.to_le_bytes())?;
        w.write_all(&p.noise_sigma.to_le_bytes())?;
        for v in &p.image {
            w.write_all(&v.to_le_bytes())?;
        }
        self.n += 1;
        self.sources.push(p.source.clone());
        self.idents.push(p.ident);
        Ok(())
    }

    fn seal(&mut self) -> Result<std::fs::File> {
        let w = self.writer.take().expect("scratch already sealed");
        w.into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", self.path.display()))?;
        std::fs::File::open(&self.path)
            .with_context(|| format!("reopening {}", self.path.display()))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.writer.take();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Read record `i` of the scratch file: (ident, sigma, image).
fn read_record(f: &mut std::fs::File, i: usize, buf: &mut [u8]) -> Result<(i64, f32, Vec<f32>)> {
    f.seek(SeekFrom::Start((i * RECORD_BYTES) as u64))?;
    f.read_exact(buf)?;
    let ident = i64::from_le_bytes(buf[0..8].try_into()?);
    let sigma = f32::from_le_bytes(buf[8..12].try_into()?);
    let image = buf[12..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((ident, sigma, image))
}

/// Process a batch of raw stamps in parallel; record results in input order.
fn flush_batch(
    batch: &mut Vec<RawStamp>,
    cuts: &CutConfig,
    counts: &mut CutCounts,
    scratch: &mut Scratch,
    kept: &mut usize,
) -> Result<()> {
    let results: Vec<Result<Prepared, Rejection>> =
        batch.par_iter().map(|s| prepare_stamp(s, cuts)).collect();
    batch.clear();
    for r in results {
        match r {
            Ok(p) => {
                scratch.push(&p)?;
                *kept += 1;
            }
            Err(Rejection::Cut(c)) => counts.add(c),
            Err(Rejection::Error(e)) => return Err(e),
        }
    }
    Ok(())
}

/// Run the cuts over one catalog, appending survivors to `scratch`.
fn run_catalog(
    cat: &Catalog,
    cuts: &CutConfig,
    scratch: &mut Scratch,
    bar: &indicatif::ProgressBar,
) -> Result<InputReport> {
    let mut counts = CutCounts::default();
    let mut kept = 0;
    let fits = match (&cat.fits, cuts.fit_cut) {
        (FitInfo::Sersic(_, v), true) => Some(v),
        _ => None,
    };
    let fit_cut = match (&cat.fits, cuts.fit_cut) {
        (_, false) => "disabled (--no-fit-cut)".to_string(),
        (FitInfo::Sersic(p, _), true) => format!("applied ({})", p.display()),
        (FitInfo::NoSersicColumns(p), true) => {
            format!("not applicable: {} has no Sersic columns", p.display())
        }
        (FitInfo::NoFile, true) => "not applicable: no _fits.fits companion".to_string(),
    };
    // Group rows by image file, in order of first appearance.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index = std::collections::HashMap::new();
    for (i, r) in cat.rows.iter().enumerate() {
        let g = *index.entry(r.gal_filename.clone()).or_insert_with(|| {
            groups.push((r.gal_filename.clone(), Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    let mut missing_files = Vec::new();
    for (name, rows) in &groups {
        let path = cat.dir.join(name);
        if !path.exists() {
            bar.suspend(|| {
                eprintln!(
                    "warning: {}: image file {} not found; skipping its {} row(s)",
                    cat.path.display(),
                    path.display(),
                    rows.len()
                )
            });
            for _ in rows {
                counts.add(Cut::ImageFileMissing);
            }
            bar.inc(rows.len() as u64);
            missing_files.push(path);
            continue;
        }
        let mut file = arclight_core::fits::open(&path)?;
        let mut batch = Vec::with_capacity(BATCH);
        for &i in rows {
            bar.inc(1);
            let row = &cat.rows[i];
            if let Some(fits) = fits
                && let Some(c) = sersic_verdict(fits[i].as_ref())
            {
                counts.add(c);
                continue;
            }
            let origin = format!(
                "{} (row {}, IDENT {})",
                cat.path.display(),
                row.row,
                row.ident
            );
            match check_noise(row.noise_variance, &origin, "NOISE_VARIANCE", cuts) {
                Ok(()) => {}
                Err(Rejection::Cut(c)) => {
                    counts.add(c);
                    continue;
                }
                Err(Rejection::Error(e)) => return Err(e),
            }
            let im = arclight_core::fits::read_image_from(&mut file, &path, row.gal_hdu)
                .with_context(|| {
                    format!(
                        "stamp of IDENT {} (catalog {})",
                        row.ident,
                        cat.path.display()
                    )
                })?;
            batch.push(RawStamp {
                ident: row.ident,
                ny: im.ny,
                nx: im.nx,
                data: im.data,
                sigma: row.noise_variance.sqrt(),
                sigma_from: SigmaFrom::Catalog,
                origin: format!("{}[HDU {}]", path.display(), row.gal_hdu),
            });
            if batch.len() >= BATCH {
                flush_batch(&mut batch, cuts, &mut counts, scratch, &mut kept)?;
            }
        }
        flush_batch(&mut batch, cuts, &mut counts, scratch, &mut kept)?;
    }
    Ok(InputReport {
        path: cat.path.clone(),
        rows: cat.rows.len(),
        kept,
        removed: counts,
        missing_files,
        fit_cut,
    })
}

/// Run the cuts over a folder of cutouts; file `i` gets IDENT `first_ident + i`. Returns the
/// report and, per PNG conversion applied (colour to luminance, 16-bit scaling), the files.
fn run_folder(
    files: &[PathBuf],
    dir: &Path,
    first_ident: i64,
    noise_sigma: Option<f64>,
    cuts: &CutConfig,
    scratch: &mut Scratch,
    bar: &indicatif::ProgressBar,
) -> Result<(InputReport, BTreeMap<String, Vec<String>>)> {
    let mut counts = CutCounts::default();
    let mut kept = 0;
    let mut batch = Vec::with_capacity(BATCH);
    let mut conversions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        bar.inc(1);
        let cutout = read_cutout(f, first_ident + i as i64, noise_sigma)?;
        if let Some(c) = cutout.conversion {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            conversions.entry(c).or_default().push(name);
        }
        batch.push(cutout.stamp);
        if batch.len() >= BATCH {
            flush_batch(&mut batch, cuts, &mut counts, scratch, &mut kept)?;
        }
    }
    flush_batch(&mut batch, cuts, &mut counts, scratch, &mut kept)?;
    for (c, names) in &conversions {
        bar.suspend(|| {
            eprintln!(
                "warning: {}: {} PNG cutout(s) are not 8-bit grey and were converted: {c} (e.g. {})",
                dir.display(),
                names.len(),
                names[0]
            )
        });
    }
    let report = InputReport {
        path: dir.to_path_buf(),
        rows: files.len(),
        kept,
        removed: counts,
        missing_files: Vec::new(),
        fit_cut: "not applicable: folder of cutouts".into(),
    };
    Ok((report, conversions))
}

/// Append `syn.n` synthetic galaxies (ident `-(i + 1)`), rendered in parallel chunks.
fn run_synth(
    syn: &SynthInput,
    scratch: &mut Scratch,
    bar: &indicatif::ProgressBar,
) -> Result<InputReport> {
    ensure!(
        syn.config.size == IMAGE_SIZE,
        "synthetic images must be {IMAGE_SIZE}x{IMAGE_SIZE}"
    );
    let mut start = 0u64;
    while start < syn.n as u64 {
        let end = (start + 256).min(syn.n as u64);
        let set = generate_range(syn.seed, start..end, &syn.config);
        for k in 0..set.n {
            scratch.push(&Prepared {
                ident: -(set.ident[k] + 1),
                image: set.image(k).to_vec(),
                noise_sigma: set.noise_sigma[k],
                snr: f64::NAN,
                source: set.source[k].clone(),
            })?;
        }
        bar.inc(end - start);
        start = end;
    }
    Ok(InputReport {
        path: PathBuf::from(format!("synthetic (seed {})", syn.seed)),
        rows: syn.n,
        kept: syn.n,
        removed: CutCounts::default(),
        missing_files: Vec::new(),
        fit_cut: "not applicable: synthetic galaxies skip the cuts".into(),
    })
}

/// Fixed definitions recorded in every prepared data set's provenance.
fn definitions() -> serde_json::Value {
    json!({
        "crop": "centred square of side min(ny, nx), offset floor((ny-s)/2), floor((nx-s)/2)",
        "downscale": "area averaging to 64x64 with exact fractional-pixel overlap weights (pixel values keep native surface-brightness units; flux * (s/64)^2 conserved)",
        "snr": "max(I_1/4) / sigma_noise, I_1/4 = the 64x64 image block-averaged by snr_block; sigma_noise per cuts.snr_noise: native = sqrt(NOISE_VARIANCE), image = native * f(s), block = native * f(s) / snr_block, f(s) = mean_j sum_i w_ji^2 of the area weights",
        "normalisation": "each image divided by its maximum pixel",
        "noise_sigma": "sqrt(NOISE_VARIANCE) * f(s) / max pixel (folder cutouts: 1.4826 MAD of the border ring, or --noise-sigma, in place of sqrt(NOISE_VARIANCE))",
        "ident": "catalog stamps: the catalog's IDENT; folder cutouts: the folder's first_ident + position in files_in_ident_order (first_ident = 1 + the largest catalog IDENT, folders numbered one after another); synthetic: -(i + 1)",
        "source": "per image in /<split>/source: image file[HDU n] (catalogs), cutout path (folders), synthetic seed S galaxy i",
        "split": "largest-remainder sizes from the proportions; rows assigned by a permutation drawn with StdRng::seed_from_u64(seed); within a split, input order",
    })
}

/// Run the whole pipeline and write the data set to `out` (nothing is written on error).
pub fn prepare(cfg: &PrepareConfig, out: &Path) -> Result<PrepareReport> {
    let inputs = load_inputs(cfg)?;
    prepare_inputs(cfg, &inputs, out)
}

/// The input tables of a `prepare`, read and checked before any stamp work.
pub struct Inputs {
    catalogs: Vec<Catalog>,
    folders: Vec<(PathBuf, Vec<PathBuf>)>,
}

/// Check the settings and read every input's table (catalogs, folder listings), so that bad
/// flags or a bad catalog fail before any stamp is read (and before a run record exists).
pub fn load_inputs(cfg: &PrepareConfig) -> Result<Inputs> {
    let n_synth = cfg.synth.as_ref().map_or(0, |s| s.n);
    if cfg.catalogs.is_empty() && cfg.folders.is_empty() && n_synth == 0 {
        bail!("nothing to prepare: give at least one --catalog, --folder or --synth N");
    }
    ensure!(
        cfg.cuts.snr_block > 0 && IMAGE_SIZE.is_multiple_of(cfg.cuts.snr_block),
        "--snr-block {} must divide {IMAGE_SIZE}",
        cfg.cuts.snr_block
    );
    ensure!(
        cfg.cuts.crop != Some(0),
        "--crop 0: the crop side must be at least 1 native pixel (or leave out --crop to keep the whole stamp)"
    );
    ensure!(
        !(cfg.cuts.snr_min > cfg.cuts.snr_max),
        "--snr-min {} is above --snr-max {}",
        cfg.cuts.snr_min,
        cfg.cuts.snr_max
    );
    if let Some(s) = cfg.folder_noise_sigma {
        ensure!(
            s.is_finite() && s > 0.0,
            "--noise-sigma {s} must be positive and finite"
        );
    }
    split_sizes(0, cfg.split)?;
    // Read every input's table first, so a bad catalog fails before any stamp work.
    let catalogs: Vec<Catalog> = cfg
        .catalogs
        .iter()
        .map(|p| read_catalog_ctx(p))
        .collect::<Result<_>>()?;
    let folders: Vec<(PathBuf, Vec<PathBuf>)> = cfg
        .folders
        .iter()
        .map(|d| Ok((d.clone(), list_cutouts(d)?)))
        .collect::<Result<_>>()?;
    Ok(Inputs { catalogs, folders })
}

/// Run the cuts over `inputs` (from [`load_inputs`] with the same `cfg`) and write the set.
pub fn prepare_inputs(cfg: &PrepareConfig, inputs: &Inputs, out: &Path) -> Result<PrepareReport> {
    let n_synth = cfg.synth.as_ref().map_or(0, |s| s.n);
    let Inputs { catalogs, folders } = inputs;
    let total_rows: usize = catalogs.iter().map(|c| c.rows.len()).sum::<usize>()
        + folders.iter().map(|(_, f)| f.len()).sum::<usize>()
        + n_synth;

    // Folder cutouts are numbered after every catalog IDENT, folder after folder, so no two
    // images of the set share an ident (synthetic ones are negative).
    let mut next_ident = catalogs
        .iter()
        .flat_map(|c| c.rows.iter().map(|r| r.ident))
        .max()
        .map_or(0, |m| m.max(-1) + 1);

    let mut scratch = Scratch::create(out)?;
    let bar = arclight_core::progress::bar(total_rows as u64, "prepare");
    let mut inputs = Vec::new();
    for cat in catalogs {
        inputs.push(run_catalog(cat, &cfg.cuts, &mut scratch, &bar)?);
    }
    let mut folder_notes = Vec::new();
    for (dir, files) in folders {
        let (report, conversions) = run_folder(
            files,
            dir,
            next_ident,
            cfg.folder_noise_sigma,
            &cfg.cuts,
            &mut scratch,
            &bar,
        )?;
        inputs.push(report);
        folder_notes.push((next_ident, conversions));
        next_ident += files.len() as i64;
    }
    if let Some(syn) = cfg.synth.as_ref().filter(|s| s.n > 0) {
        inputs.push(run_synth(syn, &mut scratch, &bar)?);
    }
    bar.finish_and_clear();

    let mut removed = CutCounts::default();
    inputs.iter().for_each(|i| removed.merge(&i.removed));
    let kept = scratch.n;
    if kept == 0 {
        let by = removed.last_nonzero();
        bail!(
            "the data set is empty after the cuts: {} of {} rows removed ({}); the last stamps went at the {} cut (see {})",
            removed.total(),
            total_rows,
            summary_line(&removed),
            by.map(Cut::name).unwrap_or("(none)"),
            by.map(Cut::flag).unwrap_or("the inputs"),
        );
    }
    let duplicates = duplicate_idents(&scratch.idents);
    if !duplicates.is_empty() {
        eprintln!(
            "warning: {} IDENT(s) occur more than once among the kept images (e.g. {}: catalogs with overlapping IDENTs, or the same galaxy twice); /<split>/source tells them apart",
            duplicates.len(),
            duplicates[0]
        );
    }
    let sizes = split_sizes(kept, cfg.split)?;
    let assignment = assign_splits(kept, sizes, cfg.seed);
    let mut file = scratch.seal()?;

    let provenance = json!({
        "created_by": format!("train-vae prepare {}", env!("CARGO_PKG_VERSION")),
        "inputs": inputs.iter().map(|i| json!({
            "path": i.path.display().to_string(),
            "rows": i.rows,
            "kept": i.kept,
            "removed": i.removed.to_json(),
            "missing_image_files": i.missing_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "fit_cut": i.fit_cut,
        })).collect::<Vec<_>>(),
        "folder_files": folders.iter().zip(&folder_notes).map(|((d, f), (first, conversions))| json!({
            "folder": d.display().to_string(),
            "first_ident": first,
            "files_in_ident_order": f.iter().map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect::<Vec<_>>(),
            "noise": match cfg.folder_noise_sigma { Some(s) => format!("fixed sigma {s}"), None => "1.4826 MAD of the border ring".into() },
            "png_conversions": conversions,
        })).collect::<Vec<_>>(),
        "duplicate_idents": duplicates,
        "synthetic": cfg.synth.as_ref().map(|s| json!({
            "n": s.n,
            "seed": s.seed,
            "config": s.config,
            "distributions": super::synth::DISTRIBUTIONS,
            "ident": "-(i + 1) for synthetic galaxy i (SplitMix64(seed, i) stream, as `train-vae synth`)",
        })),
        "cuts": cfg.cuts,
        "paper_defaults": CutConfig::default(),
        "definitions": definitions(),
        "rows_read": total_rows,
        "removed": removed.to_json(),
        "kept": kept,
        "seed": cfg.seed,
        "split_proportions": { "train": cfg.split[0], "validation": cfg.split[1], "test": cfg.split[2] },
    });
    let mut buf = vec![0u8; RECORD_BYTES];
    write_dataset(out, |w| {
        for split in Split::ALL {
            for &i in &assignment[split.index()] {
                let (ident, sigma, image) = read_record(&mut file, i, &mut buf)?;
                w.push(split, &image, ident, sigma, &scratch.sources[i])?;
            }
        }
        Ok(provenance)
    })?;
    Ok(PrepareReport {
        rows: total_rows,
        removed,
        kept,
        split_sizes: sizes,
        inputs,
    })
}

/// The idents that occur more than once, ascending.
fn duplicate_idents(idents: &[i64]) -> Vec<i64> {
    let mut sorted = idents.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<i64> = sorted
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    out.dedup();
    out
}

/// `name=count` for every cut that removed something.
pub fn summary_line(c: &CutCounts) -> String {
    let parts: Vec<String> = Cut::ALL
        .iter()
        .filter(|&&k| c.get(k) > 0)
        .map(|&k| format!("{}={}", k.name(), c.get(k)))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sizes_largest_remainder() {
        assert_eq!(split_sizes(17543, PAPER_SPLIT).unwrap(), [15500, 1543, 500]);
        assert_eq!(split_sizes(8, PAPER_SPLIT).unwrap(), [7, 1, 0]);
        assert_eq!(split_sizes(0, PAPER_SPLIT).unwrap(), [0, 0, 0]);
        assert_eq!(split_sizes(10, [1.0, 1.0, 1.0]).unwrap(), [4, 3, 3]);
        assert_eq!(split_sizes(5, [1.0, 0.0, 0.0]).unwrap(), [5, 0, 0]);
        assert!(split_sizes(5, [0.0, 0.0, 0.0]).is_err());
        assert!(split_sizes(5, [1.0, -1.0, 0.0]).is_err());
    }

    #[test]
    fn assignment_is_seeded_partition() {
        let a = assign_splits(100, [80, 15, 5], 3);
        assert_eq!(a, assign_splits(100, [80, 15, 5], 3));
        assert_ne!(a, assign_splits(100, [80, 15, 5], 4));
        let mut all: Vec<usize> = a.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!((a[0].len(), a[1].len(), a[2].len()), (80, 15, 5));
    }
}
