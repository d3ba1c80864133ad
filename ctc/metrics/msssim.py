"""MS-SSIM (Wang, Simoncelli, Bovik, "Multiscale structural similarity for image quality
assessment", Asilomar 2003), as in the authors' reference MATLAB code (msssim.m):

- 11x11 Gaussian window, sigma 1.5, applied only where it fits ("valid" filtering);
- K1 = 0.01, K2 = 0.03, dynamic range L (255 for 8-bit samples, 2^B - 1 at bit depth B);
- five scales with weights 0.0448, 0.2856, 0.3001, 0.2363, 0.1333: the contrast-structure
  term at scales 1-4 and the full SSIM at scale 5;
- between scales, the mean of each 2x2 block, halving each side rounding up.

Implementations disagree on odd sides at that downsampling, so it is a parameter:
- "symmetric" (default): the reference code's imfilter(..., 'symmetric') with a 2x2 box and
  1:2:end subsampling, i.e. blocks start at the first row/column and an odd last row/column is
  averaged with its own copy;
- "zero_pad": pytorch-msssim's avg_pool2d(kernel 2, padding = side % 2), i.e. an odd side gets
  one zero row/column on each end, blocks start at the zero one, and zeros count in the mean
  (what CompressAI-based results report). Both agree wherever every scale has even sides
  (sides divisible by 16, e.g. Kodak's 768 x 512).

Each scale's mean term is clamped at 0 before the fractional power (a negative base has no real
power; pytorch-msssim clamps the same way). A multi-channel image's MS-SSIM is the mean over its
channels (as pytorch-msssim and CompressAI report "MS-SSIM RGB").

Small images. Five scales need at least MIN_SIDE = 161 samples per side (161 -> 81 -> 41 -> 21
-> 11, the window size). A side shorter than that is first extended to MIN_SIDE by mirror
padding at its bottom or right end (numpy "symmetric": the edge sample repeated, then the
image reflected), identically for both images; the score is then computed as usual.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import correlate1d

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
MIN_SIDE = 161


def _gaussian() -> np.ndarray:
    x = np.arange(WINDOW, dtype=np.float64) - WINDOW // 2
    g = np.exp(-(x * x) / (2.0 * SIGMA * SIGMA))
    return g / g.sum()


_GAUSS = _gaussian()


def _blur_valid(x: np.ndarray) -> np.ndarray:
    """Separable Gaussian filtering, keeping only positions where the window fits."""
    r = WINDOW // 2
    y = correlate1d(x, _GAUSS, axis=0, mode="constant")[r:-r]
    return correlate1d(y, _GAUSS, axis=1, mode="constant")[:, r:-r]


def _ssim_terms(x: np.ndarray, y: np.ndarray, peak: float) -> tuple[float, float]:
    """Mean SSIM and mean contrast-structure term of two float planes."""
    c1 = (K1 * peak) ** 2
    c2 = (K2 * peak) ** 2
    mx, my = _blur_valid(x), _blur_valid(y)
    sxx = _blur_valid(x * x) - mx * mx
    syy = _blur_valid(y * y) - my * my
    sxy = _blur_valid(x * y) - mx * my
    cs = (2.0 * sxy + c2) / (sxx + syy + c2)
    lum = (2.0 * mx * my + c1) / (mx * mx + my * my + c1)
    return float(np.mean(lum * cs)), float(np.mean(cs))


DOWNSAMPLING = ("symmetric", "zero_pad")


def _downsample(x: np.ndarray, mode: str) -> np.ndarray:
    h, w = x.shape
    if mode == "symmetric":
        p = np.pad(x, ((0, h % 2), (0, w % 2)), mode="edge")
    elif mode == "zero_pad":
        p = np.pad(x, ((h % 2, h % 2), (w % 2, w % 2)))
        p = p[: p.shape[0] // 2 * 2, : p.shape[1] // 2 * 2]
    else:
        raise ValueError(f"unknown MS-SSIM downsampling {mode!r}; expected one of {DOWNSAMPLING}")
    return 0.25 * (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2])


def pad_to_min_side(plane: np.ndarray) -> np.ndarray:
    """Mirror-pad a 2-D plane at its bottom/right so that both sides reach MIN_SIDE."""
    h, w = plane.shape
    return np.pad(plane, ((0, max(0, MIN_SIDE - h)), (0, max(0, MIN_SIDE - w))), mode="symmetric")


def ms_ssim_plane(
    x: np.ndarray, y: np.ndarray, peak: float, downsample: str = "symmetric"
) -> float:
    """MS-SSIM of two 2-D planes with dynamic range `peak`, small planes padded as documented."""
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"expected two equal 2-D planes, got {x.shape} and {y.shape}")
    a = pad_to_min_side(x.astype(np.float64))
    b = pad_to_min_side(y.astype(np.float64))
    score = 1.0
    for level, weight in enumerate(WEIGHTS):
        ssim, cs = _ssim_terms(a, b, peak)
        last = level == len(WEIGHTS) - 1
        score *= max(ssim if last else cs, 0.0) ** weight
        if not last:
            a, b = _downsample(a, downsample), _downsample(b, downsample)
    return score


def ms_ssim(
    x: np.ndarray, y: np.ndarray, peak: float = 255.0, downsample: str = "symmetric"
) -> float:
    """MS-SSIM of two images (H, W) or (H, W, C): the mean over channels."""
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {x.shape} vs {y.shape}")
    if x.ndim == 2:
        return ms_ssim_plane(x, y, peak, downsample)
    planes = [ms_ssim_plane(x[..., c], y[..., c], peak, downsample) for c in range(x.shape[2])]
    return float(np.mean(planes))


def to_db(value: float) -> float:
    """MS-SSIM in dB, -10*log10(1 - value), as CompressAI and the JPEG AI reports plot it."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)
