"""PSNR on RGB and on Y'CbCr planes, and the 6:1:1 weighted YUV PSNR.

PSNR = 10*log10(peak^2 / MSE) with peak 255 for 8-bit RGB and 2^B - 1 for YUV planes at
bit depth B. Identical inputs give +inf. YUV PSNR = (6*PSNR_Y + PSNR_U + PSNR_V) / 8, the
weighting of J.-R. Ohm et al., "Comparison of the coding efficiency of video coding standards",
IEEE TCSVT 22(12), 2012, used since by JVET and by learned-image-coding reports.
"""

from __future__ import annotations

import math

import numpy as np

from ctc.metrics.colour import Chroma, Matrix, rgb_to_yuv


def sse(a: np.ndarray, b: np.ndarray) -> int:
    """Sum of squared differences, exact (integer arithmetic)."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    d = a.astype(np.int64) - b.astype(np.int64)
    return int(np.sum(d * d))


def psnr_from_mse(mse: float, peak: float) -> float:
    """PSNR in dB from a mean squared error; +inf when the error is zero."""
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """PSNR in dB between two integer arrays of equal shape."""
    return psnr_from_mse(sse(a, b) / a.size, peak)


def psnr_rgb(original: np.ndarray, decoded: np.ndarray) -> float:
    """PSNR over all three 8-bit RGB channels together (one MSE), peak 255."""
    return psnr(original, decoded, 255.0)


def psnr_yuv(
    original: np.ndarray,
    decoded: np.ndarray,
    matrix: Matrix,
    bit_depth: int,
    chroma: Chroma,
) -> dict[str, float]:
    """psnr_y, psnr_u, psnr_v and psnr_yuv (6:1:1) after converting both RGB images to YUV."""
    peak = float((1 << bit_depth) - 1)
    ref = rgb_to_yuv(original, matrix, bit_depth, chroma)
    dec = rgb_to_yuv(decoded, matrix, bit_depth, chroma)
    y, u, v = (psnr(r, d, peak) for r, d in zip(ref, dec, strict=True))
    return {"psnr_y": y, "psnr_u": u, "psnr_v": v, "psnr_yuv": (6.0 * y + u + v) / 8.0}
