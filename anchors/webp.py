"""WebP (lossy, VP8) anchor through Pillow and the libwebp it bundles.

Encoding: lossy WebP, method 6 (libwebp's slowest, best compression), quality 0..100 (integer,
rate increasing), no metadata; libwebp converts RGB to 4:2:0 Y'CbCr itself (BT.601 limited
range, as VP8 requires). Decoding is libwebp's, through Pillow.
"""

from __future__ import annotations

import numpy as np
import PIL
from PIL import features

from anchors.inputs import check_image, check_qp
from anchors.pillow_io import pillow_decode, pillow_encode
from ctc.codec import Knob


class WebpCodec:
    """libwebp lossy, method 6; knob: quality 0..100."""

    name = "webp"
    extension = "webp"
    knob = Knob(name="quality", kind="integer", low=0, high=100, rate_increases=True)

    def version(self) -> str:
        return (
            f"Pillow {PIL.__version__}, libwebp {features.version_module('webp')}; lossy, method 6"
        )

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        check_image(image, "webp")
        quality = check_qp(knob_value, 0, 100, "webp quality")
        return pillow_encode(image, "WEBP", quality=quality, method=6, lossless=False)

    def decode(self, data: bytes) -> np.ndarray:
        return pillow_decode(data, "WEBP", "webp")
