//! Naming a pixel in messages, in both conventions users meet: FITS 1-based `(x, y)` (ds9,
//! astropy WCS, IRAF) and numpy `[row, col]` of the array `astropy.io.fits` returns (whose row 0
//! is the file's first row, the bottom of the sky picture).

/// Pixel `i` of an `nx`-wide image kept in the file's row order (as read from FITS, unflipped).
pub fn in_file_order(i: usize, nx: usize) -> String {
    let (row, col) = (i / nx, i % nx);
    format!(
        "pixel (x={}, y={}) (FITS, 1-based) = [{row}, {col}] (numpy [row, col])",
        col + 1,
        row + 1
    )
}

/// Pixel `i` of an `ny` x `nx` image held with row 0 at the top, i.e. flipped from a FITS file
/// on reading (`fits::read_sky_f32`): named as in the file.
pub fn in_sky_order(i: usize, ny: usize, nx: usize) -> String {
    let (row_from_top, col) = (i / nx, i % nx);
    in_file_order((ny - 1 - row_from_top) * nx + col, nx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_conventions_name_the_file_position() {
        // numpy [10, 10] of an 80x80 map read with astropy is FITS (x=11, y=11); in memory
        // (row 0 = top) it sits at row 69
        let expect = "pixel (x=11, y=11) (FITS, 1-based) = [10, 10] (numpy [row, col])";
        assert_eq!(in_file_order(10 * 80 + 10, 80), expect);
        assert_eq!(in_sky_order(69 * 80 + 10, 80, 80), expect);
        // non-square: 3 rows of 5, last pixel of the top row in memory = first file row
        assert_eq!(
            in_sky_order(4, 3, 5),
            "pixel (x=5, y=3) (FITS, 1-based) = [2, 4] (numpy [row, col])"
        );
    }
}
