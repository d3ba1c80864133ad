"""Encoding to and decoding from an image file format through Pillow, for the Pillow anchors."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError


class PillowDecodeError(ValueError):
    """The bytes are not a complete file of the expected format."""


def pillow_encode(image: np.ndarray, fmt: str, **options: object) -> bytes:
    """The whole file that Pillow writes for an RGB image in format `fmt`."""
    buf = io.BytesIO()
    Image.fromarray(image, "RGB").save(buf, fmt, **options)
    return buf.getvalue()


def pillow_decode(data: bytes, fmt: str, what: str) -> np.ndarray:
    """Pixels of a file of format `fmt` as uint8 (H, W, 3); PillowDecodeError otherwise."""
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            im.load()
            rgb = im.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise PillowDecodeError(f"{what}: not a decodable {fmt} file ({e})") from None
    return np.asarray(rgb, dtype=np.uint8).copy()
