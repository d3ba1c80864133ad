"""Codec architectures."""

from nic.models.hyperprior import (
    DOWNSAMPLING,
    HyperpriorConfig,
    MeanScaleHyperprior,
    rate_bits,
)

__all__ = ["DOWNSAMPLING", "HyperpriorConfig", "MeanScaleHyperprior", "rate_bits"]
