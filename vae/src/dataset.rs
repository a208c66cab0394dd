//! The HDF5 data-set store: every prepared or synthetic galaxy set is one `.h5` file.
//!
//! Layout (documented for users in `datasets/README.md`):
//!
//! ```text
//! /                      attributes: format_version (int64) = FORMAT_VERSION,
//!                                    image_size (int64) = 64,
//!                                    provenance (variable-length UTF-8 string, JSON)
//! /train, /validation, /test   one group per split, each with
//!     images       float32 (N, 64, 64)  row-major; each image divided by its maximum pixel
//!     ident        int64   (N)          catalog IDENT (synthetic: galaxy index); unique within
//!                                       a prepared set (folder cutouts are numbered after the
//!                                       catalogs' largest IDENT, synthetic ones negative)
//!     noise_sigma  float32 (N)          pixel-noise sigma of the stored (normalised) image
//!     source       UTF-8 string (N)     where the image came from: `file[HDU n]` (catalog
//!                                       stamps), the cutout's path (folders), `synthetic seed S
//!                                       galaxy i`; absent in files written before it existed
//!                                       (read back as empty strings)
//! ```
//!
//! Datasets are chunked (16 images per chunk) and deflate-compressed, with the first axis
//! resizable so writers stream images in without holding a whole split. A file is written
//! through [`arclight_core::atomic::write_atomic_with`]: a failed or interrupted run leaves no
//! output at the final path.

use anyhow::{Context, Result, anyhow, bail, ensure};
use hdf5::types::VarLenUnicode;
use std::path::Path;

/// Side length of every stored image (the VAE input of Chianese et al. 2020, Table D1).
pub const IMAGE_SIZE: usize = 64;

/// Version of the on-disk layout above; readers refuse other versions.
pub const FORMAT_VERSION: i64 = 1;

/// Images per HDF5 chunk (and per write): 16 x 64 x 64 x 4 bytes = 256 KiB.
const CHUNK_IMAGES: usize = 16;

/// Deflate level: noisy float32 compresses little, level 4 costs little time.
const DEFLATE_LEVEL: u8 = 4;

/// A data-set split (paper Sec. 2.2: 15 500 train / 1 543 validation / 500 test).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    /// All splits, in storage order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// The HDF5 group name of the split.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }

    /// Position in [`Split::ALL`].
    pub fn index(self) -> usize {
        match self {
            Split::Train => 0,
            Split::Validation => 1,
            Split::Test => 2,
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Split::ALL
            .into_iter()
            .find(|sp| sp.name() == s)
            .ok_or_else(|| anyhow!("unknown split '{s}' (expected train, validation or test)"))
    }
}

/// The images of one split, in memory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GalaxySet {
    /// Number of images.
    pub n: usize,
    /// Side length of each (square) image.
    pub size: usize,
    /// `n * size * size` pixels, row-major, image `i` at `[i*size*size .. (i+1)*size*size]`;
    /// each image is divided by its maximum pixel.
    pub images: Vec<f32>,
    /// Catalog IDENT per image (synthetic sets: the galaxy index).
    pub ident: Vec<i64>,
    /// Pixel-noise sigma per image, in the units of the normalised image.
    pub noise_sigma: Vec<f32>,
    /// Where each image came from (file and HDU, cutout path, synthetic seed and index).
    pub source: Vec<String>,
}

impl GalaxySet {
    /// An empty set of `size` x `size` images.
    pub fn new(size: usize) -> Self {
        GalaxySet {
            n: 0,
            size,
            images: Vec::new(),
            ident: Vec::new(),
            noise_sigma: Vec::new(),
            source: Vec::new(),
        }
    }

    /// Append one image (`size * size` pixels) with its ident, noise sigma and source.
    pub fn push(&mut self, image: &[f32], ident: i64, noise_sigma: f32, source: &str) {
        assert_eq!(
            image.len(),
            self.size * self.size,
            "image has the wrong number of pixels"
        );
        self.images.extend_from_slice(image);
        self.ident.push(ident);
        self.noise_sigma.push(noise_sigma);
        self.source.push(source.to_string());
        self.n += 1;
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let p = self.size * self.size;
        &self.images[i * p..(i + 1) * p]
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
}

/// The three datasets of one split group, with a write buffer.
struct SplitWriter {
    images: hdf5::Dataset,
    ident: hdf5::Dataset,
    noise_sigma: hdf5::Dataset,
    source: hdf5::Dataset,
    /// Images already flushed to the file.
    written: usize,
    buf_images: Vec<f32>,
    buf_ident: Vec<i64>,
    buf_sigma: Vec<f32>,
    buf_source: Vec<VarLenUnicode>,
}

impl SplitWriter {
    fn create(file: &hdf5::File, split: Split) -> Result<Self> {
        let g = file.create_group(split.name())?;
        let s = IMAGE_SIZE;
        let images = g
            .new_dataset::<f32>()
            .chunk((CHUNK_IMAGES, s, s))
            .shape((0.., s, s))
            .shuffle()
            .deflate(DEFLATE_LEVEL)
            .create("images")?;
        let ident = g
            .new_dataset::<i64>()
            .chunk(1024)
            .shape(0..)
            .deflate(DEFLATE_LEVEL)
            .create("ident")?;
        let noise_sigma = g
            .new_dataset::<f32>()
            .chunk(1024)
            .shape(0..)
            .deflate(DEFLATE_LEVEL)
            .create("noise_sigma")?;
        let source = g
            .new_dataset::<VarLenUnicode>()
            .chunk(1024)
            .shape(0..)
            .create("source")?;
        Ok(SplitWriter {
            images,
            ident,
            noise_sigma,
            source,
            written: 0,
            buf_images: Vec::new(),
            buf_ident: Vec::new(),
            buf_sigma: Vec::new(),
            buf_source: Vec::new(),
        })
    }

    fn flush(&mut self) -> Result<()> {
        let k = self.buf_ident.len();
        if k == 0 {
            return Ok(());
        }
        let (a, b) = (self.written, self.written + k);
        let s = IMAGE_SIZE;
        self.images.resize((b, s, s))?;
        let arr = ndarray::ArrayView3::from_shape((k, s, s), &self.buf_images)?;
        self.images.write_slice(arr, (a..b, .., ..))?;
        self.ident.resize(b)?;
        self.ident.write_slice(&self.buf_ident, a..b)?;
        self.noise_sigma.resize(b)?;
        self.noise_sigma.write_slice(&self.buf_sigma, a..b)?;
        self.source.resize(b)?;
        self.source.write_slice(&self.buf_source, a..b)?;
        self.written = b;
        self.buf_images.clear();
        self.buf_ident.clear();
        self.buf_sigma.clear();
        self.buf_source.clear();
        Ok(())
    }

    fn len(&self) -> usize {
        self.written + self.buf_ident.len()
    }
}

/// Streams images into a new data-set file; create it through [`write_dataset`].
pub struct DatasetWriter {
    file: hdf5::File,
    splits: Vec<SplitWriter>,
}

impl DatasetWriter {
    fn create(tmp: &Path) -> Result<Self> {
        let file = hdf5::File::create(tmp)
            .with_context(|| format!("cannot create HDF5 file {}", tmp.display()))?;
        let splits = Split::ALL
            .iter()
            .map(|&sp| SplitWriter::create(&file, sp))
            .collect::<Result<Vec<_>>>()?;
        Ok(DatasetWriter { file, splits })
    }

    /// Append one normalised `IMAGE_SIZE` x `IMAGE_SIZE` image to `split`, with where it came
    /// from (`source`).
    ///
    /// Refuses non-finite pixels or sigma: a NaN must never reach a data set.
    pub fn push(
        &mut self,
        split: Split,
        image: &[f32],
        ident: i64,
        noise_sigma: f32,
        source: &str,
    ) -> Result<()> {
        ensure!(
            image.len() == IMAGE_SIZE * IMAGE_SIZE,
            "image {ident} has {} pixels, expected {IMAGE_SIZE}x{IMAGE_SIZE}",
            image.len()
        );
        ensure!(
            image.iter().all(|v| v.is_finite()),
            "image {ident} has non-finite pixels"
        );
        ensure!(
            noise_sigma.is_finite() && noise_sigma > 0.0,
            "image {ident}: noise sigma {noise_sigma} is not a positive finite number"
        );
        let w = &mut self.splits[split.index()];
        w.buf_images.extend_from_slice(image);
        w.buf_ident.push(ident);
        w.buf_sigma.push(noise_sigma);
        w.buf_source.push(
            source
                .parse()
                .map_err(|e| anyhow!("image {ident}: source {source:?} is not storable ({e:?})"))?,
        );
        if w.buf_ident.len() >= CHUNK_IMAGES {
            w.flush()?;
        }
        Ok(())
    }

    /// Append every image of `set` to `split`.
    pub fn push_set(&mut self, split: Split, set: &GalaxySet) -> Result<()> {
        ensure!(
            set.size == IMAGE_SIZE,
            "images are {0}x{0}, expected {IMAGE_SIZE}x{IMAGE_SIZE}",
            set.size
        );
        for i in 0..set.n {
            self.push(
                split,
                set.image(i),
                set.ident[i],
                set.noise_sigma[i],
                &set.source[i],
            )?;
        }
        Ok(())
    }

    /// Images pushed so far to `split`.
    pub fn count(&self, split: Split) -> usize {
        self.splits[split.index()].len()
    }

    /// Flush buffers and write the root attributes. `provenance` gets a `split_sizes` entry.
    fn finish(mut self, mut provenance: serde_json::Value) -> Result<()> {
        for w in &mut self.splits {
            w.flush()?;
        }
        let sizes: serde_json::Map<String, serde_json::Value> = Split::ALL
            .iter()
            .map(|&sp| (sp.name().to_string(), self.count(sp).into()))
            .collect();
        match provenance.as_object_mut() {
            Some(obj) => {
                obj.insert("split_sizes".into(), sizes.into());
            }
            None => {
                provenance = serde_json::json!({ "provenance": provenance, "split_sizes": sizes })
            }
        }
        self.file
            .new_attr::<i64>()
            .create("format_version")?
            .write_scalar(&FORMAT_VERSION)?;
        self.file
            .new_attr::<i64>()
            .create("image_size")?
            .write_scalar(&(IMAGE_SIZE as i64))?;
        let text: VarLenUnicode = serde_json::to_string_pretty(&provenance)?
            .parse()
            .map_err(|e| anyhow!("provenance is not a valid HDF5 string: {e:?}"))?;
        self.file
            .new_attr::<VarLenUnicode>()
            .create("provenance")?
            .write_scalar(&text)?;
        self.file.flush()?;
        drop(self);
        Ok(())
    }
}

/// Write a data set to `path` atomically: `fill` pushes images and returns the provenance JSON
/// (inputs, cuts, counts, seed, ...). If `fill` fails, nothing is left at `path` (an existing
/// file there is kept unchanged).
pub fn write_dataset<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut DatasetWriter) -> Result<serde_json::Value>,
{
    arclight_core::atomic::write_atomic_with(path, |tmp| {
        let mut w = DatasetWriter::create(tmp)?;
        let provenance = fill(&mut w)?;
        w.finish(provenance)?;
        // on disk before the rename makes it the data set (as checkpoints are)
        std::fs::File::open(tmp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot sync {}", tmp.display()))
    })
    .with_context(|| format!("writing data set {}", path.display()))
}

/// Write in-memory splits to `path` (convenience for tests and small sets).
pub fn write_sets(
    path: &Path,
    sets: &[(Split, &GalaxySet)],
    provenance: serde_json::Value,
) -> Result<()> {
    write_dataset(path, |w| {
        for (split, set) in sets {
            w.push_set(*split, set)?;
        }
        Ok(provenance)
    })
}

/// Open `path` as one of our data sets, checking the root attributes.
fn open_checked(path: &Path) -> Result<hdf5::File> {
    if !path.exists() {
        bail!("{}: data set file not found", path.display());
    }
    let file = hdf5::File::open(path)
        .map_err(|e| anyhow!("{}: not a readable HDF5 file ({e})", path.display()))?;
    let version = file
        .attr("format_version")
        .and_then(|a| a.read_scalar::<i64>())
        .map_err(|_| {
            anyhow!(
                "{}: not an arclight data set (no format_version attribute; make one with `train-vae prepare` or `train-vae synth`)",
                path.display()
            )
        })?;
    if version != FORMAT_VERSION {
        bail!(
            "{}: data-set format_version {version}, this build reads version {FORMAT_VERSION}",
            path.display()
        );
    }
    Ok(file)
}

/// Read all images of `split` from the data set at `path`.
///
/// Errors name the file: missing, not HDF5, not our layout, inconsistent shapes.
pub fn read_split(path: &Path, split: Split) -> Result<GalaxySet> {
    let file = open_checked(path)?;
    let ctx = |what: &str| format!("{}: /{}/{what}", path.display(), split.name());
    let g = file.group(split.name()).map_err(|_| {
        anyhow!(
            "{}: no '{}' group (not an arclight data set?)",
            path.display(),
            split.name()
        )
    })?;
    let ds_images = g
        .dataset("images")
        .map_err(|_| anyhow!("{}: missing", ctx("images")))?;
    let shape = ds_images.shape();
    if shape.len() != 3 || shape[1] != shape[2] {
        bail!(
            "{}: shape {shape:?}, expected (N, {IMAGE_SIZE}, {IMAGE_SIZE})",
            ctx("images")
        );
    }
    let (n, size) = (shape[0], shape[1]);
    if size != IMAGE_SIZE {
        bail!(
            "{}: images are {size}x{size}, expected {IMAGE_SIZE}x{IMAGE_SIZE}",
            ctx("images")
        );
    }
    let read_1d = |name: &str| -> Result<hdf5::Dataset> {
        let d = g
            .dataset(name)
            .map_err(|_| anyhow!("{}: missing", ctx(name)))?;
        let s = d.shape();
        if s != [n] {
            bail!("{}: shape {s:?}, expected ({n}) to match images", ctx(name));
        }
        Ok(d)
    };
    let ds_ident = read_1d("ident")?;
    let ds_sigma = read_1d("noise_sigma")?;
    // optional: data sets written before per-image sources were recorded lack it
    let ds_source = g
        .dataset("source")
        .ok()
        .map(|_| read_1d("source"))
        .transpose()?;
    let (images, ident, noise_sigma) = if n == 0 {
        (Vec::new(), Vec::new(), Vec::new())
    } else {
        (
            ds_images
                .read_raw::<f32>()
                .map_err(|e| anyhow!("{}: cannot read, file corrupt? ({e})", ctx("images")))?,
            ds_ident
                .read_raw::<i64>()
                .map_err(|e| anyhow!("{}: cannot read, file corrupt? ({e})", ctx("ident")))?,
            ds_sigma
                .read_raw::<f32>()
                .map_err(|e| anyhow!("{}: cannot read, file corrupt? ({e})", ctx("noise_sigma")))?,
        )
    };
    ensure!(
        images.len() == n * size * size,
        "{}: read {} values, expected {}",
        ctx("images"),
        images.len(),
        n * size * size
    );
    let source = match ds_source {
        Some(d) if n > 0 => d
            .read_raw::<VarLenUnicode>()
            .map_err(|e| anyhow!("{}: cannot read, file corrupt? ({e})", ctx("source")))?
            .into_iter()
            .map(|s| s.as_str().to_string())
            .collect(),
        _ => vec![String::new(); n],
    };
    Ok(GalaxySet {
        n,
        size,
        images,
        ident,
        noise_sigma,
        source,
    })
}

/// Number of images per split, without reading pixels.
pub fn split_sizes(path: &Path) -> Result<[usize; 3]> {
    let file = open_checked(path)?;
    let mut out = [0; 3];
    for sp in Split::ALL {
        let d = file
            .group(sp.name())
            .and_then(|g| g.dataset("images"))
            .map_err(|_| anyhow!("{}: no /{}/images dataset", path.display(), sp.name()))?;
        out[sp.index()] = d.shape().first().copied().unwrap_or(0);
    }
    Ok(out)
}

/// The provenance JSON stored in the root attribute `provenance`.
pub fn read_provenance(path: &Path) -> Result<serde_json::Value> {
    let file = open_checked(path)?;
    let text = file
        .attr("provenance")
        .and_then(|a| a.read_scalar::<VarLenUnicode>())
        .map_err(|e| {
            anyhow!(
                "{}: cannot read the provenance attribute ({e})",
                path.display()
            )
        })?;
    serde_json::from_str(text.as_str())
        .with_context(|| format!("{}: provenance attribute is not valid JSON", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize, offset: f32) -> GalaxySet {
        let mut s = GalaxySet::new(IMAGE_SIZE);
        for i in 0..n {
            let im: Vec<f32> = (0..IMAGE_SIZE * IMAGE_SIZE)
                .map(|p| ((p + i) % 97) as f32 / 96.0 + offset)
                .collect();
            s.push(
                &im,
                1000 + i as i64,
                0.02 + i as f32 * 1e-3,
                &format!("stamps_{}.fits[HDU {i}]", offset * 2.0),
            );
        }
        s
    }

    #[test]
    fn round_trip_all_splits_and_provenance() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.h5");
        // 37 > 2 chunks, exercising partial-chunk flushes; an empty split too.
        let (tr, va) = (set(37, 0.0), set(3, 0.5));
        write_sets(
            &p,
            &[(Split::Train, &tr), (Split::Validation, &va)],
            serde_json::json!({"seed": 7}),
        )
        .unwrap();
        assert_eq!(read_split(&p, Split::Train).unwrap(), tr);
        assert_eq!(read_split(&p, Split::Validation).unwrap(), va);
        let te = read_split(&p, Split::Test).unwrap();
        assert_eq!((te.n, te.size, te.images.len()), (0, IMAGE_SIZE, 0));
        let prov = read_provenance(&p).unwrap();
        assert_eq!(prov["seed"], 7);
        assert_eq!(prov["split_sizes"]["train"], 37);
        assert_eq!(prov["split_sizes"]["test"], 0);
        assert_eq!(split_sizes(&p).unwrap(), [37, 3, 0]);
        // Only the final file: no temporary left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_fill_leaves_nothing_and_nan_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.h5");
        let e = write_dataset(&p, |w| {
            w.push_set(Split::Train, &set(20, 0.0))?;
            let mut bad = vec![0.5f32; IMAGE_SIZE * IMAGE_SIZE];
            bad[5] = f32::NAN;
            w.push(Split::Train, &bad, 1, 0.1, "bad.fits")?;
            Ok(serde_json::json!({}))
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("non-finite"), "{e:#}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn corrupt_and_foreign_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.h5");
        std::fs::write(&junk, b"this is not hdf5").unwrap();
        let e = format!("{:#}", read_split(&junk, Split::Train).unwrap_err());
        assert!(
            e.contains("junk.h5") && e.contains("not a readable HDF5"),
            "{e}"
        );
        let missing = dir.path().join("missing.h5");
        let e = format!("{:#}", read_split(&missing, Split::Train).unwrap_err());
        assert!(e.contains("missing.h5") && e.contains("not found"), "{e}");
        let foreign = dir.path().join("foreign.h5");
        hdf5::File::create(&foreign)
            .unwrap()
            .create_group("train")
            .unwrap();
        let e = format!("{:#}", read_provenance(&foreign).unwrap_err());
        assert!(
            e.contains("foreign.h5") && e.contains("not an arclight data set"),
            "{e}"
        );
    }
}
