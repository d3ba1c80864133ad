"""Codec architectures."""

from nic.models.hyperprior import (
    DOWNSAMPLING,
    HyperpriorConfig,
    MeanScaleHyperprior,
    rate_bits,
)
from nic.models.integer_synthesis import IntegerHyperSynthesis, IntegerOverflowError

__all__ = [
    "DOWNSAMPLING",
    "HyperpriorConfig",
    "IntegerHyperSynthesis",
    "IntegerOverflowError",
    "MeanScaleHyperprior",
    "rate_bits",
]
