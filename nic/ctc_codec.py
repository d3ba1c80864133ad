"""The nic codec behind the CTC harness's Codec interface (registered as the `nic` entry point).

nic does not import ctc: the interface is a structural Protocol, so this class only has to have
the attributes and methods it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

import nic
from nic import codec, zoo
from nic.model_file import CodecModel
from nic.ratecontrol import encode_to_target


@dataclass(frozen=True)
class RatePositionKnob:
    """Rate position: rate point k is k, fractions interpolate; a larger value gives more bits."""

    low: float
    high: float
    name: str = "rate_position"
    kind: str = "continuous"
    rate_increases: bool = True


class NicCodec:
    """A zoo model (default: the zoo's default) at a continuous rate position, with its own
    rate control (nic.ratecontrol): an estimate over the gain code, then real encodes."""

    name = "nic"

    def __init__(self, model: str | None = None) -> None:
        self._model_name = model

    @cached_property
    def model(self) -> CodecModel:
        return zoo.load(self._model_name)

    @property
    def knob(self) -> RatePositionKnob:
        return RatePositionKnob(low=0, high=self.model.max_rate_position)

    @property
    def rate_points(self) -> list[float]:
        """Knob values of the trained rate points (the positions in between interpolate)."""
        return [float(k) for k in range(self.model.num_rate_points)]

    def version(self) -> str:
        return f"nic {nic.__version__}, model {self.model.name} sha256:{self.model.sha256[:16]}"

    # The harness bounds image sizes when it reads originals, and decodes only streams it has
    # just encoded, so nic's own pixel budget does not apply here.
    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        return codec.encode(image, self.model, knob_value, max_pixels=None)

    def decode(self, data: bytes) -> np.ndarray:
        return codec.decode(data, self.model, max_pixels=None)

    def encode_to_target(
        self, image: np.ndarray, target_bpp: float, min_bpp: float, max_bpp: float
    ) -> tuple[float, bytes, int]:
        """(rate position, file, real encodes) from the codec's own rate control."""
        match = encode_to_target(image, self.model, target_bpp, min_bpp, max_bpp)
        return match.rate, match.data, match.encodes
