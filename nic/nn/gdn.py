"""Generalized divisive normalization.

GDN and its inverse (Ballé, Laparra, Simoncelli, "Density modeling of images using a generalized
normalization transformation", ICLR 2016), with the non-negative reparametrization of the
parameters from Ballé et al., "Variational image compression with a scale hyperprior", ICLR 2018.

Coding runs the transforms under torch.inference_mode, where GDN computes the same values with
less memory traffic: in place, and on one CPU thread in bands of rows that stay in cache
(`GDN.forward`). Training and evaluation with gradients or under no_grad take the plain path.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class _LowerBound(torch.autograd.Function):
    """max(x, bound) whose gradient still pushes x up when it sits below the bound."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        passes = (x >= ctx.bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None


def lower_bound(x: torch.Tensor, bound: float) -> torch.Tensor:
    """Clamp from below without blocking gradients that would lift x above the bound."""
    return _LowerBound.apply(x, bound)


BAND_PIXELS = 2048
"""Pixels per band of rows when GDN runs banded (inference on one CPU thread): with 128
channels a band's float32 squares and norms are 1 MiB each, about a core's L2 cache. Measured on
(1, 128, 256, 384) and (1, 128, 128, 192), torch 2.13, one AVX-512 core: 2048 was fastest of
512 to 16384 (45 ms against 179 ms for the plain computation of the larger); any band gives the
same values."""


class GDN(nn.Module):
    """y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2); the inverse multiplies instead.

    inplace: under torch.inference_mode, write the result over the input (as nn.ReLU(inplace=
    True)), which saves allocating (and page-faulting) a tensor of the input's size; the
    transforms of MeanScaleHyperprior use it, their GDN inputs being their own intermediates.
    """

    def __init__(
        self,
        channels: int,
        inverse: bool = False,
        beta_min: float = 1e-6,
        gamma_init: float = 0.1,
        reparam_offset: float = 2.0**-18,
        inplace: bool = False,
    ) -> None:
        super().__init__()
        self.inverse = inverse
        self.inplace = inplace
        self._pedestal = reparam_offset**2
        self._beta_bound = (beta_min + self._pedestal) ** 0.5
        self._gamma_bound = reparam_offset
        self.beta = nn.Parameter(torch.sqrt(torch.ones(channels) + self._pedestal))
        gamma = gamma_init * torch.eye(channels) + self._pedestal
        self.gamma = nn.Parameter(torch.sqrt(gamma))

    def extra_repr(self) -> str:
        return f"inverse={self.inverse}" + (", inplace=True" if self.inplace else "")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> the same shape, dtype and memory format."""
        channels = x.shape[1]
        beta = lower_bound(self.beta, self._beta_bound) ** 2 - self._pedestal
        gamma = lower_bound(self.gamma, self._gamma_bound) ** 2 - self._pedestal
        gamma = gamma.view(channels, channels, 1, 1)
        if not torch.is_inference_mode_enabled() or torch.is_autocast_enabled(x.device.type):
            norm = F.conv2d(x * x, gamma, beta)
            return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)
        # The same operations on the same operands, so the same values bit for bit: the root
        # taken in place and the product written into `out`. On one CPU thread PyTorch computes
        # a 1x1 convolution with its own kernel, a matrix product whose value at a pixel does
        # not depend on the other pixels of the call, so bands of rows give the whole tensor's
        # values; on several threads (oneDNN, whose work split follows the size) or a GPU it
        # runs whole.
        out = x if self.inplace else torch.empty_like(x)
        height, width = x.shape[2:]
        rows = max(height, 1)
        if x.device.type == "cpu" and torch.get_num_threads() == 1:
            rows = max(1, BAND_PIXELS // max(width, 1))
        for top in range(0, height, rows):
            band = x[:, :, top : top + rows]
            norm = F.conv2d(band * band, gamma, beta)
            root = norm.sqrt_() if self.inverse else norm.rsqrt_()
            torch.mul(band, root, out=out[:, :, top : top + rows])
        return out
