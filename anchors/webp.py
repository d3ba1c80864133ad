"""WebP (lossy, VP8) anchor through Pillow and the libwebp it bundles.

Encoding: lossy WebP, method 6 (libwebp's slowest, best compression), quality 0..100 (integer,
rate increasing), no metadata; libwebp converts RGB to 4:2:0 Y'CbCr itself (BT.601 limited
range, as VP8 requires). Decoding is libwebp's, through Pillow.
"""

from __future__ import annotations

import re

import numpy as np
import PIL
from PIL import features

from anchors.inputs import check_image, check_qp
from anchors.pillow_io import pillow_decode, pillow_encode
from ctc.codec import Knob

_VERSION = re.compile(r"^Pillow (\S+), (libwebp \S+); lossy, method (\d)")


def label_for(version: str) -> str | None:
    """What ran, from a version string of this anchor: "libwebp 1.6.0 lossy, method 6 (Pillow
    13.0.0)"; None for a version it does not know."""
    match = _VERSION.match(version)
    if not match:
        return None
    return f"{match.group(2)} lossy, method {match.group(3)} (Pillow {match.group(1)})"


class WebpCodec:
    """libwebp lossy, method 6; knob: quality 0..100."""

    name = "webp"
    extension = "webp"
    knob = Knob(name="quality", kind="integer", low=0, high=100, rate_increases=True)

    def peak_memory(self, width: int, height: int) -> int:
        """The most bytes coding a width x height image takes (ctc.codec), with a margin over the 25
        bytes/pixel measured at 2048x1536 and 4096x3072 (Pillow's libwebp in this process)."""
        return 50_000_000 + 40 * width * height

    def version(self) -> str:
        return (
            f"Pillow {PIL.__version__}, libwebp {features.version_module('webp')}; lossy, method 6"
        )

    label_for = staticmethod(label_for)

    @property
    def label(self) -> str:
        """What runs, in a few words (label_for of the version)."""
        return label_for(self.version()) or self.name

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        check_image(image, "webp")
        quality = check_qp(knob_value, 0, 100, "webp quality")
        return pillow_encode(image, "WEBP", quality=quality, method=6, lossless=False)

    def decode(self, data: bytes) -> np.ndarray:
        return pillow_decode(data, "WEBP", "webp")
