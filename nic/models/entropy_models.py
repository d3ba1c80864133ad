"""Which network class a config builds, and the integer entropy path that codes with it."""

from __future__ import annotations

import numpy as np

from nic.models.elic import ElicHyperprior, IntegerElic
from nic.models.hyperprior import HyperpriorConfig, MeanScaleHyperprior
from nic.models.integer_synthesis import IntegerHyperSynthesis

MODEL_CLASSES: dict[str, type[MeanScaleHyperprior]] = {
    "hyperprior": MeanScaleHyperprior,
    "elic": ElicHyperprior,
}
"""HyperpriorConfig.entropy_model -> the gain-model network class (a masked model's template
and rate-point networks)."""


def model_class(config: HyperpriorConfig) -> type[MeanScaleHyperprior]:
    """The gain-model network class of a config's entropy model (masked or not)."""
    return MODEL_CLASSES[config.entropy_model]


def integer_entropy_path(
    net: MeanScaleHyperprior, scale_table: np.ndarray
) -> IntegerHyperSynthesis | IntegerElic:
    """The integer path that gives a gain-model network's (or a masked model's rate point's)
    coding plan: `path.start(z, device) -> CodingPlan`."""
    if isinstance(net, ElicHyperprior):
        return IntegerElic(net, scale_table)
    return IntegerHyperSynthesis(net.h_s, scale_table)
