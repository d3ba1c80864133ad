"""Factorized (non-parametric) density for the hyper-latent.

The univariate cumulative density of each channel is a small monotone network, as in Ballé et al.,
"Variational image compression with a scale hyperprior", ICLR 2018, appendix 6.1.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nic.entropy.tables import LIKELIHOOD_BOUND, CdfTables, quantize_pmf


class FactorizedPrior(nn.Module):
    """One learned univariate density per channel, evaluated on unit-width bins."""

    def __init__(
        self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0
    ) -> None:
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))

    def _logits_cumulative(self, x: torch.Tensor) -> torch.Tensor:
        """x: (C, 1, L) -> logits of the cumulative density at x, same shape."""
        for i, matrix in enumerate(self.matrices):
            x = torch.matmul(F.softplus(matrix), x) + self.biases[i]
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """Probability mass of the unit bin centred on each value of z (B, C, H, W)."""
        b, c, h, w = z.shape
        with torch.autocast(z.device.type, enabled=False):  # rates need float32
            return self._likelihood(z.float(), b, c, h, w)

    def _likelihood(self, z: torch.Tensor, b: int, c: int, h: int, w: int) -> torch.Tensor:
        v = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self._logits_cumulative(v - 0.5)
        upper = self._logits_cumulative(v + 0.5)
        # Evaluate on the side of the median where the sigmoid is not saturated.
        sign = -torch.sign(lower + upper).detach()
        p = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        p = p.reshape(c, b, h, w).permute(1, 0, 2, 3)
        return p.clamp_min(LIKELIHOOD_BOUND)

    @torch.no_grad()
    def build_tables(self, tail_mass: float = 1e-9, search_radius: int = 2048) -> CdfTables:
        """Integer CDF tables, one per channel, over the integers that carry the mass.

        The end symbols' probabilities hold the tail mass; a value outside a channel's support
        is coded with an escape (nic/entropy/coder.py), never clamped.
        """
        grid = torch.arange(-search_radius, search_radius + 1, dtype=torch.float64)
        module = self.double()
        try:
            edges = torch.cat([grid - 0.5, grid[-1:] + 0.5]).expand(self.channels, 1, -1)
            cdf = torch.sigmoid(module._logits_cumulative(edges.contiguous())).squeeze(1)
        finally:
            self.float()
        cdf = cdf.numpy()
        pmfs, offsets = [], []
        for c in range(self.channels):
            inside = np.nonzero((cdf[c, 1:] > tail_mass / 2) & (cdf[c, :-1] < 1 - tail_mass / 2))[0]
            lo, hi = (int(inside[0]), int(inside[-1])) if inside.size else (search_radius,) * 2
            pmf = np.diff(cdf[c, lo : hi + 2])
            pmf[0] += cdf[c, lo]
            pmf[-1] += 1.0 - cdf[c, hi + 1]
            pmfs.append(quantize_pmf(pmf))
            offsets.append(lo - search_radius)
        return CdfTables.from_pmfs(pmfs, offsets)
