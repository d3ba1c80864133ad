"""The one interface every codec implements: the nic models, the anchors and contributed tools.

It is a Protocol, so a codec satisfies it without importing ctc; codecs register through the
`ctc.codecs` entry-point group in their distribution's pyproject.toml.

Optional extras that the harness uses when a codec has them:
- `extension`: file name extension of its bitstreams (default "bin");
- `encode_to_target(...)` (SelfRateMatching below): the codec's own rate matching.
- `unavailable`: None, or one line saying why the codec cannot encode here (an external
  encoder that is not installed). Its jobs that frozen results answer (ctc.frozen) still run;
  the others are left out of the run and named in the run summary (RunSummary.codec_errors),
  an error when the codec was asked for by name.
- `rate_points`: the knob values of a variable-rate model's trained rate points, for the
  complexity sheet's per-rate-point parameter counts (an integer knob's values otherwise).
- `label_for(version)`: a static method of the class that says what actually runs, in a few
  words with its key settings and whether it stands in for a reference encoder, for any
  version string the codec has written (None where it does not recognise one): e.g. "VVenC
  1.15.0-dev preset fast, 4:2:0 10-bit, via FFmpeg — stand-in for VTM" for the "vvc" anchor,
  whose `version()` stays the exact, long record. Reports and `ctc results` show it next to
  the short name, for rows of earlier runs and frozen rows too (ctc.report.data.codec_label);
  reports list each name with its label once and use the short names in their tables
  (docs/reporting.md). It is looked up on the registered class without constructing it; the
  module that the entry point names must contain the text `label_for` (other modules, a
  learned codec's torch for one, are not imported for it). The anchors also have `label`,
  the same for the codec as constructed.
- `peak_memory(width, height)`: the most bytes that coding (encoding or decoding) a width x
  height image takes, None where the codec cannot say: its models and buffers in the process
  and any encoder process it starts, not the harness's own image, reconstruction and metrics.
  `ctc run -j N` plans its workers from it (ctc.runner.plan_workers); a codec without one, or
  that returns None, is assumed to take DEFAULT_PEAK_BASE_BYTES + DEFAULT_PEAK_BYTES_PER_PIXEL
  per pixel (estimated_peak_memory).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Knob:
    """The parameter rate control turns.

    kind: "integer" knobs take whole values in [low, high]; "continuous" ones any real value.
    rate_increases: True when a larger value gives more bits (a rate point, a JPEG quality),
    False when it gives fewer (a QP).
    """

    name: str
    kind: Literal["integer", "continuous"]
    low: float
    high: float
    rate_increases: bool


@runtime_checkable
class Codec(Protocol):
    """Encode 8-bit RGB pixels (H, W, 3) to a complete file's bytes, and decode them back."""

    name: str
    knob: Knob

    def version(self) -> str:
        """Exact version string of what runs (library, binary, model weights hash)."""
        ...

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        """The whole file that a decoder needs: bpp is counted from len() of this."""
        ...

    def decode(self, data: bytes) -> np.ndarray:
        """Reconstruction as uint8 (H, W, 3)."""
        ...


@runtime_checkable
class SelfRateMatching(Protocol):
    """A codec that can reach a bpp window itself, e.g. because it estimates its rate cheaply.

    Returns (knob value used, whole file bytes) or (knob value, bytes, real encodes made), or
    None to let the harness search the knob. Without a count the harness counts one encode; it
    always checks the result against the window.
    """

    def encode_to_target(
        self, image: np.ndarray, target_bpp: float, min_bpp: float, max_bpp: float
    ) -> tuple[float, bytes] | tuple[float, bytes, int] | None: ...


DEFAULT_PEAK_BYTES_PER_PIXEL = 1000
"""Bytes per pixel assumed for a codec that gives no peak_memory: about twice what nic's
whole-picture decode adds (4.6 GB at 3840x2160, docs/reporting.md), so that a learned codec that
says nothing is not planned into more workers than fit."""
DEFAULT_PEAK_BASE_BYTES = 1_000_000_000
"""Bytes assumed on top for such a codec whatever the image: its models and libraries."""


def estimated_peak_memory(codec: object, width: int, height: int) -> tuple[int, bool]:
    """(the most bytes that coding a width x height image takes, whether the codec said so):
    the codec's own `peak_memory(width, height)`, else the conservative default above.

    Raises ValueError when the codec's answer is not a number of bytes (or None).
    """
    own = getattr(codec, "peak_memory", None)
    name = getattr(codec, "name", type(codec).__name__)
    try:
        value = own(width, height) if callable(own) else None
    except Exception as e:  # a contributed codec's bug: one line naming it
        raise ValueError(
            f"codec {name!r}: peak_memory({width}, {height}) failed: {type(e).__name__}: {e}"
        ) from None
    if value is None:
        return DEFAULT_PEAK_BASE_BYTES + DEFAULT_PEAK_BYTES_PER_PIXEL * width * height, False
    valid = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not valid or not math.isfinite(value) or value < 0:
        raise ValueError(
            f"codec {name!r}: peak_memory({width}, {height}) returned {value!r}, expected a "
            "number of bytes or None"
        )
    return math.ceil(value), True
