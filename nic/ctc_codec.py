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


@dataclass(frozen=True)
class RatePointKnob:
    """Integer rate point: a larger index gives more bits."""

    low: float
    high: float
    name: str = "rate_point"
    kind: str = "integer"
    rate_increases: bool = True


class NicCodec:
    """A zoo model (default: the zoo's default) coding at an integer rate point."""

    name = "nic"

    def __init__(self, model: str | None = None) -> None:
        self._model_name = model

    @cached_property
    def model(self) -> CodecModel:
        return zoo.load(self._model_name)

    @property
    def knob(self) -> RatePointKnob:
        return RatePointKnob(low=0, high=self.model.num_rate_points - 1)

    def version(self) -> str:
        return f"nic {nic.__version__}, model {self.model.name} sha256:{self.model.sha256[:16]}"

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        return codec.encode(image, self.model, int(round(knob_value)))

    def decode(self, data: bytes) -> np.ndarray:
        return codec.decode(data, self.model)
