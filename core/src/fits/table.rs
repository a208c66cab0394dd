//! FITS table columns (binary or ASCII tables), read with buffers sized from cfitsio's own
//! description of each column, so that no column width, type or padding can overrun them.
//!
//! Strings: one per row, NUL-terminated or blank-padded in the file; the value is the bytes before
//! the first NUL with trailing blanks removed (the FITS standard's reading), decoded as UTF-8.
//! Numbers: any integer, logical or floating column (scaled with TSCALE/TZERO by cfitsio);
//! integers are refused from a column holding non-integral values.

use anyhow::{Result, bail};
use fitsio::FitsFile;
use fitsio::sys;
use std::ffi::{c_char, c_int};
use std::path::{Path, PathBuf};

use super::raw::{self, HduKind, check, handle};

// cfitsio type codes (fitsio.h).
const TBIT: c_int = 1;
const TLOGICAL: c_int = 14;
const TSTRING: c_int = 16;
const TCOMPLEX: c_int = 83;
const TDBLCOMPLEX: c_int = 163;
const TFLOAT: c_int = 42;
const TDOUBLE: c_int = 82;
const INTEGER_TYPES: [c_int; 10] = [11, 12, 20, 21, 30, 31, 40, 41, 80, 81];
/// A cfitsio column reader (`ffgcv*`): file, column, first row, first element, count, null
/// value, output, anynul, status.
type CfitsioRead<T> = unsafe extern "C" fn(
    *mut sys::fitsfile,
    c_int,
    sys::LONGLONG,
    sys::LONGLONG,
    sys::LONGLONG,
    T,
    *mut T,
    *mut c_int,
    *mut c_int,
) -> c_int;
/// Rows read per cfitsio call (bounds the string buffers on large catalogs).
const CHUNK_ROWS: usize = 16_384;

/// One column as cfitsio describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// TTYPEn as written (empty when absent).
    pub name: String,
    /// 1-based column number.
    pub number: c_int,
    /// TFORMn as written.
    pub tform: String,
    /// cfitsio's equivalent type code (after TSCALE/TZERO); negative for variable-length columns.
    pub typecode: c_int,
    /// Elements per row (characters, for a string column).
    pub repeat: i64,
    /// Width of one element in bytes (characters of one string, for a string column).
    pub width: i64,
}

/// An open table HDU.
pub struct Table {
    file: FitsFile,
    path: PathBuf,
    hdu: usize,
    /// Rows in the table.
    pub num_rows: usize,
    /// Columns in file order.
    pub columns: Vec<Column>,
}

impl Table {
    /// Open table HDU `hdu` (0-based) of `path`.
    pub fn open(path: &Path, hdu: usize) -> Result<Table> {
        let mut file = super::open(path)?;
        match raw::move_to(&mut file, path, hdu)? {
            HduKind::AsciiTable | HduKind::BinaryTable => {}
            k => bail!("{}: HDU {hdu} is {}, not a table", path.display(), k.name()),
        }
        let fp = handle(&mut file);
        let (mut ncols, mut nrows, mut status) = (0 as c_int, 0 as sys::LONGLONG, 0 as c_int);
        // SAFETY: plain out-parameters on the current HDU.
        unsafe {
            sys::ffgncl(fp, &mut ncols, &mut status);
            sys::ffgnrwll(fp, &mut nrows, &mut status);
        }
        check(status, path, || {
            format!("HDU {hdu}: cannot read the table size")
        })?;
        let mut columns = Vec::with_capacity(ncols.max(0) as usize);
        for number in 1..=ncols {
            let name = key_string(fp, &format!("TTYPE{number}"))?.unwrap_or_default();
            let tform = key_string(fp, &format!("TFORM{number}"))?.unwrap_or_default();
            let (mut typecode, mut repeat, mut width) = (0, 0, 0);
            // SAFETY: plain out-parameters.
            unsafe {
                sys::ffeqtyll(
                    fp,
                    number,
                    &mut typecode,
                    &mut repeat,
                    &mut width,
                    &mut status,
                )
            };
            check(status, path, || {
                format!("HDU {hdu}: column {number} ({name}, TFORM {tform}) has an unusable format")
            })?;
            columns.push(Column {
                name,
                number,
                tform,
                typecode,
                repeat,
                width,
            });
        }
        Ok(Table {
            file,
            path: path.to_path_buf(),
            hdu,
            num_rows: nrows.max(0) as usize,
            columns,
        })
    }

    /// The column called `name` (case-insensitive, as FITS column names are).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns
            .iter()
            .find(|c| c.name.trim().eq_ignore_ascii_case(name))
    }

    fn require(&self, name: &str) -> Result<Column> {
        self.column(name).cloned().ok_or_else(|| {
            anyhow::anyhow!(
                "{}: HDU {}: column {name} is missing",
                self.path.display(),
                self.hdu
            )
        })
    }

    fn err_prefix(&self, c: &Column) -> String {
        format!(
            "{}: HDU {}: column {} (TFORM '{}')",
            self.path.display(),
            self.hdu,
            c.name,
            c.tform
        )
    }

    /// Check that `c` is a fixed-size numeric column with `repeat` values per row.
    fn numeric(&self, c: &Column, repeat: usize) -> Result<()> {
        let p = self.err_prefix(c);
        match c.typecode {
            t if t < 0 => {
                bail!("{p} is a variable-length array; expected {repeat} number(s) per row")
            }
            TSTRING => bail!("{p} holds text; expected {repeat} number(s) per row"),
            TBIT => bail!("{p} is a bit column; expected {repeat} number(s) per row"),
            TCOMPLEX | TDBLCOMPLEX => bail!("{p} is complex; expected real numbers"),
            _ => {}
        }
        if c.repeat != repeat as i64 {
            bail!("{p} has {} value(s) per row, expected {repeat}", c.repeat);
        }
        Ok(())
    }

    /// A numeric column as f64, `repeat` values per row, flattened row-major (`rows x repeat`).
    pub fn read_f64(&mut self, name: &str, repeat: usize) -> Result<Vec<f64>> {
        let c = self.require(name)?;
        self.numeric(&c, repeat)?;
        if c.typecode == TLOGICAL {
            return Ok(self
                .read_logical(&c, repeat)?
                .into_iter()
                .map(|v| v as f64)
                .collect());
        }
        self.read_typed(&c, repeat, f64::NAN, sys::ffgcvd, "")
    }

    /// An integer (or logical) column as i64, `repeat` values per row; a floating-point column
    /// is accepted when every value is integral.
    pub fn read_i64(&mut self, name: &str, repeat: usize) -> Result<Vec<i64>> {
        let c = self.require(name)?;
        self.numeric(&c, repeat)?;
        if c.typecode == TLOGICAL {
            return self.read_logical(&c, repeat);
        }
        if c.typecode == TFLOAT || c.typecode == TDOUBLE || !INTEGER_TYPES.contains(&c.typecode) {
            let v = self.read_f64(name, repeat)?;
            return v
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15 {
                        Ok(x as i64)
                    } else {
                        bail!(
                            "{}, row {}: value {x} is not an integer",
                            self.err_prefix(&c),
                            i / repeat + 1
                        )
                    }
                })
                .collect();
        }
        self.read_typed(&c, repeat, 0, sys::ffgcvjj, " as integers")
    }

    fn read_logical(&mut self, c: &Column, repeat: usize) -> Result<Vec<i64>> {
        let v = self.read_typed(c, repeat, 0 as c_char, sys::ffgcvl, " as logicals")?;
        Ok(v.into_iter().map(|v| (v != 0) as i64).collect())
    }

    /// All `rows x repeat` values of column `c` through the cfitsio reader `read` (`ffgcvd`,
    /// `ffgcvjj`, `ffgcvl`: same signature, element type `T`, `null` for undefined values).
    fn read_typed<T: Copy>(
        &mut self,
        c: &Column,
        repeat: usize,
        null: T,
        read: CfitsioRead<T>,
        what: &str,
    ) -> Result<Vec<T>> {
        let n = self.num_rows * repeat;
        let mut out = vec![null; n];
        let mut status = 0;
        if n > 0 {
            // SAFETY: `out` holds exactly the `n` elements requested; `anynul` is a valid
            // pointer (cfitsio writes it when it meets a null).
            unsafe {
                read(
                    handle(&mut self.file),
                    c.number,
                    1,
                    1,
                    n as sys::LONGLONG,
                    null,
                    out.as_mut_ptr(),
                    &mut 0,
                    &mut status,
                )
            };
        }
        check(status, &self.path, || {
            format!(
                "HDU {}: cannot read column {}{what}: truncated or corrupt?",
                self.hdu, c.name
            )
        })?;
        Ok(out)
    }

    /// A string column, one string per row.
    pub fn read_strings(&mut self, name: &str) -> Result<Vec<String>> {
        let c = self.require(name)?;
        let p = self.err_prefix(&c);
        if c.typecode.abs() != TSTRING {
            bail!("{p} is not a text column");
        }
        if c.typecode < 0 {
            return self.read_var_strings(&c);
        }
        if c.width < c.repeat && c.width > 0 {
            bail!(
                "{p} holds {} strings of {} characters per row; expected one string per row",
                c.repeat / c.width,
                c.width
            );
        }
        // cfitsio writes `width` characters and a terminating NUL per string; the buffers get
        // room for both (and never less than the column's full repeat).
        let stride = c.width.max(c.repeat).max(1) as usize + 1;
        let mut out = Vec::with_capacity(self.num_rows);
        let mut buf: Vec<u8> = Vec::new();
        let mut start = 0;
        while start < self.num_rows {
            let rows = CHUNK_ROWS.min(self.num_rows - start);
            buf.clear();
            buf.resize(rows * stride, 0);
            let mut ptrs: Vec<*mut c_char> = (0..rows)
                .map(|r| buf[r * stride..].as_mut_ptr() as *mut c_char)
                .collect();
            let mut status = 0;
            // SAFETY: `rows` strings are requested; each pointer has `stride` = width + 1 bytes.
            unsafe {
                sys::ffgcvs(
                    handle(&mut self.file),
                    c.number,
                    start as sys::LONGLONG + 1,
                    1,
                    rows as sys::LONGLONG,
                    std::ptr::null_mut(),
                    ptrs.as_mut_ptr(),
                    &mut 0, // anynul: cfitsio writes it when it meets a null
                    &mut status,
                )
            };
            check(status, &self.path, || {
                format!(
                    "HDU {}: cannot read column {} (rows {}-{}): truncated or corrupt?",
                    self.hdu,
                    c.name,
                    start + 1,
                    start + rows
                )
            })?;
            for r in 0..rows {
                out.push(decode(&buf[r * stride..(r + 1) * stride], &p, start + r)?);
            }
            start += rows;
        }
        Ok(out)
    }

    /// Variable-length string column (`PA` / `QA`): one cfitsio call per row, sized from its
    /// descriptor.
    fn read_var_strings(&mut self, c: &Column) -> Result<Vec<String>> {
        let p = self.err_prefix(c);
        let fp = handle(&mut self.file);
        let len = raw::file_len(&self.path);
        let mut out = Vec::with_capacity(self.num_rows);
        for row in 0..self.num_rows {
            let (mut n, mut addr, mut status) = (0 as sys::LONGLONG, 0 as sys::LONGLONG, 0);
            // SAFETY: plain out-parameters.
            unsafe {
                sys::ffgdesll(
                    fp,
                    c.number,
                    row as sys::LONGLONG + 1,
                    &mut n,
                    &mut addr,
                    &mut status,
                )
            };
            check(status, &self.path, || {
                format!("{p}: cannot read the descriptor of row {}", row + 1)
            })?;
            if n < 0 || n as u64 > len {
                bail!(
                    "{p}, row {}: string length {n} is impossible for this file",
                    row + 1
                );
            }
            let mut buf = vec![0u8; n as usize + 2];
            if n > 0 {
                let mut ptr = buf.as_mut_ptr() as *mut c_char;
                // SAFETY: one string of `n` characters plus NUL into `n + 2` bytes.
                unsafe {
                    sys::ffgcvs(
                        fp,
                        c.number,
                        row as sys::LONGLONG + 1,
                        1,
                        1,
                        std::ptr::null_mut(),
                        &mut ptr,
                        &mut 0,
                        &mut status,
                    )
                };
                check(status, &self.path, || {
                    format!("{p}: cannot read row {}", row + 1)
                })?;
            }
            out.push(decode(&buf, &p, row)?);
        }
        Ok(out)
    }
}

/// The string in a cfitsio output buffer: bytes before the first NUL, trailing blanks removed.
fn decode(buf: &[u8], what: &str, row: usize) -> Result<String> {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let bytes = &buf[..end];
    let bytes = &bytes[..bytes.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1)];
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_string()),
        Err(_) => bail!(
            "{what}, row {} (0-based {row}): the text is not ASCII/UTF-8 ({:?})",
            row + 1,
            String::from_utf8_lossy(bytes)
        ),
    }
}

/// A string header keyword of the current HDU, `None` when absent.
fn key_string(fp: *mut sys::fitsfile, key: &str) -> Result<Option<String>> {
    let ckey = std::ffi::CString::new(key).expect("keyword names have no NUL");
    let mut value = [0 as c_char; 81];
    let mut status = 0;
    // SAFETY: ffgkys writes at most FLEN_VALUE = 71 bytes; the buffer holds 81.
    unsafe {
        sys::ffgkys(
            fp,
            ckey.as_ptr(),
            value.as_mut_ptr(),
            std::ptr::null_mut(),
            &mut status,
        )
    };
    if status == 202 {
        // KEY_NO_EXIST
        unsafe { sys::ffcmsg() };
        return Ok(None);
    }
    if status > 0 {
        bail!("cannot read keyword {key} ({})", raw::status_text(status));
    }
    let bytes: Vec<u8> = value
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as u8)
        .collect();
    Ok(Some(String::from_utf8_lossy(&bytes).trim_end().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_stops_at_nul_and_trims_trailing_blanks() {
        assert_eq!(decode(b"abc  \0xyz\0", "c", 0).unwrap(), "abc");
        assert_eq!(decode(b"  a b \0", "c", 0).unwrap(), "  a b");
        assert_eq!(decode(b"\0\0", "c", 0).unwrap(), "");
        assert_eq!(decode("é\0".as_bytes(), "c", 0).unwrap(), "é");
        let e = decode(b"a\xff\0", "f.fits: column X", 4)
            .unwrap_err()
            .to_string();
        assert!(e.contains("f.fits: column X, row 5"), "{e}");
    }
}
