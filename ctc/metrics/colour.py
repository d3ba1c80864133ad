"""RGB to Y'CbCr conversion for the YUV metrics: matrix, full range, bit depth, 4:2:0 siting.

The equations are those of Rec. ITU-T H.273 (colour matrix coefficients and the full-range
quantization, VideoFullRangeFlag = 1):

    E'Y  = Kr*E'R + (1 - Kr - Kb)*E'G + Kb*E'B           with E'R = R/255 etc.
    E'PB = (E'B - E'Y) / (2*(1 - Kb)),   E'PR = (E'R - E'Y) / (2*(1 - Kr))
    Y    = Round((2^B - 1) * E'Y)
    Cb   = Round((2^B - 1) * E'PB + 2^(B-1)),   Cr likewise,   clipped to [0, 2^B - 1]

Round() is round-half-up, as in H.273's C-like definition (not numpy's round-half-to-even).
Kr/Kb: BT.709 (0.2126, 0.0722) and BT.601 (0.299, 0.114).

4:2:0 chroma is the mean of each 2x2 block (centre siting, as in JPEG/JFIF and MPEG-1), an odd
last row or column being replicated first; the mean is taken on the unrounded chroma values,
then rounded once.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

Matrix = Literal["bt709", "bt601"]
Chroma = Literal["444", "420"]

KR_KB: dict[str, tuple[float, float]] = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)


def _pad_even(plane: np.ndarray) -> np.ndarray:
    h, w = plane.shape
    return np.pad(plane, ((0, h % 2), (0, w % 2)), mode="edge")


def _mean_2x2(plane: np.ndarray) -> np.ndarray:
    p = _pad_even(plane)
    return 0.25 * (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2])


def rgb_to_yuv(
    rgb: np.ndarray, matrix: Matrix = "bt709", bit_depth: int = 8, chroma: Chroma = "444"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-range Y, Cb, Cr planes (uint16) of a uint8 RGB image (H, W, 3), per H.273.

    With chroma="420" the Cb and Cr planes have ceil(H/2) x ceil(W/2) samples.
    """
    if matrix not in KR_KB:
        raise ValueError(f"unknown colour matrix {matrix!r}; expected one of {sorted(KR_KB)}")
    if chroma not in ("444", "420"):
        raise ValueError(f"unknown chroma format {chroma!r}; expected '444' or '420'")
    if not 8 <= bit_depth <= 16:
        raise ValueError(f"bit depth {bit_depth} outside 8..16")
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    kr, kb = KR_KB[matrix]
    e = rgb.astype(np.float64) / 255.0
    ey = kr * e[..., 0] + (1.0 - kr - kb) * e[..., 1] + kb * e[..., 2]
    epb = (e[..., 2] - ey) / (2.0 * (1.0 - kb))
    epr = (e[..., 0] - ey) / (2.0 * (1.0 - kr))
    if chroma == "420":
        epb, epr = _mean_2x2(epb), _mean_2x2(epr)
    peak = float((1 << bit_depth) - 1)
    offset = float(1 << (bit_depth - 1))
    planes = (peak * ey, peak * epb + offset, peak * epr + offset)
    return tuple(np.clip(_round_half_up(p), 0, peak).astype(np.uint16) for p in planes)
