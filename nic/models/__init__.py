"""Codec architectures."""

from nic.models.hyperprior import (
    DOWNSAMPLING,
    HyperpriorConfig,
    MeanScaleHyperprior,
    rate_bits,
)
from nic.models.integer_synthesis import IntegerHyperSynthesis, IntegerOverflowError
from nic.models.masked import MaskedMultiRateHyperprior


def build_model(config: HyperpriorConfig) -> MeanScaleHyperprior | MaskedMultiRateHyperprior:
    """The network a config describes: masked when it names a mask block, else gain-only."""
    return MaskedMultiRateHyperprior(config) if config.masked else MeanScaleHyperprior(config)


__all__ = [
    "build_model",
    "DOWNSAMPLING",
    "HyperpriorConfig",
    "IntegerHyperSynthesis",
    "IntegerOverflowError",
    "MaskedMultiRateHyperprior",
    "MeanScaleHyperprior",
    "rate_bits",
]
