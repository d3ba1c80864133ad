"""JPEG 2000 (ISO/IEC 15444-1) anchor through Pillow and the OpenJPEG it bundles.

Encoding: a raw J2K codestream (no JP2 box wrapper), the irreversible 9/7 wavelet with the
irreversible colour transform (OpenJPEG's default for 3-component input), 64x64 code blocks,
one quality layer whose size OpenJPEG's rate allocation fits to the requested rate, up to 6
resolution levels (fewer for small images, which need 2^(levels-1) <= shorter side). The knob is
that requested rate in bpp (continuous; OpenJPEG gets compression ratio 24 / bpp). Decoding is
OpenJPEG's, through Pillow.
"""

from __future__ import annotations

import math
import re

import numpy as np
import PIL
from PIL import features

from anchors.inputs import check_image
from anchors.pillow_io import pillow_decode, pillow_encode
from ctc.codec import Knob

MAX_RESOLUTIONS = 6


_VERSION = re.compile(r"^Pillow (\S+), (OpenJPEG \S+); J2K codestream, 9/7 irreversible")


def label_for(version: str) -> str | None:
    """What ran, from a version string of this anchor: "OpenJPEG 2.5.4 9/7 irreversible, one
    layer (Pillow 13.0.0)"; None for a version it does not know."""
    match = _VERSION.match(version)
    if not match:
        return None
    return f"{match.group(2)} 9/7 irreversible, one layer (Pillow {match.group(1)})"


class Jpeg2000Codec:
    """OpenJPEG JPEG 2000, 9/7 irreversible, one layer at a requested bpp."""

    name = "jpeg2000"
    extension = "j2k"
    knob = Knob(name="requested_bpp", kind="continuous", low=0.01, high=12.0, rate_increases=True)

    def peak_memory(self, width: int, height: int) -> int:
        """The most bytes coding a width x height image takes (ctc.codec), with a margin over the 41
        bytes/pixel measured at 2048x1536 and 4096x3072 (Pillow's OpenJPEG in this process)."""
        return 50_000_000 + 64 * width * height

    def version(self) -> str:
        return (f"Pillow {PIL.__version__}, OpenJPEG {features.version_codec('jpg_2000')}; "
                "J2K codestream, 9/7 irreversible, ICT, one layer")  # fmt: skip

    label_for = staticmethod(label_for)

    @property
    def label(self) -> str:
        """What runs, in a few words (label_for of the version)."""
        return label_for(self.version()) or self.name

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        height, width = check_image(image, "jpeg2000")
        bpp = float(knob_value)
        if not self.knob.low <= bpp <= self.knob.high:
            raise ValueError(f"jpeg2000: requested bpp {bpp} outside 0.01..12")
        levels = min(MAX_RESOLUTIONS, int(math.log2(min(height, width))) + 1)
        return pillow_encode(
            image, "JPEG2000", quality_mode="rates", quality_layers=[24.0 / bpp],
            irreversible=True, no_jp2=True, num_resolutions=levels,
        )  # fmt: skip

    def decode(self, data: bytes) -> np.ndarray:
        return pillow_decode(data, "JPEG2000", "jpeg2000")
