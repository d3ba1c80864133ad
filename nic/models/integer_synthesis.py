"""Entropy parameters in integer arithmetic, so that entropy decoding is bit-exact on any device.

The decoder must rebuild exactly the CDF table index of every latent that the encoder used. With
a float hyper-synthesis, convolution sums are rounded in an order that depends on the device and
the library (an H100 encode decoded on a CPU got 37-43 % of the symbols wrong, as measured),
so the index can differ and the range decoder silently goes astray. Ballé et al., "Integer
networks for data compression with latent-variable models" (ICLR 2019) make this path integer.

Here every layer works on integers held in float64: weights are rounded to integers of magnitude
at most 2**WEIGHT_BITS with a power-of-two scale per layer, activations carry `FRACTION_BITS`
fractional bits, and every product and partial sum is an integer below 2**53, so float64
represents it exactly and the result is the same in any summation order. Rescaling divides by
powers of two (rounding half up after a convolution, flooring in the leaky ReLU, whose slope is
the dyadic fraction 41/4096, about 0.01), and the scale is compared with integer thresholds.
All of it is derived elementwise from the stored weights (the only reduction, a maximum, is
exact), so every machine derives the same integers.

`IntegerSequential` is that arithmetic for any stack of convolutions and 0.01-leaky ReLUs;
`IntegerHyperSynthesis` runs the mean-scale hyperprior's h_s on it, and a context model
(nic/models/elic.py) its context and aggregation networks, through the `CodingPlan` interface.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nic.entropy import scale_indexes

WEIGHT_BITS = 14
"""Largest weight magnitude per layer is scaled to 2**WEIGHT_BITS."""
FRACTION_BITS = 12
"""Fractional bits of every activation and of the output mean and scale."""
LEAKY_NUMERATOR, LEAKY_SHIFT = 41, 12
"""Negative slope of the leaky ReLUs: 41 / 2**12 = 0.01001 (torch's default is 0.01)."""
EXACT_LIMIT = 2.0**53


class IntegerOverflowError(ArithmeticError):
    """A partial sum could exceed 2**53, where float64 stops being exact."""


class _IntegerConv:
    """One convolution or transposed convolution with integer weights and bias.

    The integers are derived from the layer's parameters at every call (an elementwise
    rounding, exact on any machine), so the path visibly runs on the stored weights.
    """

    def __init__(self, layer: nn.Conv2d | nn.ConvTranspose2d, in_fraction: int) -> None:
        self.layer = layer
        w, b = self._parameters("cpu")
        self.weight_shift = WEIGHT_BITS - math.ceil(math.log2(float(w.abs().max())))
        self.bias_shift = in_fraction + self.weight_shift
        self.out_shift = self.bias_shift - FRACTION_BITS
        self.transposed = isinstance(layer, nn.ConvTranspose2d)
        self.stride, self.padding = layer.stride, layer.padding
        self.output_padding = getattr(layer, "output_padding", (0, 0))
        # Rounding half up after the convolution: the half is added with the bias (exact
        # integers, so the sum is the same in any order), then a power-of-two floor.
        self.half = 2.0 ** (self.out_shift - 1) if self.out_shift > 0 else 0.0
        w_int, b_int = self.integer_weights("cpu")
        fan_in = w_int[0].numel() if not self.transposed else w_int[:, 0].numel()
        self.max_product_sum = fan_in * float(w_int.abs().max())
        self.max_bias = float(b_int.abs().max()) + self.half

    def _parameters(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            self.layer.weight.detach().to(device, torch.float64),
            self.layer.bias.detach().to(device, torch.float64),
        )

    def integer_weights(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights rounded to WEIGHT_BITS and the bias at the accumulator's scale, float64.

        A float32 weight is scaled and rounded in float32 and then widened: scaling by a power of
        two is exact, and so is rounding to an integer of at most 2**WEIGHT_BITS, so the result
        is the float64 computation's bit for bit, in half the memory traffic (measured: 4.4 ms
        against 10.4 ms for the three layers of the zoo models' h_s). The bias, whose integer
        may pass float32's 2**24, is computed in float64."""
        w = self.layer.weight.detach()
        if w.dtype != torch.float32:
            w = w.double()
        b = self.layer.bias.detach().to(device, torch.float64)
        return (
            torch.round(w * 2.0**self.weight_shift).to(device, torch.float64),
            torch.round(b * 2.0**self.bias_shift),
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        low, high = torch.aminmax(x)
        if max(-float(low), float(high)) * self.max_product_sum + self.max_bias >= EXACT_LIMIT:
            raise IntegerOverflowError("integer entropy path: activation too large")
        w, b = self.integer_weights(x.device)
        b = b + self.half
        # cuDNN may pick FFT or Winograd algorithms, which round; the native kernels do not.
        with torch.backends.cudnn.flags(enabled=False):
            if self.transposed:
                acc = F.conv_transpose2d(x, w, b, self.stride, self.padding, self.output_padding)
            else:
                acc = F.conv2d(x, w, b, self.stride, self.padding)
        if self.out_shift <= 0:
            return acc * 2.0**-self.out_shift
        return acc.mul_(2.0**-self.out_shift).floor_()  # (sum + half) / 2**shift, floored


LEAKY_SLOPE = LEAKY_NUMERATOR * 2.0**-LEAKY_SHIFT
"""41 / 4096, exact in float64: x * LEAKY_SLOPE is 41 x rounded and scaled by a power of two,
the same as (x * 41) * 2**-12."""


def _leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """x for x >= 0, floor(41 x / 4096) below (computed in place on the caller's x)."""
    negative = torch.clamp_max(x, 0.0).mul_(LEAKY_SLOPE).floor_()
    return x.clamp_min_(0.0).add_(negative)


class IntegerSequential:
    """A network of convolutions, transposed convolutions and 0.01-leaky ReLUs (an nn.Sequential
    or a single convolution) on fixed-point integers held in float64.

    The input carries `in_fraction` fractional bits (0: integers such as the hyper-latent;
    FRACTION_BITS: a decoded latent times 2**FRACTION_BITS, or another such network's output),
    the output FRACTION_BITS. Outputs of several of these networks share one scale, so they may
    be concatenated as the input of another.
    """

    def __init__(self, network: nn.Module, in_fraction: int = FRACTION_BITS) -> None:
        modules = list(network) if isinstance(network, nn.Sequential) else [network]
        self.layers: list = []
        fraction = in_fraction
        for layer in modules:
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                self.layers.append(_IntegerConv(layer, fraction))
                fraction = FRACTION_BITS
            elif isinstance(layer, nn.LeakyReLU):
                if layer.negative_slope != 0.01:
                    raise ValueError("integer leaky ReLU supports the 0.01 slope only")
                self.layers.append(_leaky_relu)
            else:
                raise ValueError(f"no integer version of {type(layer).__name__}")
        if fraction != FRACTION_BITS:
            raise ValueError("an integer network must end in a convolution")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def fixed_point_scale_table(scale_table: np.ndarray) -> np.ndarray:
    """ceil(scale_j * 2**FRACTION_BITS) for every table scale: the integer thresholds that
    `table_indexes` compares fixed-point scales with."""
    return np.ceil(scale_table * 2.0**FRACTION_BITS)


def table_indexes(scale: torch.Tensor, fixed_point_table: np.ndarray) -> torch.Tensor:
    """int64 table index of every fixed-point scale (FRACTION_BITS fractional bits, any sign):
    the first table entry s_j with ceil(s_j * 2**FRACTION_BITS) >= |scale|, exactly what the
    float rule gives on the fixed-point scale."""
    return scale_indexes(scale.abs(), fixed_point_table).to(torch.int64)


StepParameters = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]
"""(mean, index, where) of one coding step (CodingPlan)."""


@dataclass(frozen=True)
class CodingPlan:
    """The order in which a latent's symbols are coded and the integer parameters of each step.

    `parameters(step, y_hat)` gives (mean, index, where) for step 0 .. steps - 1: mean float64
    and index int64, both (1, M, H, W), and `where` a bool (1, M, H, W) tensor of the latents
    that step codes (None: every latent). `y_hat` is float64 (1, M, H, W), the latents the
    earlier steps decoded (round(y - mean) + mean), zero elsewhere; a context model computes the
    later steps' parameters from it. Encoder and decoder walk the same steps, so every step's
    parameters must be computed on the integer path (bit-exact on any device).
    """

    steps: int
    parameters: Callable[[int, torch.Tensor], StepParameters]


class IntegerHyperSynthesis:
    """h_s of a MeanScaleHyperprior, mapping the integer hyper-latent to (mean, table index)."""

    def __init__(self, h_s: nn.Sequential, scale_table: np.ndarray) -> None:
        self.network = IntegerSequential(h_s, in_fraction=0)  # the hyper-latent is integer
        self.layers = self.network.layers
        self.fixed_point_table = fixed_point_scale_table(scale_table)

    def start(self, z: np.ndarray | torch.Tensor, device: torch.device | str) -> CodingPlan:
        """The coding plan of a latent given its integer hyper-latent: one step, every latent."""
        mean, index = self(z, device)
        return CodingPlan(1, lambda step, y_hat: (mean, index, None))

    @torch.inference_mode()
    def __call__(
        self, z: np.ndarray | torch.Tensor, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean as float64, int64 table index), both (1, M, H, W), from integer z, computed
        on `device` (default: where z is)."""
        x = self.network(torch.as_tensor(z).to(device=device, dtype=torch.float64))
        mean_int, scale_int = x.chunk(2, dim=1)
        return mean_int * 2.0**-FRACTION_BITS, table_indexes(scale_int, self.fixed_point_table)
