"""Writes moffat_fwhm0.1_13x13.fits: the pixelated PSF of infer/models/gigalens2022.toml.

A circular Moffat profile (beta = 3, FWHM = 0.1 arcsec, close to HST/WFC3 in the optical) integrated over each
0.065 arcsec pixel by 8x8 sub-sampling, 13x13 pixels, normalised to unit sum, float32. Pure standard library.
Run: python3 make_moffat_psf.py
"""
import math, struct

n, scale, fwhm, beta, sub = 13, 0.065, 0.1, 3.0, 8
alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
img = []
for iy in range(n):
    for ix in range(n):
        acc = 0.0
        for sy in range(sub):
            for sx in range(sub):
                x = (ix - n // 2 + (sx + 0.5) / sub - 0.5) * scale
                y = (iy - n // 2 + (sy + 0.5) / sub - 0.5) * scale
                acc += (1.0 + (x * x + y * y) / (alpha * alpha)) ** (-beta)
        img.append(acc)
total = sum(img)
img = [v / total for v in img]

cards = [
    "SIMPLE  =                    T", "BITPIX  =                  -32", "NAXIS   =                    2",
    f"NAXIS1  = {n:20d}", f"NAXIS2  = {n:20d}",
    f"PIXSCALE= {scale:20.6f} / arcsec per pixel",
    "COMMENT Moffat PSF, beta=3, FWHM=0.1 arcsec, pixel-integrated, unit sum", "END",
]
header = "".join(c.ljust(80) for c in cards)
header += " " * (-len(header) % 2880)
data = b"".join(struct.pack(">f", v) for v in img)
data += b"\0" * (-len(data) % 2880)
with open("moffat_fwhm0.1_13x13.fits", "wb") as f:
    f.write(header.encode("ascii") + data)
print("peak", max(img), "sum", sum(img))
