//! FITS image IO (cfitsio through the `fitsio` crate, built from source: no system package).
//!
//! Images are returned row-major as `(ny, nx, data)` with `data[iy * nx + ix]`, the numpy / astropy
//! order; FITS row 1 (the first row in the file) is index 0. Any integer or float pixel type is
//! read as `f32` (or `f64`). Every error names the file and HDU.

use anyhow::{Context, Result, anyhow, bail};
use fitsio::FitsFile;
use fitsio::images::{ImageDescription, ImageType};
use std::path::Path;

pub mod raw;
pub mod table;

/// A 2-D image read from FITS.
#[derive(Clone, Debug, PartialEq)]
pub struct Image<T> {
    pub ny: usize,
    pub nx: usize,
    pub data: Vec<T>,
}

impl<T: Copy> Image<T> {
    pub fn at(&self, iy: usize, ix: usize) -> T {
        self.data[iy * self.nx + ix]
    }
}

/// Open a FITS file for reading with an error that names the file.
pub fn open(path: &Path) -> Result<FitsFile> {
    if !path.exists() {
        bail!("{}: file not found", path.display());
    }
    FitsFile::open(path).map_err(|e| anyhow!("{}: not a readable FITS file ({e})", path.display()))
}

/// Read 2-D image HDU `hdu` (0-based, primary = 0) as f64.
pub fn read_image_f64(path: &Path, hdu: usize) -> Result<Image<f64>> {
    let mut f = open(path)?;
    read_image_from(&mut f, path, hdu)
}

/// Read 2-D image HDU `hdu` (0-based) as f32.
pub fn read_image_f32(path: &Path, hdu: usize) -> Result<Image<f32>> {
    let im = read_image_f64(path, hdu)?;
    Ok(Image {
        ny: im.ny,
        nx: im.nx,
        data: im.data.into_iter().map(|v| v as f32).collect(),
    })
}

/// The `(ny, nx)` of HDU `hdu` when it is a non-empty 2-D image, `None` for any other HDU.
pub fn image_shape(f: &mut FitsFile, path: &Path, hdu: usize) -> Result<Option<(usize, usize)>> {
    if raw::move_to(f, path, hdu)? != raw::HduKind::Image {
        return Ok(None);
    }
    let fp = raw::handle(f);
    let (mut naxis, mut status) = (0, 0);
    let mut naxes = [0 as fitsio::sys::LONGLONG; 2];
    // SAFETY: plain out-parameters; `naxes` holds the 2 axes asked for.
    unsafe {
        fitsio::sys::ffgidm(fp, &mut naxis, &mut status);
        if naxis == 2 {
            fitsio::sys::ffgiszll(fp, 2, naxes.as_mut_ptr(), &mut status);
        }
    }
    raw::check(status, path, || {
        format!("HDU {hdu}: cannot read the image header")
    })?;
    Ok(
        (naxis == 2 && naxes[0] > 0 && naxes[1] > 0)
            .then(|| (naxes[1] as usize, naxes[0] as usize)),
    )
}

/// The HDU to read a 2-D image from: `hdu` when given, else the primary unless it has no data
/// (NAXIS = 0), else the first extension holding a 2-D image (HST products keep the primary for the
/// header, SCI in extension 1). A primary with data of another shape is kept, for the read to report.
pub fn image_hdu(path: &Path, hdu: Option<usize>) -> Result<usize> {
    if let Some(h) = hdu {
        return Ok(h);
    }
    let mut f = open(path)?;
    if primary_naxis(&mut f, path)? != 0 {
        return Ok(0);
    }
    let n = num_hdus(&mut f, path)?;
    for h in 1..n {
        if image_shape(&mut f, path, h)?.is_some() {
            return Ok(h);
        }
    }
    bail!(
        "{}: the primary HDU has no data and none of the {} extension(s) is a 2-D image",
        path.display(),
        n - 1
    )
}

/// NAXIS of the primary HDU.
fn primary_naxis(f: &mut FitsFile, path: &Path) -> Result<i32> {
    raw::move_to(f, path, 0)?;
    let (mut naxis, mut status) = (0, 0);
    // SAFETY: a plain out-parameter on the current HDU.
    unsafe { fitsio::sys::ffgidm(raw::handle(f), &mut naxis, &mut status) };
    raw::check(status, path, || "HDU 0: cannot read NAXIS".to_string())?;
    Ok(naxis)
}

/// Numeric header keyword `key` of HDU `hdu` (0-based), `None` when absent.
pub fn read_key_f64(path: &Path, hdu: usize, key: &str) -> Result<Option<f64>> {
    let mut f = open(path)?;
    raw::move_to(&mut f, path, hdu)?;
    let ckey = std::ffi::CString::new(key).map_err(|_| anyhow!("keyword {key:?} has a NUL"))?;
    let (mut value, mut status) = (0.0f64, 0);
    // SAFETY: a plain out-parameter; the comment pointer may be null.
    unsafe {
        fitsio::sys::ffgkyd(
            raw::handle(&mut f),
            ckey.as_ptr(),
            &mut value,
            std::ptr::null_mut(),
            &mut status,
        )
    };
    if status == 202 {
        // KEY_NO_EXIST
        unsafe { fitsio::sys::ffcmsg() };
        return Ok(None);
    }
    raw::check(status, path, || {
        format!("HDU {hdu}: keyword {key} is not a number")
    })?;
    Ok(Some(value))
}

/// Number of HDUs in an open file.
pub fn num_hdus(f: &mut FitsFile, path: &Path) -> Result<usize> {
    raw::num_hdus(f, path)
}

/// Largest image read (pixels): a header asking for more is refused before any allocation.
const MAX_PIXELS: usize = 1 << 28;

/// Read image HDU `hdu` from an already open file (for reading many stamps from one file).
///
/// The size comes from cfitsio's own reading of NAXISn; it is checked against the bytes the file
/// holds before the buffer is allocated, so a corrupt header cannot cause a huge allocation.
pub fn read_image_from(f: &mut FitsFile, path: &Path, hdu: usize) -> Result<Image<f64>> {
    let kind = raw::move_to(f, path, hdu)?;
    if kind != raw::HduKind::Image {
        bail!(
            "{}: HDU {hdu} is {}, not an image",
            path.display(),
            kind.name()
        );
    }
    let fp = raw::handle(f);
    let (mut naxis, mut bitpix, mut status) = (0, 0, 0);
    // SAFETY: plain out-parameters on the current HDU.
    unsafe {
        fitsio::sys::ffgidm(fp, &mut naxis, &mut status);
        fitsio::sys::ffgidt(fp, &mut bitpix, &mut status);
    }
    raw::check(status, path, || {
        format!("HDU {hdu}: cannot read the image header")
    })?;
    if naxis != 2 {
        bail!(
            "{}: HDU {hdu} is a {naxis}-D image, expected 2-D",
            path.display()
        );
    }
    let mut naxes = [0 as fitsio::sys::LONGLONG; 2];
    // SAFETY: `naxes` holds the 2 axes asked for.
    unsafe { fitsio::sys::ffgiszll(fp, 2, naxes.as_mut_ptr(), &mut status) };
    raw::check(status, path, || {
        format!("HDU {hdu}: cannot read the image size")
    })?;
    let (nx, ny) = (naxes[0].max(0) as usize, naxes[1].max(0) as usize);
    if ny == 0 || nx == 0 {
        bail!("{}: HDU {hdu} is an empty image", path.display());
    }
    let npix = ny
        .checked_mul(nx)
        .filter(|&n| n <= MAX_PIXELS)
        .ok_or_else(|| {
            anyhow!(
                "{}: HDU {hdu}: a {nx} x {ny} image is larger than arclight reads",
                path.display()
            )
        })?;
    // SAFETY: plain call on the current HDU.
    let compressed = unsafe { fitsio::sys::fits_is_compressed_image(fp, &mut status) } != 0;
    if !compressed {
        let (mut head, mut data, mut end) = (0, 0, 0);
        // SAFETY: plain out-parameters.
        unsafe { fitsio::sys::ffghadll(fp, &mut head, &mut data, &mut end, &mut status) };
        raw::check(status, path, || {
            format!("HDU {hdu}: cannot locate the pixels")
        })?;
        let need = data as u64 + npix as u64 * (bitpix.unsigned_abs() as u64 / 8);
        let have = raw::file_len(path);
        if need > have {
            bail!(
                "{}: HDU {hdu}: the header declares {nx} x {ny} pixels of BITPIX {bitpix} but the \
                 file ends {} bytes early: truncated?",
                path.display(),
                need - have
            );
        }
    }
    let mut data = vec![0.0f64; npix];
    // SAFETY: `data` holds exactly the `npix` elements requested.
    unsafe {
        fitsio::sys::ffgpvd(
            fp,
            0,
            1,
            npix as fitsio::sys::LONGLONG,
            f64::NAN,
            data.as_mut_ptr(),
            &mut 0, // anynul: cfitsio writes it when it meets a null
            &mut status,
        )
    };
    raw::check(status, path, || {
        format!("HDU {hdu}: cannot read pixels, file truncated or corrupt?")
    })?;
    Ok(Image { ny, nx, data })
}

/// Reverse the row order of a row-major image in place.
///
/// FITS stores the first row at the bottom of the sky picture (y increasing upwards, as ds9 and
/// astropy's `origin="lower"` show it), while arclight's arrays hold the top row first (the image
/// grid convention of `infer::lens`). Sky images (observations, noise maps, masks, PSFs, mocks)
/// are flipped on the way in and out so that files display the right way up elsewhere.
pub fn flip_rows<T>(ny: usize, nx: usize, data: &mut [T]) {
    assert_eq!(
        data.len(),
        ny * nx,
        "flip_rows: {} values for {ny}x{nx}",
        data.len()
    );
    for r in 0..ny / 2 {
        let (top, bottom) = data.split_at_mut((ny - 1 - r) * nx);
        top[r * nx..(r + 1) * nx].swap_with_slice(&mut bottom[..nx]);
    }
}

/// Read a sky image (HDU `hdu`) with row 0 = top, i.e. [`flip_rows`] applied to the FITS order.
pub fn read_sky_f32(path: &Path, hdu: usize) -> Result<Image<f32>> {
    let mut im = read_image_f32(path, hdu)?;
    flip_rows(im.ny, im.nx, &mut im.data);
    Ok(im)
}

/// Write a sky image whose row 0 is the top: the file gets the FITS order (first row = bottom).
pub fn write_sky_f32(path: &Path, ny: usize, nx: usize, data: &[f32], keys: &[Key]) -> Result<()> {
    let mut flipped = data.to_vec();
    if flipped.len() == ny * nx {
        flip_rows(ny, nx, &mut flipped);
    }
    write_image_f32(path, ny, nx, &flipped, keys)
}

/// Header keywords to write beside an image.
#[derive(Clone, Debug)]
pub enum Key {
    F(String, f64),
    I(String, i64),
    S(String, String),
}

/// Write one float32 image (primary HDU) atomically, with optional header keywords.
pub fn write_image_f32(
    path: &Path,
    ny: usize,
    nx: usize,
    data: &[f32],
    keys: &[Key],
) -> Result<()> {
    if data.len() != ny * nx {
        bail!(
            "{}: image data has {} values, expected {ny}x{nx}",
            path.display(),
            data.len()
        );
    }
    crate::atomic::write_atomic_with(path, |tmp| {
        let desc = ImageDescription {
            data_type: ImageType::Float,
            dimensions: &[ny, nx],
        };
        let mut f = FitsFile::create(tmp)
            .with_custom_primary(&desc)
            .overwrite()
            .open()
            .map_err(|e| anyhow!("cannot create FITS file {} ({e})", tmp.display()))?;
        let h = f.primary_hdu().map_err(|e| anyhow!("{e}"))?;
        h.write_image(&mut f, data)
            .map_err(|e| anyhow!("cannot write pixels: {e}"))?;
        for k in keys {
            match k {
                Key::F(n, v) => h.write_key(&mut f, n, *v),
                Key::I(n, v) => h.write_key(&mut f, n, *v),
                Key::S(n, v) => h.write_key(&mut f, n, v.as_str()),
            }
            .map_err(|e| anyhow!("cannot write header key: {e}"))?;
        }
        Ok(())
    })
    .with_context(|| format!("writing FITS image {}", path.display()))
}

/// Write float32 images as named extensions after an empty primary HDU (the multi-extension layout of
/// HST products: SCI, ERR, ...), atomically; each image is row-major in FITS order.
pub fn write_extensions_f32(path: &Path, images: &[(&str, usize, usize, &[f32])]) -> Result<()> {
    crate::atomic::write_atomic_with(path, |tmp| {
        let mut f = FitsFile::create(tmp)
            .overwrite()
            .open()
            .map_err(|e| anyhow!("cannot create FITS file {} ({e})", tmp.display()))?;
        for &(name, ny, nx, data) in images {
            if data.len() != ny * nx {
                bail!(
                    "extension {name}: {} values, expected {ny}x{nx}",
                    data.len()
                );
            }
            let desc = ImageDescription {
                data_type: ImageType::Float,
                dimensions: &[ny, nx],
            };
            let h = f
                .create_image(name, &desc)
                .map_err(|e| anyhow!("cannot create extension {name}: {e}"))?;
            h.write_image(&mut f, data)
                .map_err(|e| anyhow!("cannot write extension {name}: {e}"))?;
        }
        Ok(())
    })
    .with_context(|| format!("writing FITS extensions {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty primary is passed over for the first image extension; a chosen HDU is kept; a file
    /// with no image names itself.
    #[test]
    fn the_image_hdu_is_the_first_that_holds_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("mef.fits");
        write_extensions_f32(&p, &[("SCI", 2, 3, &[1.0; 6]), ("ERR", 2, 3, &[0.5; 6])]).unwrap();
        assert_eq!(image_hdu(&p, None).unwrap(), 1);
        assert_eq!(image_hdu(&p, Some(2)).unwrap(), 2);
        assert_eq!(read_image_f32(&p, 2).unwrap().data, vec![0.5; 6]);
        let single = dir.path().join("im.fits");
        write_image_f32(&single, 2, 2, &[1.0; 4], &[]).unwrap();
        assert_eq!(image_hdu(&single, None).unwrap(), 0);
        let empty = dir.path().join("empty.fits");
        write_extensions_f32(&empty, &[]).unwrap();
        let e = format!("{:#}", image_hdu(&empty, None).unwrap_err());
        assert!(
            e.contains("empty.fits") && e.contains("none of the 0 extension"),
            "{e}"
        );
    }

    #[test]
    fn write_read_round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("im.fits");
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5).collect();
        write_image_f32(&p, 3, 4, &data, &[Key::F("PIXSCALE".into(), 0.04)]).unwrap();
        let im = read_image_f32(&p, 0).unwrap();
        assert_eq!((im.ny, im.nx), (3, 4));
        assert_eq!(read_key_f64(&p, 0, "PIXSCALE").unwrap(), Some(0.04));
        assert_eq!(read_key_f64(&p, 0, "NOPE").unwrap(), None);
        assert_eq!(im.data, data);
        assert_eq!(im.at(1, 2), 3.0);
        let e = read_image_f32(&p, 3).unwrap_err().to_string();
        assert!(e.contains("HDU 3 does not exist"), "{e}");
        let e = read_image_f32(&dir.path().join("nope.fits"), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope.fits") && e.contains("not found"), "{e}");
        let bytes = std::fs::read(&p).unwrap();
        let t = dir.path().join("trunc.fits");
        std::fs::write(&t, &bytes[..2880 + 10]).unwrap();
        let e = format!("{:#}", read_image_f32(&t, 0).unwrap_err());
        assert!(e.contains("trunc.fits"), "{e}");
    }

    #[test]
    fn nan_pixels_read_as_nan() {
        // cfitsio reports null pixels through `anynul`; a null pointer there crashed the reader.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nan.fits");
        let mut data = vec![1.0f32; 12];
        data[5] = f32::NAN;
        write_image_f32(&p, 3, 4, &data, &[]).unwrap();
        let im = read_image_f32(&p, 0).unwrap();
        assert!(im.data[5].is_nan() && im.data[4] == 1.0);
    }

    #[test]
    fn sky_images_round_trip_and_files_hold_the_bottom_row_first() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sky.fits");
        let top_first: Vec<f32> = vec![1., 2., 3., 4., 5., 6.]; // 3 rows of 2, top row [1, 2]
        write_sky_f32(&p, 3, 2, &top_first, &[]).unwrap();
        assert_eq!(
            read_image_f32(&p, 0).unwrap().data,
            vec![5., 6., 3., 4., 1., 2.]
        );
        assert_eq!(read_sky_f32(&p, 0).unwrap().data, top_first);
    }
}
