"""AVIF (AV1 intra in HEIF) anchor through Pillow's AVIF plugin: libavif with libaom.

Encoding: libaom as the AV1 encoder, 4:4:4 Y'CbCr at 8 bits (libavif's RGB conversion, BT.601
matrix, full range), speed 6 (Pillow's default), quality 0..100 (integer, rate increasing),
no metadata. Decoding is libavif's, through Pillow.
"""

from __future__ import annotations

import re

import numpy as np
import PIL
from PIL import AvifImagePlugin, features

from anchors.ffmpeg import AnchorError
from anchors.inputs import check_image, check_qp
from anchors.pillow_io import pillow_decode, pillow_encode
from ctc.codec import Knob

SPEED = 6


_VERSION = re.compile(r"^Pillow (\S+), (libavif \S+), (libaom \S+); 444 8 bit, speed (\d+)")


def label_for(version: str) -> str | None:
    """What ran, from a version string of this anchor: "libaom 3.14.1 speed 6, 4:4:4 8-bit, via
    libavif 1.4.2 (Pillow 13.0.0)"; None for a version it does not know."""
    match = _VERSION.match(version)
    if not match:
        return None
    pillow, libavif, libaom, speed = match.groups()
    return f"{libaom} speed {speed}, 4:4:4 8-bit, via {libavif} (Pillow {pillow})"


class AvifCodec:
    """libavif + libaom, 4:4:4, speed 6; knob: quality 0..100."""

    name = "avif"
    extension = "avif"
    knob = Knob(name="quality", kind="integer", low=0, high=100, rate_increases=True)

    def __init__(self) -> None:
        if not features.check("avif"):
            raise AnchorError("avif: this Pillow has no AVIF support")
        self.aom = AvifImagePlugin.get_codec_version("aom")
        if not self.aom:
            raise AnchorError("avif: Pillow's libavif was built without libaom")

    def peak_memory(self, width: int, height: int) -> int:
        """The most bytes coding a width x height image takes (ctc.codec), with a margin over the
        40-41 bytes/pixel measured at 2048x1536 and 4096x3072 (Pillow's libavif in this process)."""
        return 50_000_000 + 64 * width * height

    def version(self) -> str:
        return (f"Pillow {PIL.__version__}, libavif {features.version('avif')}, libaom "
                f"{self.aom}; 444 8 bit, speed {SPEED}")  # fmt: skip

    label_for = staticmethod(label_for)

    @property
    def label(self) -> str:
        """What runs, in a few words (label_for of the version)."""
        return label_for(self.version()) or self.name

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        check_image(image, "avif")
        quality = check_qp(knob_value, 0, 100, "avif quality")
        return pillow_encode(image, "AVIF", quality=quality, subsampling="4:4:4", speed=SPEED,
                             codec="aom", max_threads=1)  # fmt: skip

    def decode(self, data: bytes) -> np.ndarray:
        return pillow_decode(data, "AVIF", "avif")
