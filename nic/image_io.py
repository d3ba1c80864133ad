"""Reading and writing images as 8-bit RGB arrays, with every conversion made explicit.

The codec codes 8-bit RGB. Other inputs are converted with a warning that says what was lost:
grayscale is replicated to three channels, palette images are expanded, alpha is dropped,
16-bit samples are reduced to 8 bits. Anything else is refused with ImageFormatError.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageFormatError(ValueError):
    """The file is not an image this software can read."""


class ImageConversionWarning(UserWarning):
    """The input was converted to 8-bit RGB and something was lost or invented."""


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from a PNG's IHDR chunk, or None when the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(29)
    if len(head) < 29 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">B", head[24:25])[0]


def read_rgb8(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3), converting explicitly (see module docstring)."""
    path = Path(path)
    try:
        im = Image.open(path)
        im.load()
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageFormatError(f"{path}: not a readable image ({e})") from None
    notes = []
    depth = _png_bit_depth(path)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit integer) grayscale: scale to 8 bits with rounding.
        a = np.asarray(im, dtype=np.float64)
        peak = 65535.0 if (depth == 16 or im.mode.startswith("I;16") or a.max() > 255) else 255.0
        im = Image.fromarray(np.clip(np.round(a * 255.0 / peak), 0, 255).astype(np.uint8), "L")
        notes.append("16-bit samples rounded to 8 bits")
    elif depth == 16:
        # Pillow decodes 16-bit colour PNGs to 8 bits by keeping each sample's high byte.
        notes.append("16-bit samples reduced to 8 bits (high byte kept)")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        notes.append("palette expanded")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        notes.append("alpha channel dropped")
        im = im.convert("RGB" if im.mode.startswith(("RGB", "P")) else "L")
    if im.mode in ("L", "1"):
        notes.append("grayscale replicated to RGB")
        im = im.convert("RGB")
    if im.mode != "RGB":
        raise ImageFormatError(f"{path}: unsupported image mode {im.mode!r}; convert it to RGB")
    if notes:
        warnings.warn(f"{path}: {', '.join(notes)}", ImageConversionWarning, stacklevel=2)
    return np.asarray(im, dtype=np.uint8).copy()


def write_rgb8(path: str | Path, image: np.ndarray) -> None:
    """Write uint8 (H, W, 3) pixels; the format follows the suffix (.png, .ppm, ...)."""
    check_rgb8(image)
    Image.fromarray(image, "RGB").save(path)


def check_rgb8(image: np.ndarray) -> None:
    """Raise ImageFormatError unless image is a non-empty uint8 (H, W, 3) array."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ImageFormatError("expected a uint8 numpy array")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageFormatError(f"expected an (H, W, 3) RGB array, got shape {image.shape}")
