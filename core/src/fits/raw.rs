//! The few cfitsio calls arclight reads files with, each with buffers sized from what cfitsio
//! itself reports, so that no input file can make cfitsio write outside them.
//!
//! Why not the `fitsio` crate's readers: its `read_col::<String>` gives cfitsio one byte too few
//! per string (the NUL terminator), which corrupts the heap on ordinary catalogs (see
//! `docs/fitsio-string-column-overflow.md`), and its HDU summary has no arm for an unsigned 64-bit
//! image (`BITPIX = 64` with `BZERO = 2^63`) in a match that ends in `unreachable!`.

use anyhow::{Result, bail};
use fitsio::FitsFile;
use fitsio::sys;
use std::ffi::{CStr, c_char, c_int};
use std::path::Path;

/// cfitsio's text for a status code, with the top of its error-message stack.
pub fn status_text(status: c_int) -> String {
    let mut buf = [0 as c_char; 81];
    // SAFETY: ffgerr writes at most 30 characters plus NUL (FLEN_STATUS = 31); the buffer holds 81.
    unsafe { sys::ffgerr(status, buf.as_mut_ptr()) };
    let mut text = cstr(&buf);
    let mut msg = [0 as c_char; 81];
    // SAFETY: ffgmsg writes at most 80 characters plus NUL (FLEN_ERRMSG = 81). Only the first
    // message is kept; the rest of the stack is cleared so it does not leak into later errors.
    if unsafe { sys::ffgmsg(msg.as_mut_ptr()) } != 0 {
        let m = cstr(&msg);
        if !m.is_empty() {
            text = format!("{text}: {m}");
        }
    }
    unsafe { sys::ffcmsg() };
    format!("{text} (cfitsio status {status})")
}

fn cstr(buf: &[c_char]) -> String {
    // SAFETY: the buffers passed here are zero-initialised and cfitsio writes a terminated string
    // shorter than the buffer, so a NUL is always present.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// Turn a cfitsio status into an error naming the file and what was being done.
pub fn check(status: c_int, path: &Path, what: impl FnOnce() -> String) -> Result<()> {
    if status > 0 {
        bail!("{}: {} ({})", path.display(), what(), status_text(status));
    }
    Ok(())
}

/// The raw handle of an open file.
pub fn handle(f: &mut FitsFile) -> *mut sys::fitsfile {
    // SAFETY: the pointer is only used while `f` is borrowed by the caller.
    unsafe { f.as_raw() }
}

/// HDU kinds as cfitsio numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HduKind {
    Image,
    AsciiTable,
    BinaryTable,
}

impl HduKind {
    pub fn name(self) -> &'static str {
        match self {
            HduKind::Image => "an image",
            HduKind::AsciiTable => "an ASCII table",
            HduKind::BinaryTable => "a binary table",
        }
    }
}

/// Number of HDUs in the file.
pub fn num_hdus(f: &mut FitsFile, path: &Path) -> Result<usize> {
    let (mut n, mut status) = (0 as c_int, 0 as c_int);
    // SAFETY: plain out-parameters.
    unsafe { sys::ffthdu(handle(f), &mut n, &mut status) };
    check(status, path, || "cannot count HDUs".into())?;
    Ok(n.max(0) as usize)
}

/// Move to HDU `hdu` (0-based, primary = 0) and return its kind; errors name the file and HDU.
pub fn move_to(f: &mut FitsFile, path: &Path, hdu: usize) -> Result<HduKind> {
    let n = num_hdus(f, path)?;
    if hdu >= n {
        bail!(
            "{}: HDU {hdu} does not exist (the file has {n} HDU{})",
            path.display(),
            if n == 1 { "" } else { "s" }
        );
    }
    let (mut kind, mut status) = (0 as c_int, 0 as c_int);
    // SAFETY: plain out-parameters; cfitsio numbers HDUs from 1.
    unsafe { sys::ffmahd(handle(f), hdu as c_int + 1, &mut kind, &mut status) };
    check(status, path, || format!("cannot open HDU {hdu}"))?;
    Ok(match kind {
        0 => HduKind::Image,
        1 => HduKind::AsciiTable,
        2 => HduKind::BinaryTable,
        k => bail!("{}: HDU {hdu} has unknown type {k}", path.display()),
    })
}

/// Size of the file on disk in bytes (for sanity checks of header-declared sizes).
pub fn file_len(path: &Path) -> u64 {
    if is_compressed_file(path) {
        // cfitsio inflates gzip / compress / pkzip files into memory: the bytes on disk say nothing
        // about the pixels (MAX_PIXELS still bounds the allocation, cfitsio reports a bad stream)
        return u64::MAX;
    }
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(u64::MAX)
}

/// Whether the file starts with a gzip, Unix-compress or pkzip signature.
fn is_compressed_file(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && matches!(magic, [0x1f, 0x8b] | [0x1f, 0x9d] | [b'P', b'K'])
}
