"""IW-SSIM: information content weighted multi-scale SSIM.

Z. Wang, Q. Li, "Information content weighting for perceptual image quality assessment", IEEE
Trans. Image Processing 20(5), 1185-1198, 2011. Computed as the authors' reference MATLAB code
(iwssim.m with scale_quality_maps.m, info_content_weight_map.m, imenlarge2.m, and Simoncelli's
matlabPyrTools for the pyramid), with its defaults:

- Laplacian pyramid of Nsc = 5 scales (buildLpyr): filter binom5 = sqrt(2) * [1 4 6 4 1] / 16
  in each direction, 'reflect1' edges (mirror about the edge sample), reduction by filtering
  and keeping rows/columns 1, 3, 5, ...; expansion by zero insertion and the same filter; the
  band-pass bands 1-4 are image - expand(reduce(image)), band 5 is the low-pass residual;
- per band, SSIM maps with an 11x11 Gaussian window of sigma 1.5 ("valid"), negative variances
  set to 0, C1 = (K1 L)^2, C2 = (K2 L)^2 with K = [0.01 0.03] and L = 255: the contrast-structure
  map at scales 1-4, contrast-structure times luminance at scale 5;
- information content weights at scales 1-4 (iw_flag): a Gaussian scale mixture model of the
  reference band over 3x3 neighbourhoods plus, at scales 1-3, the parent (band s + 1 of the
  reference enlarged by imenlarge2: bilinear resize to 4M-3 x 4N-3, linear extrapolation of
  one more sample at each end, every second sample kept). With 3x3 local statistics
  ("same", zero-padded) of both bands, gain g = cov / (var_r + tol), distortion variance
  vv = var_d - g cov (the tol = 1e-15 cases of the reference code), the neighbourhood
  covariance C_u (eigenvalues clipped at 0 and rescaled to keep their sum), s = y' C_u^-1 y / N
  per neighbourhood vector y, the weight is
      w = sum over eigenvalues l_j of log2(1 + ((vv + (1 + g^2) sigma_nsq) s l_j
                                             + sigma_nsq vv) / sigma_nsq^2),   sigma_nsq = 0.4,
  set to 0 below tol, and cropped to the SSIM map's support;
- per scale the weighted mean of the map (plain mean at scale 5), and
  IW-SSIM = prod over scales of mean_s ^ weight_s with weights (0.0448, 0.2856, 0.3001,
  0.2363, 0.1333) / their sum.

The constants L = 255 and sigma_nsq = 0.4 are meant for 8-bit samples, so the planes are scaled
by 255 / peak first (as piq's information_weighted_ssim does with its data_range); at peak 255
the values are those of the MATLAB code.

JPEG AI conventions (ctc.metrics.jpegai_luma): computed on the 10-bit BT.709 luma, peak 1023;
a plane smaller than MIN_SIDE = 256 samples on a side (the reference code refuses sides under
11 * 2^4 = 176) is first zero-padded at its bottom/right to MIN_SIDE, identically for both.

Reference value: the JPEG AI framework gives 0.986858 for scikit-image's astronaut against its
Pillow JPEG quality-30 decode (tests/ctc/data/astronaut-jpeg-q30.png); this code gives
0.986860. Every map (pyramid, SSIM maps, weights) agrees with the framework's implementation
(the Python-IW-SSIM port of X. Guo, on pyrtools) to 1e-8; the whole difference is the final
product: iwssim.m divides the scale weights by their sum (1.0001), the port does not, so its
score is this one to the power 1.0001 (0.9868597^1.0001 = 0.9868584). This module follows
iwssim.m. A negative weighted mean (possible for anti-correlated content) is taken in absolute
value before its power, as the port does (iwssim.m would return a complex number).

Degenerate inputs, where the reference code divides 0 by 0: a scale whose weights are all 0
(e.g. a flat reference band) falls back to the plain mean of its map, and a singular
neighbourhood covariance is inverted as a pseudo-inverse.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.ndimage import correlate1d

from ctc.metrics.vif import check_planes, pad_to

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
SCALES = len(WEIGHTS)
K1, K2 = 0.01, 0.03
L = 255.0
WINDOW, WINDOW_SIGMA = 11, 1.5
SIGMA_NSQ = 0.4
BLOCK = 3
TOL = 1e-15
MIN_SIDE = 256
ROWS_PER_CHUNK = 256

_BINOM5 = np.sqrt(2.0) * np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _gaussian() -> np.ndarray:
    x = np.arange(WINDOW, dtype=np.float64) - WINDOW // 2
    g = np.exp(-(x * x) / (2.0 * WINDOW_SIGMA * WINDOW_SIGMA))
    return g / g.sum()


_GAUSS = _gaussian()
_BOX = np.full(BLOCK, 1.0 / BLOCK)


# -- Laplacian pyramid (matlabPyrTools buildLpyr, binom5, reflect1) ---------------------------


def _reduce(x: np.ndarray) -> np.ndarray:
    """corrDn with binom5 along both axes, reflect1 edges, step 2, start 1."""
    y = correlate1d(x, _BINOM5, axis=1, mode="mirror")[:, ::2]
    return correlate1d(y, _BINOM5, axis=0, mode="mirror")[::2]


def _expand(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """upConv with binom5 along both axes, reflect1 edges, step 2, start 1, to `shape`."""
    up = np.zeros((shape[0], x.shape[1]))
    up[::2] = x
    y = correlate1d(up, _BINOM5, axis=0, mode="mirror")
    up = np.zeros(shape)
    up[:, ::2] = y
    return correlate1d(up, _BINOM5, axis=1, mode="mirror")


def laplacian_pyramid(x: np.ndarray, levels: int = SCALES) -> list[np.ndarray]:
    """Band-pass bands 1..levels-1 and the low-pass residual, finest first."""
    bands = []
    for _ in range(levels - 1):
        lo = _reduce(x)
        bands.append(x - _expand(lo, x.shape))
        x = lo
    bands.append(x)
    return bands


# -- SSIM maps ---------------------------------------------------------------------------------


def _gauss_valid(x: np.ndarray) -> np.ndarray:
    r = WINDOW // 2
    y = correlate1d(x, _GAUSS, axis=0, mode="constant")[r : x.shape[0] - r]
    return correlate1d(y, _GAUSS, axis=1, mode="constant")[:, r : x.shape[1] - r]


def _ssim_map(x: np.ndarray, y: np.ndarray, luminance: bool) -> np.ndarray:
    """Contrast-structure map (times the luminance map if asked) of two bands, "valid"."""
    mu_x, mu_y = _gauss_valid(x), _gauss_valid(y)
    var_x = np.maximum(_gauss_valid(x * x) - mu_x * mu_x, 0.0)
    var_y = np.maximum(_gauss_valid(y * y) - mu_y * mu_y, 0.0)
    cov = _gauss_valid(x * y) - mu_x * mu_y
    c1, c2 = (K1 * L) ** 2, (K2 * L) ** 2
    cs = (2.0 * cov + c2) / (var_x + var_y + c2)
    if luminance:
        cs = cs * (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1)
    return cs


# -- information content weights ---------------------------------------------------------------


def _box_same(x: np.ndarray) -> np.ndarray:
    """filter2(ones(3) / 9, x, 'same'): zero padding."""
    y = correlate1d(x, _BOX, axis=0, mode="constant")
    return correlate1d(y, _BOX, axis=1, mode="constant")


def _enlarge_matrix(m: int) -> sparse.csr_array:
    """(2m x m) sparse matrix of imenlarge2 along one axis.

    MATLAB's imresize(..., 'bilinear') from m to 4m - 3 samples (source coordinate
    (i + 0.5) m / (4m - 3) - 0.5, clamped at the ends), one linearly extrapolated sample at
    each end (4m - 1 in all), then every second sample from the first.
    """
    n = 4 * m - 3
    src = np.clip((np.arange(n) + 0.5) * (m / n) - 0.5, 0.0, m - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, m - 1)
    frac = src - i0
    rows = np.arange(n)
    resize = sparse.csr_array(
        (
            np.concatenate([1.0 - frac, frac]),
            (np.concatenate([rows, rows]), np.concatenate([i0, i1])),
        ),
        shape=(n, m),
    )
    first = 2.0 * resize[[0]] - resize[[1]]
    last = 2.0 * resize[[n - 1]] - resize[[n - 2]]
    return sparse.vstack([first, resize, last], format="csr")[::2]


def _enlarge(band: np.ndarray) -> np.ndarray:
    """imenlarge2: a band at twice its size in each direction (separable, linear)."""
    rows, cols = _enlarge_matrix(band.shape[0]), _enlarge_matrix(band.shape[1])
    return np.asarray((cols @ (rows @ band).T).T)


def _info_weights(x: np.ndarray, y: np.ndarray, parent: np.ndarray | None) -> np.ndarray:
    """Information content weight map of reference band x and distorted band y.

    Its support is the band less a one-sample border (the 3x3 neighbourhoods that fit).
    """
    mu_x, mu_y = _box_same(x), _box_same(y)
    cov = _box_same(x * y) - mu_x * mu_y
    var_x = np.maximum(_box_same(x * x) - mu_x * mu_x, 0.0)
    var_y = np.maximum(_box_same(y * y) - mu_y * mu_y, 0.0)
    g = cov / (var_x + TOL)
    vv = var_y - g * cov
    flat_x = var_x < TOL
    g[flat_x] = 0.0
    vv[flat_x] = var_y[flat_x]
    flat_y = var_y < TOL
    g[flat_y] = 0.0
    vv[flat_y] = 0.0

    # Neighbourhood vectors of the reference: the 3x3 block around each inner sample, + parent;
    # taken a band of rows at a time (ROWS_PER_CHUNK) to bound the memory on large images.
    h, w = x.shape
    r = BLOCK // 2
    inner = (slice(r, h - r), slice(r, w - r))
    offsets = [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
    prnt = None if parent is None else parent[:h, :w][inner]
    n = len(offsets) + (prnt is not None)

    def vectors(top: int, bottom: int) -> np.ndarray:
        """(n, samples) neighbourhood vectors of inner rows top..bottom-1."""
        rows = [x[r + top + dy : r + bottom + dy, r + dx : w - r + dx] for dy, dx in offsets]
        if prnt is not None:
            rows.append(prnt[top:bottom])
        return np.stack(rows).reshape(n, -1)

    chunks = [(t, min(t + ROWS_PER_CHUNK, h - 2 * r)) for t in range(0, h - 2 * r, ROWS_PER_CHUNK)]
    cu = np.zeros((n, n))
    for top, bottom in chunks:
        v = vectors(top, bottom)
        cu += v @ v.T
    cu /= (h - 2 * r) * (w - 2 * r)
    lam, q = np.linalg.eigh(cu)
    pos = lam * (lam > 0)
    total = pos.sum()
    lam = pos * lam.sum() / (total + (total == 0))
    cu = (q * lam) @ q.T
    try:
        inv = np.linalg.inv(cu)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(cu)
    s = np.empty((h - 2 * r, w - 2 * r))
    for top, bottom in chunks:
        v = vectors(top, bottom)
        s[top:bottom] = np.einsum("ip,ip->p", inv @ v, v).reshape(bottom - top, -1) / n

    g, vv = g[inner], vv[inner]
    a = (vv + (1.0 + g * g) * SIGMA_NSQ) * s
    b = SIGMA_NSQ * vv
    weights = np.zeros_like(s)
    for lj in lam:
        weights += np.log2(1.0 + (a * lj + b) / (SIGMA_NSQ * SIGMA_NSQ))
    weights[weights < TOL] = 0.0
    return weights


def iw_ssim(reference: np.ndarray, decoded: np.ndarray, peak: float = 1023.0) -> float:
    """IW-SSIM of `decoded` against `reference`, two 2-D planes of dynamic range `peak`.

    Any numeric dtype; planes with a side under MIN_SIDE are zero-padded (bottom/right) to it.
    1 for identical planes. The weights come from the reference, so the metric is not
    symmetric.
    """
    check_planes(reference, decoded)
    scale = 255.0 / float(peak)
    x = pad_to(np.asarray(reference, dtype=np.float64) * scale, MIN_SIDE)
    y = pad_to(np.asarray(decoded, dtype=np.float64) * scale, MIN_SIDE)
    px, py = laplacian_pyramid(x), laplacian_pyramid(y)
    crop = WINDOW // 2 - BLOCK // 2  # weights' support (band less 1) to the map's (less 5)
    means = []
    for s in range(SCALES):
        last = s == SCALES - 1
        cs = _ssim_map(px[s], py[s], luminance=last)
        if last:
            means.append(float(np.mean(cs)))
            continue
        parent = _enlarge(px[s + 1]) if s < SCALES - 2 else None
        iw = _info_weights(px[s], py[s], parent)[crop:-crop, crop:-crop]
        total = float(np.sum(iw))
        means.append(float(np.sum(cs * iw)) / total if total > 0 else float(np.mean(cs)))
    weights = np.array(WEIGHTS) / np.sum(WEIGHTS)
    return float(np.prod(np.abs(np.array(means)) ** weights))
