"""Codec architectures."""

from nic.models.elic import ElicHyperprior, IntegerElic
from nic.models.entropy_models import integer_entropy_path, model_class
from nic.models.hyperprior import (
    DOWNSAMPLING,
    ENTROPY_MODELS,
    HyperpriorConfig,
    MeanScaleHyperprior,
    rate_bits,
)
from nic.models.integer_synthesis import (
    CodingPlan,
    IntegerHyperSynthesis,
    IntegerOverflowError,
)
from nic.models.masked import MaskedMultiRateHyperprior


def build_model(config: HyperpriorConfig) -> MeanScaleHyperprior | MaskedMultiRateHyperprior:
    """The network a config describes: masked when it names a mask block, else gain-only (a
    MeanScaleHyperprior or an ElicHyperprior, by its entropy_model)."""
    return MaskedMultiRateHyperprior(config) if config.masked else model_class(config)(config)


__all__ = [
    "build_model",
    "CodingPlan",
    "DOWNSAMPLING",
    "ElicHyperprior",
    "ENTROPY_MODELS",
    "HyperpriorConfig",
    "integer_entropy_path",
    "IntegerElic",
    "IntegerHyperSynthesis",
    "IntegerOverflowError",
    "MaskedMultiRateHyperprior",
    "MeanScaleHyperprior",
    "model_class",
    "rate_bits",
]
