"""ELIC-style entropy model: uneven channel groups, each coded in two checkerboard halves.

After He et al., "ELIC: Efficient Learned Image Compression with Unevenly Grouped Space-Channel
Contextual Adaptive Coding" (CVPR 2022), and He et al., "Checkerboard Context Model for
Efficient Learned Image Compression" (CVPR 2021). The transforms are the mean-scale hyperprior's
(GDN, `MeanScaleHyperprior`, at the config's N and M) with the same gain vectors; the latent's
M channels are split into groups (`HyperpriorConfig.channel_groups`, ELIC's 16, 16, 32, 64,
M - 128 by default) and coded group after group, each in two steps:

1. the anchors, the latents at (i + j) even, with parameters from the hyper-synthesis features
   and a channel context of the groups decoded before (none for the first group);
2. the other half, with the same and a spatial context from the group's decoded anchors (a 5x5
   convolution of the anchors alone, so each of its outputs at a non-anchor sees only anchors).

The mean and scale of each latent come from a parameter aggregation of 1x1 convolutions over
the concatenated hyper features, channel context and spatial context (zeros for the anchors), as
in ELIC. Decoding is 2 steps per group (10 for five groups), every step parallel over the image.

Every network on the way from the hyper-latent to a latent's parameters (h_s, the channel and
spatial contexts, the aggregation) runs at coding time on the integer path
(`nic.models.integer_synthesis`), from the decoded latent y_hat = integer residual + fixed-point
mean, which times 2**FRACTION_BITS is an integer: `IntegerElic` gives the `CodingPlan` that the
encoder and the decoder walk. The float network (`ElicHyperprior`) trains and estimates rates
with the same quantization: y_hat = round(y - mean) + mean, with each step's mean computed from
the y_hat of the earlier steps (straight-through rounding in training, uniform noise for the
likelihoods).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from nic.entropy import gaussian_likelihood
from nic.models.hyperprior import (
    HyperpriorConfig,
    MeanScaleHyperprior,
    _conv,
    hyper_synthesis,
    ste_round,
)
from nic.models.integer_synthesis import (
    FRACTION_BITS,
    CodingPlan,
    IntegerSequential,
    StepParameters,
    fixed_point_scale_table,
    table_indexes,
)

CONTEXT_KERNEL = 5
"""Kernel of the channel-context and spatial-context convolutions (ELIC's)."""

Quantizer = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(latents of one group, their means) -> decoded latents y_hat."""


def checkerboard(height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
    """bool (height, width): True at the anchors, the latents at (i + j) even, coded first."""
    i = torch.arange(height, device=device)[:, None]
    j = torch.arange(width, device=device)[None, :]
    return (i + j) % 2 == 0


def group_bounds(groups: tuple[int, ...]) -> list[tuple[int, int]]:
    """(first, end) channel of each group."""
    ends = np.cumsum(groups).tolist()
    return [(end - g, end) for g, end in zip(groups, ends, strict=True)]


class ElicHyperprior(MeanScaleHyperprior):
    """The mean-scale hyperprior's transforms and gains with an ELIC entropy model.

    h_s maps the hyper-latent to 2N hyper features (not to means and scales). Group k has a
    spatial context `spatial_context[k]` (a 5x5 convolution, g_k -> 2 g_k), a parameter
    aggregation `aggregation[k]` (1x1 convolutions to the group's means and scales) and, from the
    second group on, a channel context `channel_context[k - 1]` (two 5x5 convolutions over the
    groups before it, -> 2 g_k).
    """

    def __init__(self, config: HyperpriorConfig) -> None:
        super().__init__(config)
        if config.entropy_model != "elic":
            raise ValueError("ElicHyperprior needs entropy_model: elic in its config")
        n = config.N
        self.groups = config.channel_groups
        self.bounds = group_bounds(self.groups)
        k = CONTEXT_KERNEL
        self.h_s = hyper_synthesis(n, n, 2 * n)
        self.channel_context = nn.ModuleList(
            nn.Sequential(
                _conv(first, n, k, 1), nn.LeakyReLU(inplace=True), _conv(n, 2 * (end - first), k, 1)
            )
            for first, end in self.bounds[1:]
        )
        self.spatial_context = nn.ModuleList(_conv(g, 2 * g, k, 1) for g in self.groups)
        self.aggregation = nn.ModuleList(
            nn.Sequential(
                _conv(2 * n + 2 * g * (2 if i else 1), 2 * n, 1, 1),
                nn.LeakyReLU(inplace=True),
                _conv(2 * n, 2 * n, 1, 1),
                nn.LeakyReLU(inplace=True),
                _conv(2 * n, 2 * g, 1, 1),
            )
            for i, g in enumerate(self.groups)
        )

    @property
    def coding_steps(self) -> int:
        """Steps of the coding plan: two per channel group."""
        return 2 * len(self.groups)

    def _aggregate(
        self, group: int, inputs: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean, scale = self.aggregation[group](torch.cat(inputs, dim=1)).float().chunk(2, dim=1)
        return mean, scale.abs()

    def decode_steps(
        self, hyper: torch.Tensor, y: torch.Tensor, quantize: Quantizer
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean, scale, y_hat) of every latent, (B, M, H, W), walking the coding steps in order.

        `hyper` is h_s's output; group k's anchors get their parameters from it and the
        y_hat of the groups before, the other half also from the group's decoded anchors, and
        `quantize(y_group, mean)` decodes each step's latents (round(y - mean) + mean, or y
        itself when `y` already is the decoded latent). Every convolution runs over whole
        planes (batched over the images); the checkerboard selects what each step uses.
        """
        b, _, h, w = y.shape
        anchor = checkerboard(h, w, y.device)
        means, scales, decoded = [], [], []
        for group, (first, end) in enumerate(self.bounds):
            y_group = y[:, first:end]
            inputs = [hyper]
            if group:
                inputs.append(self.channel_context[group - 1](torch.cat(decoded, dim=1)))
            zeros = hyper.new_zeros(b, 2 * (end - first), h, w)
            mean_a, scale_a = self._aggregate(group, [*inputs, zeros])
            anchors_hat = torch.where(anchor, quantize(y_group, mean_a), 0.0)
            spatial = self.spatial_context[group](anchors_hat)
            mean_n, scale_n = self._aggregate(group, [*inputs, spatial])
            mean = torch.where(anchor, mean_a, mean_n)
            means.append(mean)
            scales.append(torch.where(anchor, scale_a, scale_n))
            decoded.append(quantize(y_group, mean))
        return torch.cat(means, dim=1), torch.cat(scales, dim=1), torch.cat(decoded, dim=1)

    def entropy_parameters(
        self, z_hat: torch.Tensor, y_hat: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, scale) of every latent from the quantized hyper-latent and the decoded latent
        y_hat: what the coding steps compute, each from the latents decoded before it."""
        mean, scale, _ = self.decode_steps(self.h_s(z_hat), y_hat, lambda v, mean: v)
        return mean, scale

    def float_estimate(self, y: torch.Tensor) -> tuple[float, torch.Tensor]:
        """(estimated bits, decoded latent y_hat) of a gain-scaled latent through the float
        network alone: z = round(h_a(y)), every step's y_hat = round(y - mean) + mean, and
        -log2 of the likelihoods of the rounded residuals and of z (no integer path, no entropy
        coding), as MeanScaleHyperprior.float_estimate."""
        z = torch.round(self.h_a(y))
        mean, scale, y_hat = self.decode_steps(
            self.h_s(z), y, lambda v, mean: torch.round(v - mean) + mean
        )
        return self.likelihood_bits(torch.round(y - mean), scale, z), y_hat

    def forward(self, x: torch.Tensor, rate_point: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass: noise for the likelihoods, straight-through rounding for the decoder
        and for the contexts, as MeanScaleHyperprior.forward."""
        y = self.analyze(x, rate_point)
        z = self.h_a(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        mean, scale, y_hat = self.decode_steps(
            self.h_s(z_noisy), y, lambda v, mean: ste_round(v - mean) + mean
        )
        residual = y - mean
        noisy = residual + torch.empty_like(residual).uniform_(-0.5, 0.5)
        return {
            "x_hat": self.synthesize(y_hat, rate_point),
            "y_likelihoods": gaussian_likelihood(noisy, scale),
            "z_likelihoods": self.hyper_prior.likelihood(z_noisy),
        }


class IntegerElic:
    """The integer entropy-parameter path of an ElicHyperprior (bit-exact on any device).

    `start(z, device)` runs h_s on the integer hyper-latent and returns the CodingPlan of
    2 steps per channel group: step 2k codes group k's anchors, step 2k + 1 its other half.
    """

    def __init__(self, net: ElicHyperprior, scale_table: np.ndarray) -> None:
        self.groups = net.groups
        self.bounds = group_bounds(self.groups)
        self.hyper_synthesis = IntegerSequential(net.h_s, in_fraction=0)
        self.channel_context = [IntegerSequential(s) for s in net.channel_context]
        self.spatial_context = [IntegerSequential(c) for c in net.spatial_context]
        self.aggregation = [IntegerSequential(a) for a in net.aggregation]
        self.fixed_point_table = fixed_point_scale_table(scale_table)

    @property
    def steps(self) -> int:
        return 2 * len(self.groups)

    @torch.inference_mode()
    def start(self, z: np.ndarray | torch.Tensor, device: torch.device | str) -> CodingPlan:
        """The coding plan of a latent given its integer hyper-latent z (1, N, h, w)."""
        hyper = self.hyper_synthesis(torch.as_tensor(z).to(device=device, dtype=torch.float64))
        return CodingPlan(self.steps, _ElicPlan(self, hyper).parameters)


class _ElicPlan:
    """One latent's coding steps: the hyper features, and group k's channel context (computed
    at the first of its two steps, reused at the second when the groups before are unchanged)."""

    def __init__(self, path: IntegerElic, hyper: torch.Tensor) -> None:
        self.path = path
        self.hyper = hyper
        self.anchor = checkerboard(hyper.shape[2], hyper.shape[3], hyper.device)
        self._channel_context: tuple[int, torch.Tensor, torch.Tensor] | None = None

    def channel_context(self, group: int, decoded: torch.Tensor) -> torch.Tensor:
        """Group `group`'s channel context from the decoded latents of the groups before."""
        cached = self._channel_context
        if cached is not None and cached[0] == group and torch.equal(cached[1], decoded):
            return cached[2]
        context = self.path.channel_context[group - 1](_fixed_point(decoded))
        self._channel_context = (group, decoded.clone(), context)
        return context

    @torch.inference_mode()
    def parameters(self, step: int, y_hat: torch.Tensor) -> StepParameters:
        """(mean, index, where) of step `step` from the decoded latent y_hat (1, M, H, W); only
        the groups before this step's and, at a second half, the group's anchors are read."""
        path, hyper = self.path, self.hyper
        if not 0 <= step < path.steps:
            raise IndexError(f"coding step {step} outside 0..{path.steps - 1}")
        group, second_half = divmod(step, 2)
        first, end = path.bounds[group]
        _, _, h, w = hyper.shape
        channels = path.bounds[-1][1]
        if tuple(y_hat.shape) != (1, channels, h, w):
            raise ValueError(f"y_hat of shape {tuple(y_hat.shape)}, not {(1, channels, h, w)}")
        y_hat = y_hat.to(hyper.device, torch.float64)
        inputs = [hyper]
        if group:
            inputs.append(self.channel_context(group, y_hat[:, :first]))
        if second_half:
            anchors = torch.where(self.anchor, _fixed_point(y_hat[:, first:end]), 0.0)
            inputs.append(path.spatial_context[group](anchors))
        else:
            inputs.append(hyper.new_zeros(1, 2 * (end - first), h, w))
        positions = ~self.anchor if second_half else self.anchor
        # The aggregation is 1x1 convolutions: run it on this step's positions only.
        features = torch.cat(inputs, dim=1)[:, :, positions][..., None]
        mean_int, scale_int = path.aggregation[group](features)[..., 0].chunk(2, dim=1)
        mean = hyper.new_zeros(1, channels, h, w)
        index = torch.zeros(1, channels, h, w, dtype=torch.int64, device=hyper.device)
        where = torch.zeros(1, channels, h, w, dtype=torch.bool, device=hyper.device)
        mean[:, first:end, positions] = mean_int * 2.0**-FRACTION_BITS
        index[:, first:end, positions] = table_indexes(scale_int, path.fixed_point_table)
        where[:, first:end, positions] = True
        return mean, index, where


def _fixed_point(y_hat: torch.Tensor) -> torch.Tensor:
    """Decoded latents (integer residual + a mean of FRACTION_BITS fractional bits) as the
    integers y_hat * 2**FRACTION_BITS: exact, so the rounding changes nothing for them; it only
    keeps any other input integer."""
    return torch.round(y_hat * 2.0**FRACTION_BITS)
