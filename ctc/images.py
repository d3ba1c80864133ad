"""Reading original images for the CTC, and their pixel checksums.

Metrics are always taken against the original, so an original must be exactly representable as
8-bit sRGB. Files are read by the shared `imagefile` package (the same rules as nic) with lossy
conversions refused: 8-bit RGB is used as it is; grayscale, palette, fully opaque alpha, exact
low-bit samples and EXIF orientation are converted without loss; 16-bit (or other non-8-bit)
samples, real transparency and non-sRGB colour profiles raise ImageError, as do JPEG files
(lossy-compressed, and decoders differ), files over the size limit and non-regular files.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

import imagefile

IMAGE_SUFFIXES = (".png", ".ppm", ".pgm", ".pbm", ".pnm", ".bmp", ".tif", ".tiff")
FORMATS = ("PNG", "PNM", "TIFF", "BMP")  # JPEG originals are refused
MAX_PIXELS = imagefile.MAX_PIXELS  # default limit on width x height: 2^26
_LIMIT_HINT = "raise the limit to use it (ctc run --max-pixels N, load_image(max_pixels=N))"


class ImageError(imagefile.ImageFileError):
    """An original image is unreadable or not losslessly representable as 8-bit sRGB."""


def load_image(path: str | Path, *, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """An original image as uint8 (H, W, 3) sRGB, converted only where no information is lost.

    max_pixels: the most width x height pixels accepted (checked from the header, before
    decoding), None for no limit; each side is at most 65536 either way.
    Raises ImageError (one line naming the file) for anything unreadable, missing, too large,
    or not exactly representable.
    """
    try:
        decoded = imagefile.read_rgb8(
            path, allow_lossy=False, max_pixels=max_pixels, formats=FORMATS, limit_hint=_LIMIT_HINT
        )
    except imagefile.ImageFileError as e:
        raise ImageError(str(e)) from None
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    return decoded.pixels


def pixel_sha256(image: np.ndarray) -> str:
    """sha256 of the uint8 (H, W, 3) array's bytes in row-major order (file encoding ignored)."""
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).hexdigest()
