"""Differentiable MS-SSIM for training (Wang, Simoncelli, Bovik, Asilomar 2003).

Five scales with exponents 0.0448, 0.2856, 0.3001, 0.2363, 0.1333: the contrast-structure term
at scales 1-4 and the full SSIM at scale 5. Each scale filters with an 11-tap Gaussian window
(sigma 1.5, separable, only where the window fits: "valid"), K1 = 0.01, K2 = 0.03. Between
scales each side is halved by the mean of 2x2 blocks; an odd last row/column is averaged with its
own copy, the convention of ctc/metrics/msssim.py's default ("symmetric"), so this agrees with
the evaluation metric on any size (training patches have even sides at every scale anyway).
Computed per channel and averaged over channels ("MS-SSIM RGB").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
MIN_SIDE = 161  # 161 -> 81 -> 41 -> 21 -> 11: the smallest scale still holds one window
CLAMP = 1e-6  # floor of the per-scale terms before the fractional powers


def _gaussian(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The normalised 11-tap window, built in float64 and then cast."""
    t = torch.arange(WINDOW, dtype=torch.float64) - WINDOW // 2
    g = torch.exp(-(t * t) / (2.0 * SIGMA * SIGMA))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _blur_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering of each channel of (B, C, H, W), 'valid' positions only."""
    c = x.shape[1]
    x = F.conv2d(x, g.view(1, 1, 1, WINDOW).expand(c, 1, 1, WINDOW), groups=c)
    return F.conv2d(x, g.view(1, 1, WINDOW, 1).expand(c, 1, WINDOW, 1), groups=c)


def _ssim_terms(
    x: torch.Tensor, y: torch.Tensor, g: torch.Tensor, c1: float, c2: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial means of SSIM and of the contrast-structure term, shape (B, C)."""
    c = x.shape[1]
    stats = _blur_valid(torch.cat([x, y, x * x, y * y, x * y], dim=1), g)
    mx, my, exx, eyy, exy = stats.split(c, dim=1)
    sxx = exx - mx * mx
    syy = eyy - my * my
    sxy = exy - mx * my
    cs = (2.0 * sxy + c2) / (sxx + syy + c2)
    lum = (2.0 * mx * my + c1) / (mx * mx + my * my + c1)
    return (lum * cs).mean(dim=(2, 3)), cs.mean(dim=(2, 3))


def _downsample(x: torch.Tensor) -> torch.Tensor:
    """Mean of 2x2 blocks; an odd side repeats its last row/column (halving rounds up)."""
    h, w = x.shape[2], x.shape[3]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    return F.avg_pool2d(x, 2)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """MS-SSIM of two (B, C, H, W) batches with dynamic range `data_range`, one value per item.

    Computed in float32 (float64 inputs stay float64), with autocast disabled, so it is safe to
    call inside torch.autocast. To keep gradients finite, the mean contrast-structure term
    (scales 1-4) and the mean SSIM (scale 5) are clamped at 1e-6 before their fractional powers
    (the evaluation metric clamps at 0; the two differ only for terms below 1e-6). Both sides
    must be at least 161 pixels.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(
            f"ms_ssim expects two (B, C, H, W) tensors of equal shape, got "
            f"{tuple(x.shape)} and {tuple(y.shape)}"
        )
    h, w = x.shape[2], x.shape[3]
    if min(h, w) < MIN_SIDE:
        raise ValueError(
            f"MS-SSIM with {len(WEIGHTS)} scales needs both sides >= {MIN_SIDE} pixels so that "
            f"the smallest scale holds the {WINDOW}x{WINDOW} window; got {h}x{w}"
        )
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=x.device.type, enabled=False):
        a, b = x.to(dtype), y.to(dtype)
        g = _gaussian(dtype, x.device)
        c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
        score = torch.ones(x.shape[:2], dtype=dtype, device=x.device)
        for level, weight in enumerate(WEIGHTS):
            ssim, cs = _ssim_terms(a, b, g, c1, c2)
            last = level == len(WEIGHTS) - 1
            score = score * (ssim if last else cs).clamp(min=CLAMP) ** weight
            if not last:
                a, b = _downsample(a), _downsample(b)
        return score.mean(dim=1)
