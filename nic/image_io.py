"""Reading and writing images as 8-bit RGB arrays, with every conversion made explicit.

The codec codes 8-bit sRGB. Files are read by the shared `imagefile` package (the same rules
as ctc): conversions are made and reported in one ImageConversionWarning that says what
happened (grayscale replicated, palette expanded, alpha dropped, 16-bit samples reduced, EXIF
orientation applied, a colour profile converted to sRGB, ...). Files that cannot be read
faithfully, are too large, or are not regular image files raise ImageFormatError.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

import imagefile

MAX_PIXELS = imagefile.MAX_PIXELS  # default limit on width x height: 2^26
_LIMIT_HINT = "raise the limit to read it (nic encode --max-pixels N, read_rgb8(max_pixels=N))"


class ImageFormatError(imagefile.ImageFileError):
    """The file is not an image this software can read (or is refused); one-line message."""


class ImageConversionWarning(UserWarning):
    """The input was converted to 8-bit RGB; the message lists what was done."""


def read_rgb8(path: str | Path, *, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) sRGB pixels.

    PNG, PNM, TIFF, BMP and JPEG are read; conversions warn with ImageConversionWarning.
    max_pixels: the most width x height pixels accepted (checked from the header, before
    decoding), None for no limit; each side is at most 65536 either way.
    Raises FileNotFoundError, and ImageFormatError for anything unreadable, too large or refused.
    """
    try:
        decoded = imagefile.read_rgb8(
            path, allow_lossy=True, max_pixels=max_pixels, limit_hint=_LIMIT_HINT
        )
    except imagefile.ImageFileError as e:
        raise ImageFormatError(str(e)) from None
    if decoded.notes:
        text = ", ".join(str(note) for note in decoded.notes)
        warnings.warn(f"{path}: {text}", ImageConversionWarning, stacklevel=2)
    return decoded.pixels


LOSSLESS_SUFFIXES = (".png", ".ppm", ".pnm", ".bmp", ".tif", ".tiff")
"""What write_rgb8 writes: formats that keep every 8-bit RGB pixel."""


def check_lossless_suffix(path: str | Path) -> None:
    """Raise ImageFormatError unless the suffix names a lossless format (LOSSLESS_SUFFIXES)."""
    if Path(path).suffix.lower() not in LOSSLESS_SUFFIXES:
        raise ImageFormatError(
            f"{path}: decoded images are written losslessly, as one of "
            f"{', '.join(LOSSLESS_SUFFIXES)}"
        )


def write_rgb8(path: str | Path, image: np.ndarray) -> None:
    """Write uint8 (H, W, 3) pixels in the lossless format the suffix names (.png, .ppm, .bmp,
    .tif); raises ImageFormatError for another suffix (.jpg would re-compress the pixels)."""
    check_lossless_suffix(path)
    check_rgb8(image)
    Image.fromarray(image, "RGB").save(path)


def check_rgb8(image: np.ndarray) -> None:
    """Raise ImageFormatError unless image is a non-empty uint8 (H, W, 3) array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ImageFormatError("expected a uint8 numpy array")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageFormatError(f"expected an (H, W, 3) RGB array, got shape {image.shape}")
