"""Hyper-synthesis in integer arithmetic, so that entropy decoding is bit-exact on any device.

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


def _floor_shift(x: torch.Tensor, shift: int) -> torch.Tensor:
    """floor(x / 2**shift) for integer-valued float64 x (exact: power-of-two scaling)."""
    return torch.floor(x * 2.0**-shift) if shift > 0 else x * 2.0**-shift


def _round_shift(x: torch.Tensor, shift: int) -> torch.Tensor:
    """x / 2**shift rounded half up, for integer-valued float64 x."""
    return _floor_shift(x + 2.0 ** (shift - 1), shift) if shift > 0 else x * 2.0**-shift


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
        w_int, b_int = self.integer_weights("cpu")
        fan_in = w_int[0].numel() if not self.transposed else w_int[:, 0].numel()
        self.max_product_sum = fan_in * float(w_int.abs().max())
        self.max_bias = float(b_int.abs().max())

    def _parameters(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        return (
            self.layer.weight.detach().to(device, torch.float64),
            self.layer.bias.detach().to(device, torch.float64),
        )

    def integer_weights(self, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights rounded to WEIGHT_BITS and the bias at the accumulator's scale."""
        w, b = self._parameters(device)
        return torch.round(w * 2.0**self.weight_shift), torch.round(b * 2.0**self.bias_shift)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.abs().max()) * self.max_product_sum + self.max_bias >= EXACT_LIMIT:
            raise IntegerOverflowError("integer hyper-synthesis: activation too large")
        w, b = self.integer_weights(x.device)
        # cuDNN may pick FFT or Winograd algorithms, which round; the native kernels do not.
        with torch.backends.cudnn.flags(enabled=False):
            if self.transposed:
                acc = F.conv_transpose2d(x, w, b, self.stride, self.padding, self.output_padding)
            else:
                acc = F.conv2d(x, w, b, self.stride, self.padding)
        return _round_shift(acc, self.out_shift)


def _leaky_relu(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, x, _floor_shift(x * LEAKY_NUMERATOR, LEAKY_SHIFT))


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
        self.layers: list = []
        fraction = 0  # the hyper-latent is integer
        for layer in h_s:
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                self.layers.append(_IntegerConv(layer, fraction))
                fraction = FRACTION_BITS
            elif isinstance(layer, nn.LeakyReLU):
                if layer.negative_slope != 0.01:
                    raise ValueError("integer leaky ReLU supports the 0.01 slope only")
                self.layers.append(_leaky_relu)
            else:
                raise ValueError(f"no integer version of {type(layer).__name__}")
        # Latent i uses table j = the first scale >= |s_i|: compare the integer |s| with
        # ceil(scale_j * 2**FRACTION_BITS), exactly what the float rule gives on the fixed-point s.
        self.fixed_point_table = np.ceil(scale_table * 2.0**FRACTION_BITS)

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
        x = torch.as_tensor(z).to(device=device, dtype=torch.float64)
        for layer in self.layers:
            x = layer(x)
        mean_int, scale_int = x.chunk(2, dim=1)
        index = scale_indexes(scale_int.abs(), self.fixed_point_table)
        return mean_int * 2.0**-FRACTION_BITS, index.to(torch.int64)
