"""Gaussian conditional model for the latent (Minnen, Ballé, Toderici, "Joint autoregressive and
hierarchical priors for learned image compression", NeurIPS 2018: the mean-scale hyperprior)."""

from __future__ import annotations

import math

import numpy as np
import torch

from nic.entropy.tables import LIKELIHOOD_BOUND, CdfTables, quantize_pmf

SCALE_MIN = 0.11
SCALE_MAX = 256.0
NUM_SCALES = 64


def scale_table(num: int = NUM_SCALES) -> np.ndarray:
    """Log-spaced scales; a latent's table is the first entry not below its predicted scale."""
    return np.exp(np.linspace(math.log(SCALE_MIN), math.log(SCALE_MAX), num))


def _std_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * torch.erfc(-x / math.sqrt(2.0))


def gaussian_likelihood(residual: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Mass of the unit bin around `residual` (value minus mean) under N(0, scale^2)."""
    scale = scale.clamp_min(SCALE_MIN)
    v = residual.abs()
    p = _std_normal_cdf((0.5 - v) / scale) - _std_normal_cdf((-0.5 - v) / scale)
    return p.clamp_min(LIKELIHOOD_BOUND)


def scale_indexes(scale: torch.Tensor, table: np.ndarray) -> torch.Tensor:
    """Index of the first table scale that is >= the predicted scale (clamped to the table)."""
    bounds = torch.as_tensor(table[:-1], dtype=scale.dtype, device=scale.device)
    return torch.bucketize(scale, bounds, right=False).to(torch.int32)


def build_gaussian_tables(table: np.ndarray, tail_mass: float = 1e-9) -> CdfTables:
    """Integer CDF tables of the zero-mean quantized Gaussian for every table scale.

    The support is [-R, R] with R chosen so that the two tails hold `tail_mass`; the end symbols
    carry the tails, and a value beyond R is coded with an escape (nic/entropy/coder.py).
    """
    from scipy.special import ndtr, ndtri

    z = -ndtri(tail_mass / 2)
    pmfs, offsets = [], []
    for s in table:
        radius = max(1, int(math.ceil(s * z)))
        edges = (np.arange(-radius, radius + 2) - 0.5) / s
        cdf = ndtr(edges)
        cdf[0], cdf[-1] = 0.0, 1.0
        pmfs.append(quantize_pmf(np.diff(cdf)))
        offsets.append(-radius)
    return CdfTables.from_pmfs(pmfs, offsets)
