"""imagefile: reading image files as 8-bit sRGB pixels, the same way for nic and ctc.

`read_rgb8(path, allow_lossy=..., max_pixels=...)` returns uint8 (H, W, 3) sRGB pixels and
the conversions it made. nic reads with allow_lossy=True (lossy conversions are made and
reported as warnings), ctc with allow_lossy=False (they raise LossyConversionError).

Rules, identical for every accepted format (PNG, PNM, TIFF, BMP, JPEG; a caller may accept
fewer):

- Only regular files are opened (FIFOs, devices, directories are refused without blocking).
- The size comes from the header and is checked before any pixel is decoded: each side at most
  MAX_SIDE (65536), width x height at most `max_pixels` (default MAX_PIXELS, 2^26).
- Sample depth comes from the file (PNG bit depth, PNM maxval, TIFF BitsPerSample and ColorMap,
  BMP bits per pixel), never from the values. A maxval that divides 255 (1, 2, 4, 8 bits; PNM
  maxval 1, 3, 5, 15, 17, 51, 85, 255) scales exactly: lossless. Deeper or other samples are
  lossy: 16-bit grayscale and PNM samples are rounded (round(v * 255 / maxval)), 16-bit
  colour PNG and TIFF keep the high byte (Pillow's decoding), 16-bit BMP is scaled by Pillow.
- Palettes are expanded (lossless). An alpha channel or PNG tRNS key that makes no pixel
  transparent is removed (lossless); real transparency is dropped without compositing (lossy).
- EXIF orientation (JPEG, TIFF, PNG eXIf) 2-8 is applied, lossless; other values mean "as
  stored".
- Colour: see imagefile.colour. A non-sRGB ICC profile is converted to sRGB (lossy); other
  non-sRGB declarations are refused.
- Multi-frame files (APNG, multi-page TIFF), CMYK, YCbCr, Lab, signed and floating-point
  samples are refused.
"""

from imagefile.policy import (
    ImageFileError,
    ImageTooLargeError,
    LossyConversionError,
    Note,
)
from imagefile.read import Decoded, read_rgb8
from imagefile.source import FORMATS, MAX_PIXELS, MAX_SIDE

__all__ = [
    "FORMATS",
    "MAX_PIXELS",
    "MAX_SIDE",
    "Decoded",
    "ImageFileError",
    "ImageTooLargeError",
    "LossyConversionError",
    "Note",
    "read_rgb8",
]
