"""Reading original images for the CTC, and their pixel checksums.

Metrics are always taken against the original, so an original must be exactly representable as
8-bit RGB: 8-bit RGB files are used as they are, and grayscale, palette and fully opaque alpha
images are expanded without loss. Anything whose conversion would lose information (16-bit
samples, real transparency) is refused with ImageError rather than silently converted.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".ppm", ".pnm", ".bmp", ".tif", ".tiff")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageError(ValueError):
    """An original image is unreadable or not losslessly representable as 8-bit RGB."""


def _png_bit_depth(path: Path) -> int | None:
    """Sample bit depth from a PNG's IHDR chunk (Pillow silently reduces 16-bit RGB to 8)."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">B", head[24:25])[0]


def load_image(path: str | Path) -> np.ndarray:
    """An original image as uint8 (H, W, 3), converted only where no information is lost."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            im.load()
            if _png_bit_depth(path) == 16 or im.mode.startswith("I") or im.mode == "F":
                raise ImageError(f"{path}: 16-bit or float samples; the CTC takes 8-bit RGB")
            if im.mode == "P":
                im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            if im.mode in ("RGBA", "LA", "PA"):
                alpha = np.asarray(im.getchannel("A"))
                if alpha.min() < 255:
                    raise ImageError(f"{path}: has transparency; the CTC takes opaque 8-bit RGB")
            if im.mode not in ("RGB", "RGBA", "L", "LA", "1"):
                raise ImageError(f"{path}: colour mode {im.mode} is not supported")
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from None
    return np.ascontiguousarray(rgb)


def pixel_sha256(image: np.ndarray) -> str:
    """sha256 of the uint8 (H, W, 3) array's bytes in row-major order (file encoding ignored)."""
    return hashlib.sha256(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).hexdigest()
