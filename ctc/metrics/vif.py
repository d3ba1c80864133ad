"""VIF-P: Visual Information Fidelity in the pixel domain.

H. R. Sheikh, A. C. Bovik, "Image information and visual quality", IEEE Trans. Image Processing
15(2), 430-444, 2006. The pixel-domain variant is the one of the LIVE reference MATLAB code
(vifvec release, vifp_mscale.m), which this module follows step by step:

- four scales s = 1..4, each with a Gaussian window of N = 2^(4 - s + 1) + 1 taps (17, 9, 5,
  3) and sigma N / 5, normalized to sum 1 (MATLAB's fspecial('gaussian', N, N/5));
- from scale 2 on, both images are first filtered with that scale's window ("valid") and
  subsampled by 2 (rows and columns 1, 3, 5, ...);
- at each scale, local means, variances and covariance under the window ("valid"); negative
  variances set to 0; gain g = sigma_rd / (sigma_r^2 + eps) and distortion variance
  sv^2 = sigma_d^2 - g * sigma_rd, with the reference code's eps = 1e-10 cases: where
  sigma_r^2 < eps, g = 0, sv^2 = sigma_d^2 and sigma_r^2 = 0; where sigma_d^2 < eps, g = 0 and
  sv^2 = 0; where g < 0, sv^2 = sigma_d^2 and g = 0; finally sv^2 = max(sv^2, eps);
- VIF = sum over scales and positions of log10(1 + g^2 sigma_r^2 / (sv^2 + sigma_n^2)) divided
  by the sum of log10(1 + sigma_r^2 / sigma_n^2), with the HVS noise variance sigma_n^2 = 2.

The noise variance 2 is meant for 8-bit samples, so the planes are scaled by 255 / peak first
(as piq's vif_p does with its data_range); at peak 255 the values are those of the MATLAB code.
The metric is not symmetric: the first argument is the reference.

JPEG AI conventions (ctc.metrics.jpegai_luma): computed on the 10-bit BT.709 luma, peak 1023;
a plane smaller than MIN_SIDE = 64 samples on a side (the four scales need 41) is first
zero-padded at its bottom/right to MIN_SIDE, identically for both planes.

Reference value: the JPEG AI framework gives 0.599064 for scikit-image's astronaut against its
Pillow JPEG quality-30 decode (tests/ctc/data/astronaut-jpeg-q30.png); this float64 code gives
0.599083. The 1.8e-5 difference is float32 rounding in the framework (piq's vif_p on float32
tensors): the variances are differences of large, nearly equal local moments, and the same
steps in float32 (PyTorch) give 0.599064. Everything here is float64.

The filters are the separable 1-D factors of the Gaussian windows (equal to the 2-D windows up
to rounding, since no tap falls under fspecial's eps cut-off).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d

SIGMA_NSQ = 2.0
EPS = 1e-10
SCALES = 4
MIN_SIDE = 64


def _window(n: int) -> np.ndarray:
    """1-D factor of fspecial('gaussian', n, n / 5)."""
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    sigma = n / 5.0
    g = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """filter2(w' * w, x, 'valid') for a separable, symmetric window."""
    r = len(w) // 2
    y = correlate1d(x, w, axis=0, mode="constant")[r : x.shape[0] - r]
    return correlate1d(y, w, axis=1, mode="constant")[:, r : x.shape[1] - r]


def pad_to(plane: np.ndarray, side: int) -> np.ndarray:
    """Zero-pad a 2-D plane at its bottom/right so that each side is at least `side`."""
    h, w = plane.shape
    return np.pad(plane, ((0, max(0, side - h)), (0, max(0, side - w))))


def check_planes(reference: np.ndarray, decoded: np.ndarray) -> None:
    """Raise ValueError unless both are 2-D planes of one shape."""
    ref, dec = np.shape(reference), np.shape(decoded)
    if len(ref) != 2 or ref != dec:
        raise ValueError(f"expected two 2-D luma planes of one shape, got {ref} and {dec}")


def _scale_terms(r: np.ndarray, d: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """(numerator, denominator) contributions of one scale."""
    mu_r, mu_d = _filter_valid(r, w), _filter_valid(d, w)
    var_r = np.maximum(_filter_valid(r * r, w) - mu_r * mu_r, 0.0)
    var_d = np.maximum(_filter_valid(d * d, w) - mu_d * mu_d, 0.0)
    cov = _filter_valid(r * d, w) - mu_r * mu_d

    g = cov / (var_r + EPS)
    sv = var_d - g * cov
    flat_r = var_r < EPS
    g[flat_r] = 0.0
    sv[flat_r] = var_d[flat_r]
    var_r[flat_r] = 0.0
    flat_d = var_d < EPS
    g[flat_d] = 0.0
    sv[flat_d] = 0.0
    negative = g < 0
    sv[negative] = var_d[negative]
    g[negative] = 0.0
    sv = np.maximum(sv, EPS)

    num = np.sum(np.log10(1.0 + g * g * var_r / (sv + SIGMA_NSQ)))
    den = np.sum(np.log10(1.0 + var_r / SIGMA_NSQ))
    return float(num), float(den)


def vif_p(reference: np.ndarray, decoded: np.ndarray, peak: float = 1023.0) -> float:
    """Pixel-domain VIF of `decoded` against `reference`, two 2-D planes of dynamic range `peak`.

    Any numeric dtype; planes with a side under MIN_SIDE are zero-padded (bottom/right) to it.
    1 for identical planes (to 1e-9: the eps terms), near 0 for unrelated ones, above 1 for a
    contrast-enhanced decode. A flat reference (no information, 0/0) gives 1 when the decode
    is identical to it, else NaN.
    """
    check_planes(reference, decoded)
    scale = 255.0 / float(peak)
    r = pad_to(np.asarray(reference, dtype=np.float64) * scale, MIN_SIDE)
    d = pad_to(np.asarray(decoded, dtype=np.float64) * scale, MIN_SIDE)
    num = den = 0.0
    for s in range(1, SCALES + 1):
        w = _window(2 ** (SCALES - s + 1) + 1)
        if s > 1:
            r = _filter_valid(r, w)[::2, ::2]
            d = _filter_valid(d, w)[::2, ::2]
        n, k = _scale_terms(r, d, w)
        num += n
        den += k
    if den == 0.0:  # flat reference: 0/0 in the reference code
        return 1.0 if np.array_equal(r, d) else float("nan")
    return num / den
