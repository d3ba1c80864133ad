"""FSIM and FSIMc (L. Zhang, L. Zhang, X. Mou, D. Zhang, "FSIM: A Feature Similarity Index for
Image Quality Assessment", IEEE TIP 20(8), 2011), vectorized with numpy/scipy FFTs.

The algorithm is that of the authors' MATLAB FeatureSIM.m:

- luma Y = 0.299 R + 0.587 G + 0.114 B and chroma I = 0.596 R - 0.274 G - 0.322 B,
  Q = 0.211 R - 0.523 G + 0.312 B (YIQ), on RGB samples in 0..255;
- downsampling of Y, I and Q by F = max(1, round(min(H, W) / 256)) with an F x F averaging
  filter, keeping every F-th sample;
- phase congruency of each Y (Kovesi's phasecong2 as FeatureSIM.m carries it): log-Gabor
  filters built in the frequency domain, 4 scales (minimum wavelength 6, factor 2,
  sigmaOnf 0.55) by 4 orientations (dThetaOnSigma 1.2), times Kovesi's Butterworth low-pass
  (cutoff 0.45, order 15); per orientation the noise threshold comes from the median of the
  squared smallest-scale response (Rayleigh model, k = 2, divided by 1.7 for the PC_2 measure),
  epsilon 1e-4;
- Scharr gradient magnitude ([3 10 3] x [1 0 -1] / 16, zero padding);
- S_PC = (2 PC1 PC2 + T1) / (PC1^2 + PC2^2 + T1), S_G likewise with T2, S_I and S_Q with T3, T4
  (T1 = 0.85, T2 = 160, T3 = T4 = 200), PCm = max(PC1, PC2);
  FSIM = sum(S_PC S_G PCm) / sum(PCm), FSIMc = sum(S_PC S_G (S_I S_Q)^0.03 PCm) / sum(PCm).

Two variants. They downsample alike where F = 1, or F = 2 with even sides (Kodak, for one);
there they differ by the framework's 10-bit rescale of the RGB (about 1e-5 on FSIMc), by the
orientation grid of an odd side, and by terms of about 1e-7:

- "jpeg_ai" (default): what the JPEG AI quality framework reports as FSIM (its metrics.py runs
  IQA_pytorch's FSIM, K. Ding et al., github.com/dingkeyan93/IQA-optimization, on the decoded
  RGB): the 8-bit RGB is first scaled to 10 bits and rounded, R10 = round(R * 1023 / 255), and
  the metric sees R10 * 255 / 1023; F is numpy's round (half to even: min side 640 gives F = 2)
  and the downsampling is an F x F block mean that drops an incomplete last block; the
  orientation grid of an odd side is spaced 1/n (not 1/(n-1)); the noise median of an even
  number of samples is the lower middle one (torch.median); 1e-12 is added under the square
  roots of the amplitudes, the gradient magnitude, XEnergy and the noise terms; the chroma
  factor is |S_I S_Q|^0.03. That framework reports only FSIMc.
- "matlab": FeatureSIM.m as published: RGB as given, F rounded half away from zero,
  conv2(..., 'same') with the F x F average (zero padding) then every F-th sample from the
  first (for even F the block is the sample and the next F-1, for odd F it is centred), a true
  median, no 1e-12 terms, and real((S_I S_Q)^0.03) (cos(0.03 pi) |.|^0.03 where S_I S_Q < 0).

The computation is in float64 (the framework's is float32: expect differences of about 1e-6).

Checks made while writing this (against public code and published values, not shipped as tests):
"jpeg_ai" agrees with IQA_pytorch's FSIM, run on the framework's 10-bit RGB, to 1.1e-7 on sizes
512 x 512, 333 x 517, 700 x 900, 770 x 1000 (F = 3), 640 x 650, 97 x 131 and 5 x 7; on the test
pair (tests/ctc/data) it gives FSIMc 0.987601, the framework's value, where the plain 8-bit RGB
gives 0.987591. "matlab" gives FSIMc 0.6890, 0.9702, 0.9927, 0.9575, 0.8220 on the five image
pairs of pyiqa's ResultsCalibra, the FeatureSIM.m values pyiqa publishes (4 decimals).

Degenerate inputs: identical images give (1.0, 1.0) (every similarity term is 1; computed
directly, so also where no phase congruency exists, e.g. two equal flat images); different
images without any phase congruency (sum(PCm) = 0) give nan, as 0/0 in the reference code. The
frequency grid needs 2 samples per side: a side of 1 sample is zero-padded at the bottom/right
to MIN_SIDE = 2 (the framework does not pad for FSIM; it would give nan there).
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import numpy as np
from scipy import fft as sfft
from scipy.ndimage import correlate1d

Variant = Literal["jpeg_ai", "matlab"]
VARIANTS = ("jpeg_ai", "matlab")
MIN_SIDE = 2

NSCALE = 4
NORIENT = 4
MIN_WAVELENGTH = 6.0
MULT = 2.0
SIGMA_ON_F = 0.55
D_THETA_ON_SIGMA = 1.2
K_NOISE = 2.0
EPSILON = 1e-4
T1, T2, T3, T4 = 0.85, 160.0, 200.0, 200.0
LAMBDA = 0.03
_TINY = 1e-12  # the framework's (IQA_pytorch's) guard under square roots

_SMOOTH = np.array([3.0, 10.0, 3.0]) / 16.0
_DIFF = np.array([1.0, 0.0, -1.0])


def _check(reference: np.ndarray, decoded: np.ndarray) -> None:
    for a in (reference, decoded):
        if not isinstance(a, np.ndarray) or a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            shape = getattr(a, "shape", None)
            dtype = getattr(a, "dtype", type(a).__name__)
            raise ValueError(f"FSIM expects uint8 RGB arrays (H, W, 3), got {dtype} {shape}")
    if reference.shape != decoded.shape:
        raise ValueError(f"shape mismatch: reference {reference.shape} vs decoded {decoded.shape}")


def _yiq(rgb: np.ndarray) -> np.ndarray:
    """(3, H, W) planes Y, I, Q of a float (H, W, 3) RGB image."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return np.stack(
        (
            0.299 * r + 0.587 * g + 0.114 * b,
            0.596 * r - 0.274 * g - 0.322 * b,
            0.211 * r - 0.523 * g + 0.312 * b,
        )
    )


def _factor(h: int, w: int, variant: str) -> int:
    x = min(h, w) / 256.0
    f = float(np.round(x)) if variant == "jpeg_ai" else math.floor(x + 0.5)
    return max(1, int(f))


def _downsample_axis(x: np.ndarray, f: int, axis: int, variant: str) -> np.ndarray:
    """Mean over blocks of f samples along axis (see the module docstring for the blocks)."""
    n = x.shape[axis]
    x = np.moveaxis(x, axis, -1)
    if variant == "jpeg_ai":
        m = n // f
        x = x[..., : m * f]
    else:
        m = -(-n // f)
        front = (f - 1) // 2
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(front, max(0, m * f - n - front))])
        x = x[..., : m * f]
    x = x.reshape(*x.shape[:-1], m, f).mean(axis=-1)
    return np.moveaxis(x, -1, axis)


def _downsample(planes: np.ndarray, f: int, variant: str) -> np.ndarray:
    if f == 1:
        return planes
    return _downsample_axis(_downsample_axis(planes, f, -2, variant), f, -1, variant)


def _kovesi_range(n: int) -> np.ndarray:
    """Frequencies normalised to +/-0.5 as Kovesi's code sets them up for odd and even n."""
    if n % 2:
        return (np.arange(n) - (n - 1) / 2.0) / (n - 1)
    return (np.arange(n) - n / 2.0) / n


@functools.lru_cache(maxsize=2)  # 16 planes per entry; Kodak needs 2 shapes
def _filter_bank(rows: int, cols: int, variant: str) -> tuple[np.ndarray, np.ndarray]:
    """The (NORIENT, NSCALE, rows, cols) log-Gabor transfer functions (zero frequency at the
    corner) and, per orientation, the noise-energy factor
    (2 sum_s IF_s^2 + 4 sum_{s<t} IF_s IF_t) / EM_n, IF_s = real(ifft2(filter_s)) sqrt(rows cols),
    EM_n = sum(filter_0^2), whose product with the mean squared noise response is
    EstNoiseEnergy2."""
    yr, xr = _kovesi_range(rows), _kovesi_range(cols)
    radius = np.fft.ifftshift(np.hypot(yr[:, None], xr[None, :]))
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** 30)
    radius[0, 0] = 1.0
    if variant == "jpeg_ai":  # IQA_pytorch's angular grid: (k - floor(n/2)) / n on every side
        yt = (np.arange(rows) - rows // 2) / rows
        xt = (np.arange(cols) - cols // 2) / cols
    else:
        yt, xt = yr, xr
    theta = np.fft.ifftshift(np.arctan2(-yt[:, None], xt[None, :]))
    sin_t, cos_t = np.sin(theta), np.cos(theta)

    wavelengths = MIN_WAVELENGTH * MULT ** np.arange(NSCALE)
    log_r = np.log(radius[None] * wavelengths[:, None, None])
    log_gabor = np.exp(-(log_r**2) / (2.0 * math.log(SIGMA_ON_F) ** 2)) * lowpass
    log_gabor[:, 0, 0] = 0.0

    theta_sigma = math.pi / NORIENT / D_THETA_ON_SIGMA
    angles = np.arange(NORIENT) * math.pi / NORIENT
    ca, sa = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    dtheta = np.abs(np.arctan2(sin_t * ca - cos_t * sa, cos_t * ca + sin_t * sa))
    spread = np.exp(-(dtheta**2) / (2.0 * theta_sigma**2))

    bank = spread[:, None] * log_gabor[None]  # (orient, scale, rows, cols)
    spatial = sfft.ifft2(bank).real * math.sqrt(rows * cols)
    sum_an2 = np.sum(spatial**2, axis=(1, 2, 3))
    total = spatial.sum(axis=1)
    sum_aiaj = 0.5 * (np.sum(total**2, axis=(1, 2)) - sum_an2)
    em_n = np.sum(bank[:, 0] ** 2, axis=(1, 2))
    noise_factor = (2.0 * sum_an2 + 4.0 * sum_aiaj) / em_n
    bank.setflags(write=False)
    noise_factor.setflags(write=False)
    return bank, noise_factor


def _median(x: np.ndarray, variant: str) -> np.ndarray:
    """Median over the last axis: torch.median's lower middle value, or the true median."""
    if variant == "matlab":
        return np.median(x, axis=-1)
    k = (x.shape[-1] - 1) // 2
    return np.partition(x, k, axis=-1)[..., k]


def phase_congruency(images: np.ndarray, variant: Variant = "jpeg_ai") -> np.ndarray:
    """Phase congruency (FeatureSIM.m's phasecong2) of a stack of float images (..., rows, cols)."""
    rows, cols = images.shape[-2:]
    bank, noise_factor = _filter_bank(rows, cols, variant)
    tiny = _TINY if variant == "jpeg_ai" else 0.0
    spectrum = sfft.fft2(images)[..., None, None, :, :]
    eo = sfft.ifft2(spectrum * bank)  # (..., orient, scale, rows, cols)
    e, o = eo.real, eo.imag
    an2 = e * e + o * o + tiny
    an = np.sqrt(an2)
    sum_e, sum_o = e.sum(axis=-3), o.sum(axis=-3)
    x_energy = np.sqrt(sum_e**2 + sum_o**2 + tiny) + EPSILON
    mean_e = (sum_e / x_energy)[..., None, :, :]
    mean_o = (sum_o / x_energy)[..., None, :, :]
    energy = np.sum(e * mean_e + o * mean_o - np.abs(e * mean_o - o * mean_e), axis=-3)

    median_e2n = _median(an2[..., 0, :, :].reshape(*an2.shape[:-3], -1), variant)
    noise_energy2 = median_e2n / -math.log(0.5) * noise_factor
    tau = np.sqrt(noise_energy2 / 2.0 + tiny)
    noise_sigma = np.sqrt((2.0 - math.pi / 2.0) * tau**2 + tiny)
    threshold = (tau * math.sqrt(math.pi / 2.0) + K_NOISE * noise_sigma) / 1.7
    energy = np.maximum(energy - threshold[..., None, None], 0.0)

    energy_all = energy.sum(axis=-3)
    an_all = an.sum(axis=(-4, -3))
    return np.divide(energy_all, an_all, out=np.zeros_like(energy_all), where=an_all > 0)


def _gradient_magnitude(images: np.ndarray, variant: str) -> np.ndarray:
    gx = correlate1d(
        correlate1d(images, _SMOOTH, axis=-2, mode="constant"), _DIFF, axis=-1, mode="constant"
    )
    gy = correlate1d(
        correlate1d(images, _SMOOTH, axis=-1, mode="constant"), _DIFF, axis=-2, mode="constant"
    )
    return np.sqrt(gx * gx + gy * gy + (_TINY if variant == "jpeg_ai" else 0.0))


def _sim(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (2.0 * a * b + t) / (a * a + b * b + t)


def fsim(
    reference_rgb: np.ndarray, decoded_rgb: np.ndarray, *, variant: Variant = "jpeg_ai"
) -> tuple[float, float]:
    """(FSIM, FSIMc) of two uint8 RGB images (H, W, 3); FSIM is on luma only.

    variant "jpeg_ai" (default) is the JPEG AI quality framework's FSIM (its RGB at 10 bits,
    rescaled to 0..255), "matlab" the authors' FeatureSIM.m; see the module docstring.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown FSIM variant {variant!r}; expected one of {VARIANTS}")
    _check(reference_rgb, decoded_rgb)
    if np.array_equal(reference_rgb, decoded_rgb):
        return 1.0, 1.0
    h, w = reference_rgb.shape[:2]
    pad = ((0, max(0, MIN_SIDE - h)), (0, max(0, MIN_SIDE - w)), (0, 0))
    pair = np.stack([np.pad(reference_rgb, pad), np.pad(decoded_rgb, pad)]).astype(np.float64)
    if variant == "jpeg_ai":
        pair = np.round(pair * (1023.0 / 255.0)) * (255.0 / 1023.0)
    h, w = pair.shape[1:3]
    yiq = _downsample(_yiq(pair), _factor(h, w, variant), variant)  # (3, 2, rows, cols)
    y, i, q = yiq

    pc = phase_congruency(y, variant)
    grad = _gradient_magnitude(y, variant)
    pcm = np.maximum(pc[0], pc[1])
    similarity = _sim(pc[0], pc[1], T1) * _sim(grad[0], grad[1], T2) * pcm
    chroma = _sim(i[0], i[1], T3) * _sim(q[0], q[1], T4)
    if variant == "jpeg_ai":
        chroma = (np.abs(chroma) + _TINY) ** LAMBDA
    else:
        chroma = np.real(chroma.astype(np.complex128) ** LAMBDA)
    total = pcm.sum()
    if total == 0.0:
        return math.nan, math.nan
    return float(similarity.sum() / total), float(np.sum(similarity * chroma) / total)
