"""NLPD, the normalized Laplacian pyramid distance (V. Laparra, J. Ballé, A. Berardino,
E. P. Simoncelli, "Perceptual image quality assessment using a normalized Laplacian pyramid",
IS&T Human Vision and Electronic Imaging 2016), on one grey plane; lower is better, 0 for
identical planes.

Each image x (samples divided by peak, so in [0, 1]) is decomposed into a Laplacian pyramid
(P. Burt, E. Adelson 1983, 5-tap binomial-like filter f = [0.05 0.25 0.4 0.25 0.05], 2-D f'f);
each band b_k is divisively normalized, z_k = b_k / (sigma_k + P_k * |b_k|), with the authors'
constants (sigma = 0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782 and small neighbourhood
filters P_k, "learned using the McGill dataset" per the authors' code); the distance is the
mean over the bands of the RMS difference, mean_k sqrt(mean((z_k - z'_k)^2)).

Two variants, which differ in the pyramid, the padding and the normalization filters:

- "jpeg_ai" (default): the JPEG AI quality framework's NLPD (its metrics.py runs IQA_pytorch's
  NLPD, K. Ding et al., github.com/dingkeyan93/IQA-optimization, itself after A. Hepburn's
  nlpd-tensorflow, with channels=1): six band-pass levels and no low-pass band; each level
  filters with reflection padding ("mirror": the edge sample not repeated) and keeps every
  second sample, upsamples the result by 2 bilinearly (align_corners=True), filters it again
  with reflection padding, keeps its first H x W samples (its nearest-neighbour resize to an
  odd side), and subtracts; the normalization filters are the 3 x 3 ones of IQA_pytorch
  (correlation, reflection padding; level 1 without the MATLAB filter's fifth tap 0.0072).
  The framework computes it on its 10-bit BT.709 full-range luma: each 8-bit RGB sample is
  scaled to 10 bits and rounded, round(x * 1023 / 255), then Y = round(0.2126 R + 0.7152 G +
  0.0722 B) (ctc.metrics.jpegai_luma), with peak 1023; planes with a side shorter than
  MIN_SIDE = 128 are zero-padded at the bottom/right to 128 (as the framework pads).
- "matlab": the authors' MATLAB NLP_dist.m (www.cns.nyu.edu/~lcv/NLPyr/, laplacian_pyramid_s
  after T. Mertens): five band-pass levels plus the low-pass residual (6 bands); the downsampling
  filters with symmetric padding (MATLAB imfilter 'symmetric': edge sample repeated) and keeps
  every second sample from the first; the upsampling pads the low-pass image by one replicated
  sample, inserts zeros, multiplies by 4, filters with zero padding and crops; the
  normalization is conv2(|b_k|, F2_k, 'same') (a true convolution, zero padding) with the
  authors' 5 x 5 F2_k. No minimum size: any side of 1 sample or more works as in MATLAB.

The computation is in float64 (the framework's is float32: expect differences of about 1e-6).

Checks made while writing this (against public code and published values, not shipped as tests):
"jpeg_ai" agrees with IQA_pytorch's NLPD (float32) to 2.4e-6 on sizes from 5 x 7 (padded) to
700 x 901, and gives 0.123260, the framework's value, on the test pair (tests/ctc/data).
"matlab" gives 0.561610096893874, 0.019534798560102, 0.015915631543598, 0.302802106557736 and
0.432604962261603 (to 4e-16) on the five image pairs of pyiqa's ResultsCalibra, the NLP_dist.m
outputs pyiqa publishes for them (its inputs: MATLAB rgb2gray, uint8, divided by 255).
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np
from scipy.ndimage import convolve, correlate, correlate1d

Variant = Literal["jpeg_ai", "matlab"]
VARIANTS = ("jpeg_ai", "matlab")
MIN_SIDE = 128  # the JPEG AI framework's zero-padding target (jpeg_ai variant)
LEVELS = 6

_F = np.array([0.05, 0.25, 0.4, 0.25, 0.05])
SIGMAS = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)

# IQA_pytorch's normalization filters, applied by correlation: rows are (up, left, right, down)
# neighbour weights of [[0, up, 0], [left, 0, right], [0, down, 0]].
_JPEG_AI_NEIGHBOURS = (
    (0.1011, 0.1493, 0.1460, 0.1015),
    (0.0757, 0.1986, 0.1846, 0.0837),
    (0.0477, 0.2138, 0.2243, 0.0467),
    (0.0, 0.2503, 0.2616, 0.0),
    (0.0, 0.2598, 0.2552, 0.0),
    (0.0, 0.2215, 0.0717, 0.0),
)


def _jpeg_ai_filter(k: int) -> np.ndarray:
    up, left, right, down = _JPEG_AI_NEIGHBOURS[k]
    return np.array([[0.0, up, 0.0], [left, 0.0, right], [0.0, down, 0.0]])


def _matlab_filter(k: int) -> np.ndarray:
    """NLP_dist.m's DN_filts(k).F2 (5 x 5, used with conv2): the 3 x 3 neighbourhoods above,
    plus a fifth tap 0.0072 at row 3, column 5 of the first level's filter."""
    f = np.zeros((5, 5))
    f[1:4, 1:4] = _jpeg_ai_filter(k)
    if k == 0:
        f[2, 4] = 0.0072
    return f


_DN_JPEG_AI = tuple(_jpeg_ai_filter(k) for k in range(LEVELS))
_DN_MATLAB = tuple(_matlab_filter(k) for k in range(LEVELS))


def _check(reference_y: np.ndarray, decoded_y: np.ndarray, peak: float, variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown NLPD variant {variant!r}; expected one of {VARIANTS}")
    for a in (reference_y, decoded_y):
        if not isinstance(a, np.ndarray) or a.ndim != 2 or a.size == 0 or a.dtype.kind not in "uif":
            shape = getattr(a, "shape", None)
            dtype = getattr(a, "dtype", type(a).__name__)
            raise ValueError(f"NLPD expects non-empty 2-D numeric planes, got {dtype} {shape}")
    if reference_y.shape != decoded_y.shape:
        raise ValueError(
            f"shape mismatch: reference {reference_y.shape} vs decoded {decoded_y.shape}"
        )
    if not peak > 0:
        raise ValueError(f"peak must be positive, got {peak}")


def _blur(x: np.ndarray, mode: str) -> np.ndarray:
    """Separable 5 x 5 filtering f'f of the last two axes."""
    return correlate1d(correlate1d(x, _F, axis=-2, mode=mode), _F, axis=-1, mode=mode)


@functools.lru_cache(maxsize=64)
def _bilinear_taps(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear upsampling of n samples by 2 with aligned corners (PyTorch
    align_corners=True): output i is (1 - t) x[i0] + t x[i1] at position i (n - 1) / (2n - 1)."""
    src = np.arange(2 * n) * ((n - 1) / (2 * n - 1))
    i0 = np.minimum(np.floor(src).astype(np.intp), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    t = src - i0
    for a in (i0, i1, t):
        a.setflags(write=False)
    return i0, i1, t


def _upsample_bilinear(x: np.ndarray) -> np.ndarray:
    i0, i1, t = _bilinear_taps(x.shape[-2])
    x = x[..., i0, :] * (1.0 - t)[:, None] + x[..., i1, :] * t[:, None]
    i0, i1, t = _bilinear_taps(x.shape[-1])
    return x[..., i0] * (1.0 - t) + x[..., i1] * t


def _bands_jpeg_ai(x: np.ndarray) -> list[np.ndarray]:
    bands = []
    j = x
    for k in range(LEVELS):
        h, w = j.shape[-2:]
        low = _blur(j, "mirror")[..., ::2, ::2]
        up = _upsample_bilinear(low)
        band = j - _blur(up, "mirror")[..., :h, :w]
        norm = correlate(np.abs(band), _DN_JPEG_AI[k][None], mode="mirror")
        bands.append(band / (SIGMAS[k] + norm))
        j = low
    return bands


def _upsample_matlab(low: np.ndarray, odd: tuple[int, int]) -> np.ndarray:
    """laplacian_pyramid_s's upsample: replicate-pad by 1, zero-insert times 4, filter with zero
    padding, drop the border (and one more sample at the end of an odd side)."""
    p = np.pad(low, [(0, 0)] * (low.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    r, c = 2 * p.shape[-2], 2 * p.shape[-1]
    z = np.zeros(p.shape[:-2] + (r, c))
    z[..., ::2, ::2] = 4.0 * p
    z = _blur(z, "constant")
    return z[..., 2 : r - 2 - odd[0], 2 : c - 2 - odd[1]]


def _bands_matlab(x: np.ndarray) -> list[np.ndarray]:
    pyramid = []
    j = x
    for _ in range(LEVELS - 1):
        low = _blur(j, "reflect")[..., ::2, ::2]
        odd = (2 * low.shape[-2] - j.shape[-2], 2 * low.shape[-1] - j.shape[-1])
        pyramid.append(j - _upsample_matlab(low, odd))
        j = low
    pyramid.append(j)
    return [
        b / (SIGMAS[k] + convolve(np.abs(b), _DN_MATLAB[k][None], mode="constant"))
        for k, b in enumerate(pyramid)
    ]


def nlpd(
    reference_y: np.ndarray,
    decoded_y: np.ndarray,
    peak: float = 1023.0,
    variant: Variant = "jpeg_ai",
) -> float:
    """NLPD between two grey planes (H, W) with samples in [0, peak]; see the module docstring.

    The defaults are the JPEG AI framework's: its 10-bit luma (ctc.metrics.jpegai_luma), peak
    1023, variant "jpeg_ai".
    """
    _check(reference_y, decoded_y, peak, variant)
    x = np.stack([reference_y, decoded_y]).astype(np.float64) / float(peak)
    if variant == "jpeg_ai":
        h, w = x.shape[-2:]
        x = np.pad(x, ((0, 0), (0, max(0, MIN_SIDE - h)), (0, max(0, MIN_SIDE - w))))
        bands = _bands_jpeg_ai(x)
    else:
        bands = _bands_matlab(x)
    return float(np.mean([np.sqrt(np.mean((b[0] - b[1]) ** 2)) for b in bands]))
