"""JPEG (ISO/IEC 10918-1) anchor through Pillow and the libjpeg(-turbo) it bundles.

Encoding: baseline JPEG, 4:2:0 chroma subsampling, optimized Huffman tables, no metadata beyond
the JFIF header; the knob is Pillow's quality 1..95 (above 95 Pillow's own documentation advises
against: files grow with little gain). Decoding is Pillow's (libjpeg's default islow IDCT and
fancy upsampling), so that a file decodes to the same pixels wherever this Pillow runs.
"""

from __future__ import annotations

import io
import re

import numpy as np
import PIL
from PIL import Image, UnidentifiedImageError, features

from ctc.codec import Knob

_VERSION = re.compile(r"^Pillow (\S+), (libjpeg\S* \S+); baseline 4:2:0")


def label_for(version: str) -> str | None:
    """What ran, from a version string of this anchor: "libjpeg-turbo 3.2.0 baseline 4:2:0
    (Pillow 13.0.0)"; None for a version it does not know."""
    match = _VERSION.match(version)
    return f"{match.group(2)} baseline 4:2:0 (Pillow {match.group(1)})" if match else None


class JpegDecodeError(ValueError):
    """The bytes are not a complete JPEG file."""


class JpegCodec:
    """Pillow JPEG, quality 1..95, 4:2:0, optimized Huffman coding."""

    name = "jpeg"
    extension = "jpg"
    knob = Knob(name="quality", kind="integer", low=1, high=95, rate_increases=True)

    def peak_memory(self, width: int, height: int) -> int:
        """The most bytes coding a width x height image takes (ctc.codec), with a margin over the
        14-17 bytes/pixel measured at 2048x1536 and 4096x3072 (Pillow's libjpeg in this process)."""
        return 50_000_000 + 32 * width * height

    def version(self) -> str:
        if features.check_feature("libjpeg_turbo"):
            lib = f"libjpeg-turbo {features.version_feature('libjpeg_turbo')}"
        else:
            lib = f"libjpeg {features.version_codec('jpg')}"
        return f"Pillow {PIL.__version__}, {lib}; baseline 4:2:0, optimized Huffman"

    label_for = staticmethod(label_for)

    @property
    def label(self) -> str:
        """What runs, in a few words (label_for of the version)."""
        return label_for(self.version()) or self.name

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected uint8 (H, W, 3), got {image.dtype} {image.shape}")
        quality = int(round(knob_value))
        if not self.knob.low <= quality <= self.knob.high:
            raise ValueError(
                f"JPEG quality {quality} outside {self.knob.low:g}..{self.knob.high:g}"
            )
        buf = io.BytesIO()
        Image.fromarray(image, "RGB").save(
            buf, "JPEG", quality=quality, subsampling="4:2:0", optimize=True, progressive=False
        )
        return buf.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        try:
            with Image.open(io.BytesIO(data), formats=["JPEG"]) as im:
                im.load()
                rgb = im.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise JpegDecodeError(f"not a decodable JPEG file ({e})") from None
        return np.asarray(rgb, dtype=np.uint8).copy()
