"""Rate-distortion loss L = lambda * D + R_main + R_hyper (Ballé et al., ICLR 2018).

Rates are in bits per pixel. Two distortions D:

- "mse" (default): the MSE on the 0..255 scale, as in CompressAI's lambda table, so the usual
  lambdas (0.0018 ... 0.18) map to roughly 0.1 ... 2 bpp on Kodak.
- "ms-ssim": 1 - MS-SSIM (RGB, data range 1; nic/train/msssim.py). Its lambda scale differs
  from MSE's: CompressAI's MS-SSIM lambdas for roughly the same rates are 2.4 ... 220
  (2.40, 4.58, 8.73, 16.64, 31.73, 60.50, 115.37, 220.00). Patches need sides >= 161.
"""

from __future__ import annotations

import torch

from nic.models import rate_bits
from nic.train.msssim import ms_ssim

DISTORTIONS = ("mse", "ms-ssim")


def rd_loss(
    out: dict[str, torch.Tensor],
    x: torch.Tensor,
    lambdas: torch.Tensor,
    distortion: str = "mse",
) -> dict[str, torch.Tensor]:
    """Per-batch mean of the loss, with its parts for logging; lambdas holds one per item.

    Always returns loss, bpp and mse (0..1 scale, for the PSNR log); with "ms-ssim" also ms_ssim.
    """
    if distortion not in DISTORTIONS:
        raise ValueError(f"unknown distortion {distortion!r}; expected 'mse' or 'ms-ssim'")
    pixels = x.shape[2] * x.shape[3]
    bpp_y = rate_bits(out["y_likelihoods"]) / pixels
    bpp_z = rate_bits(out["z_likelihoods"]) / pixels
    mse = ((out["x_hat"] - x) ** 2).flatten(1).mean(1)
    parts: dict[str, torch.Tensor] = {}
    if distortion == "mse":
        loss = lambdas * (255.0**2) * mse + bpp_y + bpp_z
    else:
        quality = ms_ssim(out["x_hat"], x, data_range=1.0)
        loss = lambdas * (1.0 - quality) + bpp_y + bpp_z
        parts["ms_ssim"] = quality.mean().detach()
    return {
        "loss": loss.mean(),
        "bpp": (bpp_y + bpp_z).mean().detach(),
        "mse": mse.mean().detach(),
        **parts,
    }
