//! Catalog columns of every shape a GalSim-layout catalog can have (issue 9): every string width
//! 1-128 with NUL and blank padding, strings that fill the column, empty strings, non-ASCII
//! bytes, and numeric columns of every FITS type. Each catalog is written byte by byte
//! (`data_support::fits_bytes`, not through cfitsio); reading must give the right values or an
//! error naming the file and the column, never a crash. The width-40 catalog of the issue
//! aborted the process (heap overrun in fitsio 0.21's string reader) before the fix.

mod data_support;

use data_support::fits_bytes::{Col, write_table};
use proptest::prelude::*;
use std::path::Path;
use train_vae::data::cosmos::read_catalog;

/// A numeric column type: TFORM letter and TZERO (unsigned / signed-byte conventions).
#[derive(Clone, Copy, Debug)]
enum NumType {
    B,
    SByte,
    I,
    U16,
    J,
    U32,
    K,
    U64,
    E,
    D,
    L,
}

const INT_TYPES: [NumType; 10] = [
    NumType::B,
    NumType::SByte,
    NumType::I,
    NumType::U16,
    NumType::J,
    NumType::U32,
    NumType::K,
    NumType::U64,
    NumType::E,
    NumType::D,
];

impl NumType {
    fn letter(self) -> char {
        match self {
            NumType::B | NumType::SByte => 'B',
            NumType::I | NumType::U16 => 'I',
            NumType::J | NumType::U32 => 'J',
            NumType::K | NumType::U64 => 'K',
            NumType::E => 'E',
            NumType::D => 'D',
            NumType::L => 'L',
        }
    }
    fn tzero(self) -> Option<(String, i128)> {
        match self {
            NumType::SByte => Some(("-128".into(), -128)),
            NumType::U16 => Some(("32768".into(), 32768)),
            NumType::U32 => Some(("2147483648".into(), 1 << 31)),
            NumType::U64 => Some(("9223372036854775808".into(), 1 << 63)),
            _ => None,
        }
    }
    /// The stored raw integer for a wanted value `v` (which must be in range).
    fn raw(self, v: i128) -> i128 {
        v - self.tzero().map_or(0, |t| t.1)
    }
    /// Range of values an integer column of this type can hold (clipped to what tests need).
    fn range(self) -> (i128, i128) {
        match self {
            NumType::B => (0, 255),
            NumType::SByte => (-128, 127),
            NumType::I => (i16::MIN as i128, i16::MAX as i128),
            NumType::U16 => (0, u16::MAX as i128),
            NumType::J => (i32::MIN as i128, i32::MAX as i128),
            NumType::U32 => (0, u32::MAX as i128),
            NumType::K => (i64::MIN as i128, i64::MAX as i128),
            NumType::U64 => (0, i64::MAX as i128),
            NumType::E => (-(1 << 24), 1 << 24),
            NumType::D => (-(1 << 53), 1 << 53),
            NumType::L => (0, 1),
        }
    }
}

/// A numeric column holding `values` (integral for integer types).
fn num_col(name: &str, t: NumType, values: &[f64]) -> Col {
    let raw_i = values.iter().map(|&v| t.raw(v as i128)).collect();
    Col::Num {
        name: name.into(),
        letter: t.letter(),
        tzero: t.tzero().map(|z| z.0),
        rows: values.to_vec(),
        raw_i,
    }
}

fn int_values(t: NumType, seeds: &[u64], lo: i128, hi: i128) -> Vec<f64> {
    let (a, b) = t.range();
    let (lo, hi) = (lo.max(a), hi.min(b));
    seeds
        .iter()
        .map(|&s| (lo + (s as i128).rem_euclid(hi - lo + 1)) as f64)
        .collect()
}

/// The catalog columns: IDENT, GAL_FILENAME, GAL_HDU, NOISE_VARIANCE (+ PIXEL_SCALE).
#[derive(Clone, Debug)]
struct Case {
    width: usize,
    pad: u8,
    names: Vec<Vec<u8>>,
    ident_t: NumType,
    ident: Vec<f64>,
    hdu_t: NumType,
    hdu: Vec<f64>,
    var_t: NumType,
    var: Vec<f64>,
    scale: Option<(NumType, Vec<f64>)>,
}

impl Case {
    fn write(&self, path: &Path) {
        let mut cols = vec![
            num_col("IDENT", self.ident_t, &self.ident),
            Col::Text {
                name: "GAL_FILENAME".into(),
                width: self.width,
                pad: self.pad,
                rows: self.names.clone(),
            },
            num_col("GAL_HDU", self.hdu_t, &self.hdu),
            num_col("NOISE_VARIANCE", self.var_t, &self.var),
        ];
        if let Some((t, v)) = &self.scale {
            cols.push(num_col("PIXEL_SCALE", *t, v));
        }
        write_table(path, &cols, self.names.len());
    }

    /// What a correct reader returns: names (trimmed) or `Err(column)` naming the bad column.
    fn expected_names(&self) -> Result<Vec<String>, &'static str> {
        let mut out = Vec::new();
        for n in &self.names {
            let end = n.iter().position(|&b| b == 0).unwrap_or(n.len());
            let Ok(s) = std::str::from_utf8(&n[..end]) else {
                return Err("GAL_FILENAME");
            };
            let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
            if s.is_empty() {
                return Err("GAL_FILENAME");
            }
            out.push(s.to_string());
        }
        Ok(out)
    }
}

fn stored(t: NumType, v: f64) -> f64 {
    match t {
        NumType::E => v as f32 as f64,
        _ => v,
    }
}

/// Read `case` back and check values, or that the error names the file and the bad column.
fn check(case: &Case, dir: &Path, tag: &str) {
    let path = dir.join(format!("cat_{tag}.fits"));
    case.write(&path);
    let got = read_catalog(&path);
    let fractional = case.ident.iter().any(|v| v.fract() != 0.0);
    match (case.expected_names(), got) {
        (Ok(names), Ok(cat)) if !fractional => {
            assert_eq!(cat.rows.len(), names.len(), "{tag}");
            for (i, r) in cat.rows.iter().enumerate() {
                assert_eq!(r.gal_filename, names[i], "{tag} row {i}");
                assert_eq!(r.ident, case.ident[i] as i64, "{tag} row {i} IDENT");
                assert_eq!(r.gal_hdu, case.hdu[i] as usize, "{tag} row {i} GAL_HDU");
                assert_eq!(
                    r.noise_variance,
                    stored(case.var_t, case.var[i]),
                    "{tag} row {i}"
                );
                let scale = case.scale.as_ref().map_or(0.03, |(t, v)| stored(*t, v[i]));
                assert_eq!(r.pixel_scale, scale, "{tag} row {i}");
            }
        }
        (expected, Err(e)) => {
            let e = format!("{e:#}");
            let col = if fractional {
                "IDENT"
            } else {
                expected.err().unwrap_or("?")
            };
            assert!(
                e.contains(&path.display().to_string()) && e.contains(col),
                "{tag}: error must name the file and column {col}: {e}"
            );
        }
        (expected, Ok(_)) => panic!("{tag}: read succeeded, expected an error ({expected:?})"),
    }
}

fn ascii_name(width: usize, len: usize, salt: usize) -> Vec<u8> {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789_.-";
    let mut v: Vec<u8> = (0..len)
        .map(|i| alphabet[(i * 7 + salt * 13) % alphabet.len()])
        .collect();
    v.truncate(width);
    v
}

#[test]
fn every_string_width_1_to_128_with_nul_and_blank_padding_reads_right() {
    let dir = tempfile::tempdir().unwrap();
    for width in 1..=128usize {
        for pad in [0u8, b' '] {
            // a short name (padded), one that fills the column exactly, and a mid-length one
            let names = vec![
                ascii_name(width, width.div_ceil(3), width),
                ascii_name(width, width, width + 1),
                ascii_name(width, width.div_ceil(2), width + 2),
            ];
            let case = Case {
                width,
                pad,
                names,
                ident_t: NumType::J,
                ident: vec![100027.0, 100028.0, 93315.0],
                hdu_t: NumType::J,
                hdu: vec![0.0, 1.0, 2.0],
                var_t: NumType::D,
                var: vec![6.5e-6, 1e-5, 2e-6],
                scale: Some((NumType::D, vec![0.03, 0.03, 0.06])),
            };
            check(&case, dir.path(), &format!("w{width}_p{pad}"));
        }
    }
}

#[test]
fn text_in_a_numeric_column_and_numbers_in_the_text_column_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("swapped.fits");
    write_table(
        &p,
        &[
            Col::Text {
                name: "IDENT".into(),
                width: 8,
                pad: 0,
                rows: vec![b"12".to_vec()],
            },
            num_col("GAL_FILENAME", NumType::J, &[1.0]),
            num_col("GAL_HDU", NumType::J, &[0.0]),
            num_col("NOISE_VARIANCE", NumType::D, &[1.0]),
        ],
        1,
    );
    let e = format!("{:#}", read_catalog(&p).unwrap_err());
    assert!(
        e.contains("swapped.fits") && e.contains("IDENT") && e.contains("text"),
        "{e}"
    );
    let p = dir.path().join("vector.fits");
    write_table(
        &p,
        &[
            Col::Ints {
                name: "IDENT".into(),
                repeat: 2,
                rows: vec![vec![1, 2]],
            },
            Col::Text {
                name: "GAL_FILENAME".into(),
                width: 8,
                pad: 0,
                rows: vec![b"a.fits".to_vec()],
            },
            num_col("GAL_HDU", NumType::J, &[0.0]),
            num_col("NOISE_VARIANCE", NumType::D, &[1.0]),
        ],
        1,
    );
    let e = format!("{:#}", read_catalog(&p).unwrap_err());
    assert!(
        e.contains("vector.fits") && e.contains("IDENT") && e.contains("2 value"),
        "{e}"
    );
}

/// One random name: empty, ASCII (possibly filling the column), with a non-ASCII byte, or UTF-8.
fn name_strategy(width: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => Just(Vec::new()),
        1 => Just(vec![b' '; width.min(3)]),
        6 => (1..=width, 0usize..1000).prop_map(move |(len, salt)| ascii_name(width, len, salt)),
        2 => (0usize..1000).prop_map(move |salt| ascii_name(width, width, salt)),
        1 => (0..width, any::<u8>().prop_map(|b| b | 0x80), 0usize..1000).prop_map(
            move |(at, b, salt)| {
                let mut v = ascii_name(width, width, salt);
                v[at] = b;
                v
            }
        ),
        // valid UTF-8 beyond ASCII, when it fits (else a plain name)
        1 => Just(if width >= 13 { "galaxié.fits".as_bytes().to_vec() } else { ascii_name(width, width, 1) }),
        // leading blanks (trimmed by the reader)
        1 => Just({
            let mut v = vec![b' '; 2.min(width - 1)];
            v.extend_from_slice(&b"x.fits"[..(width - v.len()).min(6)]);
            v
        }),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let types = prop::sample::select(INT_TYPES.to_vec());
    (
        1usize..=128,
        prop::sample::select(vec![0u8, b' ']),
        1usize..6,
        types.clone(),
        types,
        prop::sample::select(vec![NumType::E, NumType::D, NumType::J]),
        prop::option::of(prop::sample::select(vec![NumType::E, NumType::D])),
        prop::collection::vec(any::<u64>(), 6),
        any::<bool>(),
    )
        .prop_flat_map(
            |(width, pad, n, ident_t, hdu_t, var_t, scale_t, seeds, fractional)| {
                prop::collection::vec(name_strategy(width), n).prop_map(move |names| {
                    let n = names.len();
                    let mut ident = int_values(ident_t, &seeds[..n], -(1 << 40), 1 << 40);
                    if fractional && matches!(ident_t, NumType::E | NumType::D) {
                        ident[0] = 12.5; // exactly representable in E and D
                    }
                    let hdu = int_values(hdu_t, &seeds[..n], 0, 9);
                    let var: Vec<f64> = seeds[..n]
                        .iter()
                        .map(|&s| match var_t {
                            NumType::J => (s % 1000) as f64,
                            _ => (s % 1000) as f64 * 1.25e-7,
                        })
                        .collect();
                    let scale = scale_t.map(|t| (t, vec![0.03; n]));
                    Case {
                        width,
                        pad,
                        names,
                        ident_t,
                        ident,
                        hdu_t,
                        hdu,
                        var_t,
                        var,
                        scale,
                    }
                })
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_catalogs_read_right_or_fail_naming_file_and_column(case in case_strategy()) {
        let dir = tempfile::tempdir().unwrap();
        check(&case, dir.path(), "prop");
    }
}

#[test]
fn logical_columns_read_as_integers() {
    let dir = tempfile::tempdir().unwrap();
    let case = Case {
        width: 40,
        pad: 0,
        names: vec![b"a.fits".to_vec(), b"b.fits".to_vec()],
        ident_t: NumType::J,
        ident: vec![1.0, 2.0],
        hdu_t: NumType::L,
        hdu: vec![0.0, 1.0],
        var_t: NumType::D,
        var: vec![1.0, 2.0],
        scale: None,
    };
    check(&case, dir.path(), "logical");
}
