//! A FITS binary-table writer written from the standard (FITS 4.0, Sec. 7.3), byte by byte and
//! independent of cfitsio, so that tests can make catalogs with any column width, padding, byte
//! content or numeric type, exactly as another program (astropy, a collaborator's script) might.
#![allow(dead_code)]

use std::path::Path;

/// One column of a binary table.
#[derive(Clone, Debug)]
pub enum Col {
    /// `wA`: one string per row, the raw bytes given (shorter ones padded with `pad`).
    Text {
        name: String,
        width: usize,
        pad: u8,
        rows: Vec<Vec<u8>>,
    },
    /// A scalar numeric column with its TFORM letter and optional TZERO; values are the stored
    /// (unscaled) numbers, encoded big-endian by `letter`.
    Num {
        name: String,
        letter: char,
        tzero: Option<String>,
        rows: Vec<f64>,
        raw_i: Vec<i128>,
    },
    /// `rD`: `repeat` doubles per row.
    Doubles {
        name: String,
        repeat: usize,
        rows: Vec<Vec<f64>>,
    },
    /// `rJ`: `repeat` 32-bit integers per row.
    Ints {
        name: String,
        repeat: usize,
        rows: Vec<Vec<i32>>,
    },
}

impl Col {
    fn name(&self) -> &str {
        match self {
            Col::Text { name, .. }
            | Col::Num { name, .. }
            | Col::Doubles { name, .. }
            | Col::Ints { name, .. } => name,
        }
    }
    fn tform(&self) -> String {
        match self {
            Col::Text { width, .. } => format!("{width}A"),
            Col::Num { letter, .. } => format!("1{letter}"),
            Col::Doubles { repeat, .. } => format!("{repeat}D"),
            Col::Ints { repeat, .. } => format!("{repeat}J"),
        }
    }
    fn bytes_per_row(&self) -> usize {
        match self {
            Col::Text { width, .. } => *width,
            Col::Num { letter, .. } => letter_size(*letter),
            Col::Doubles { repeat, .. } => 8 * repeat,
            Col::Ints { repeat, .. } => 4 * repeat,
        }
    }
    fn write_row(&self, r: usize, out: &mut Vec<u8>) {
        match self {
            Col::Text {
                width, pad, rows, ..
            } => {
                let b = &rows[r];
                assert!(b.len() <= *width, "string longer than its column");
                out.extend_from_slice(b);
                out.extend(std::iter::repeat_n(*pad, width - b.len()));
            }
            Col::Num {
                letter,
                rows,
                raw_i,
                ..
            } => match letter {
                'L' => out.push(if raw_i[r] != 0 { b'T' } else { b'F' }),
                'B' => out.push(raw_i[r] as u8),
                'I' => out.extend_from_slice(&(raw_i[r] as i16).to_be_bytes()),
                'J' => out.extend_from_slice(&(raw_i[r] as i32).to_be_bytes()),
                'K' => out.extend_from_slice(&(raw_i[r] as i64).to_be_bytes()),
                'E' => out.extend_from_slice(&(rows[r] as f32).to_be_bytes()),
                'D' => out.extend_from_slice(&rows[r].to_be_bytes()),
                l => panic!("unsupported letter {l}"),
            },
            Col::Doubles { rows, .. } => rows[r]
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_be_bytes())),
            Col::Ints { rows, .. } => rows[r]
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_be_bytes())),
        }
    }
    fn extra_cards(&self, i: usize) -> Vec<String> {
        match self {
            Col::Num { tzero: Some(z), .. } => vec![
                card(&format!("TZERO{i}"), z),
                card(&format!("TSCALE{i}"), "1"),
            ],
            _ => vec![],
        }
    }
}

/// Bytes of one value of a TFORM letter.
pub fn letter_size(l: char) -> usize {
    match l {
        'L' | 'B' => 1,
        'I' => 2,
        'J' | 'E' => 4,
        'K' | 'D' => 8,
        _ => panic!("unsupported letter {l}"),
    }
}

/// An 80-character header card `KEY     = value`.
fn card(key: &str, value: &str) -> String {
    let c = format!("{key:<8}= {value:>20}");
    format!("{c:<80}")
}

fn string_card(key: &str, value: &str) -> String {
    let v = format!("'{:<8}'", value.replace('\'', "''"));
    let c = format!("{key:<8}= {v}");
    format!("{c:<80}")
}

fn push_header(out: &mut Vec<u8>, cards: &[String]) {
    for c in cards {
        assert_eq!(c.len(), 80, "{c:?}");
        out.extend_from_slice(c.as_bytes());
    }
    out.extend_from_slice(format!("{:<80}", "END").as_bytes());
    while !out.len().is_multiple_of(2880) {
        out.push(b' ');
    }
}

/// The bytes of a FITS file: empty primary HDU and one binary table of `nrows` rows.
pub fn table_file(cols: &[Col], nrows: usize) -> Vec<u8> {
    let mut out = Vec::new();
    push_header(
        &mut out,
        &[
            card("SIMPLE", "T"),
            card("BITPIX", "8"),
            card("NAXIS", "0"),
            card("EXTEND", "T"),
        ],
    );
    let row_bytes: usize = cols.iter().map(Col::bytes_per_row).sum();
    let mut cards = vec![
        string_card("XTENSION", "BINTABLE"),
        card("BITPIX", "8"),
        card("NAXIS", "2"),
        card("NAXIS1", &row_bytes.to_string()),
        card("NAXIS2", &nrows.to_string()),
        card("PCOUNT", "0"),
        card("GCOUNT", "1"),
        card("TFIELDS", &cols.len().to_string()),
    ];
    for (i, c) in cols.iter().enumerate() {
        cards.push(string_card(&format!("TTYPE{}", i + 1), c.name()));
        cards.push(string_card(&format!("TFORM{}", i + 1), &c.tform()));
        cards.extend(c.extra_cards(i + 1));
    }
    push_header(&mut out, &cards);
    for r in 0..nrows {
        for c in cols {
            c.write_row(r, &mut out);
        }
    }
    while out.len() % 2880 != 0 {
        out.push(0);
    }
    out
}

/// Write [`table_file`] to `path`.
pub fn write_table(path: &Path, cols: &[Col], nrows: usize) {
    std::fs::write(path, table_file(cols, nrows)).unwrap();
}
