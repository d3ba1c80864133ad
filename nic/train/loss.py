"""Rate-distortion loss L = lambda * D + R_main + R_hyper (Ballé et al., ICLR 2018).

D is the MSE on the 0..255 scale, as in CompressAI's lambda table, so the usual lambdas
(0.0018 ... 0.18) map to roughly 0.1 ... 2 bpp on Kodak. Rates are in bits per pixel.
"""

from __future__ import annotations

import torch

from nic.models import rate_bits


def rd_loss(
    out: dict[str, torch.Tensor], x: torch.Tensor, lambdas: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-batch mean of the loss, with its parts for logging; lambdas holds one per item."""
    pixels = x.shape[2] * x.shape[3]
    bpp_y = rate_bits(out["y_likelihoods"]) / pixels
    bpp_z = rate_bits(out["z_likelihoods"]) / pixels
    mse = ((out["x_hat"] - x) ** 2).flatten(1).mean(1)
    loss = lambdas * (255.0**2) * mse + bpp_y + bpp_z
    return {
        "loss": loss.mean(),
        "bpp": (bpp_y + bpp_z).mean().detach(),
        "mse": mse.mean().detach(),
    }
