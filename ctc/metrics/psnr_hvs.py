"""PSNR-HVS and PSNR-HVS-M of two luma planes.

PSNR-HVS: K. Egiazarian, J. Astola, N. Ponomarenko, V. Lukin, F. Battisti, M. Carli, "New
full-reference quality metrics based on HVS", Proc. VPQM 2006. PSNR-HVS-M: N. Ponomarenko,
F. Silvestri, K. Egiazarian, M. Carli, J. Astola, V. Lukin, "On between-coefficient contrast
masking of DCT basis functions", Proc. VPQM 2007. Computed as in the authors' MATLAB code
(psnrhvsm.m, ponomarenko.info) and the psnr-hvsm Python package (K. Trojanowski):

- both planes are scaled to [0, 1] (divided by `peak`) and cut into 8x8 blocks (non-overlapping);
- each block's orthonormal 2-D DCT-II; per coefficient, the difference u = |DCT(a) - DCT(b)|;
- PSNR-HVS weights u by the CSF table below: MSE_HVS = mean over all coefficients of
  (u * CSF)^2;
- PSNR-HVS-M first lowers each AC difference by the contrast masking threshold of the block,
  u' = max(u - E / MASK, 0), with E the larger of the two blocks' masking strengths
      E = sqrt(sum over AC of DCT^2 * MASK  *  delta) / 32,
      delta = (sum of the four 4x4 quadrants' V) / V,   V(z) = var(z, ddof=1) * size(z)
  (delta = 0 for a flat block); the DC difference is not masked;
- PSNR = 10 * log10(1 / MSE), capped at 100 (identical planes, MSE 0, give 100).

JPEG AI conventions: the planes are the framework's 10-bit luma (ctc.metrics.jpegai_luma), peak
1023, and a side that is not a multiple of 8 is first extended to one by repeating the last
row/column (edge replication); the original MATLAB code skips incomplete blocks instead.

The psnr-hvsm package is GPL-3.0, so it is a test dependency only (this package is BSD); its
values agree with these to 1e-9 dB (tests/ctc/test_psnr_hvs.py compares them).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.fft import dctn

CAP = 100.0
BLOCK = 8

# Ponomarenko's CSFCof and MaskCof tables (psnrhvsm.m), row = vertical frequency.
CSF = np.array(
    [
        [1.608443, 2.339554, 2.573509, 1.608443, 1.072295, 0.643377, 0.504610, 0.421887],
        [2.144591, 2.144591, 1.838221, 1.354478, 0.989811, 0.443708, 0.428918, 0.467911],
        [1.838221, 1.979622, 1.608443, 1.072295, 0.643377, 0.451493, 0.372972, 0.459555],
        [1.838221, 1.513829, 1.169777, 0.887417, 0.504610, 0.295806, 0.321689, 0.415082],
        [1.429727, 1.169777, 0.695543, 0.459555, 0.378457, 0.236102, 0.249855, 0.334222],
        [1.072295, 0.735288, 0.467911, 0.402111, 0.317717, 0.247453, 0.227744, 0.279729],
        [0.525206, 0.402111, 0.329937, 0.295806, 0.249855, 0.212687, 0.214459, 0.254803],
        [0.357432, 0.279729, 0.270896, 0.262603, 0.229778, 0.257351, 0.249855, 0.259950],
    ]
)
MASK = np.array(
    [
        [0.390625, 0.826446, 1.000000, 0.390625, 0.173611, 0.062500, 0.038447, 0.026874],
        [0.694444, 0.694444, 0.510204, 0.277008, 0.147929, 0.029727, 0.027778, 0.033058],
        [0.510204, 0.591716, 0.390625, 0.173611, 0.062500, 0.030779, 0.021004, 0.031888],
        [0.510204, 0.346021, 0.206612, 0.118906, 0.038447, 0.013212, 0.015625, 0.026015],
        [0.308642, 0.206612, 0.073046, 0.031888, 0.021626, 0.008417, 0.009426, 0.016866],
        [0.173611, 0.081633, 0.033058, 0.024414, 0.015242, 0.009246, 0.007831, 0.011815],
        [0.041649, 0.024414, 0.016437, 0.013212, 0.009426, 0.006830, 0.006944, 0.009803],
        [0.019290, 0.011815, 0.011080, 0.010412, 0.007972, 0.010000, 0.009426, 0.010203],
    ]
)
_AC = np.ones((BLOCK, BLOCK), dtype=bool)
_AC[0, 0] = False


def pad_to_blocks(plane: np.ndarray) -> np.ndarray:
    """Extend a 2-D plane at its bottom/right, by edge replication, to multiples of 8."""
    h, w = plane.shape
    return np.pad(plane, ((0, -h % BLOCK), (0, -w % BLOCK)), mode="edge")


def _blocks(plane: np.ndarray) -> np.ndarray:
    """(N, 8, 8) blocks of a plane whose sides are multiples of 8, in raster order."""
    h, w = plane.shape
    b = plane.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).swapaxes(1, 2)
    return b.reshape(-1, BLOCK, BLOCK)


def _energy(z: np.ndarray) -> np.ndarray:
    """V(z) of each block: the sum of squared deviations times n / (n - 1), as var(z(:)) *
    numel(z) in MATLAB."""
    n = z.shape[-1] * z.shape[-2]
    return np.var(z, axis=(-2, -1), ddof=1) * n


def _masking(blocks: np.ndarray, coeffs: np.ndarray) -> np.ndarray:
    """Masking strength E of each block (its AC energy weighted by MASK, scaled by delta)."""
    weighted = np.sum(np.where(_AC, coeffs * coeffs * MASK, 0.0), axis=(-2, -1))
    q = BLOCK // 2
    total = _energy(blocks)
    quadrants = (
        _energy(blocks[:, :q, :q])
        + _energy(blocks[:, :q, q:])
        + _energy(blocks[:, q:, :q])
        + _energy(blocks[:, q:, q:])
    )
    flat = total == 0.0
    delta = np.where(flat, 0.0, quadrants / np.where(flat, 1.0, total))
    return np.sqrt(weighted * delta) / 32.0


def _psnr(mse: float) -> float:
    return CAP if mse == 0.0 else min(10.0 * math.log10(1.0 / mse), CAP)


def hvs_mse(ref: np.ndarray, dec: np.ndarray, peak: float = 1023.0) -> tuple[float, float]:
    """The CSF-weighted MSEs (HVS, HVS-M) on the [0, 1] scale, after padding to 8x8 blocks."""
    if ref.shape != dec.shape or ref.ndim != 2:
        raise ValueError(f"expected two equal 2-D planes, got {ref.shape} and {dec.shape}")
    if ref.size == 0:
        raise ValueError("empty planes")
    a = _blocks(pad_to_blocks(ref.astype(np.float64) / peak))
    b = _blocks(pad_to_blocks(dec.astype(np.float64) / peak))
    da = dctn(a, norm="ortho", axes=(-2, -1))
    db = dctn(b, norm="ortho", axes=(-2, -1))
    u = np.abs(da - db)
    hvs = np.mean((u * CSF) ** 2)
    strength = np.maximum(_masking(a, da), _masking(b, db))[:, None, None]
    masked = np.where(_AC, np.maximum(u - strength / MASK, 0.0), u)
    hvsm = np.mean((masked * CSF) ** 2)
    return float(hvs), float(hvsm)


def psnr_hvs(ref_y: np.ndarray, dec_y: np.ndarray, peak: float = 1023.0) -> tuple[float, float]:
    """(PSNR-HVS, PSNR-HVS-M) in dB of two luma planes with dynamic range `peak`; 100 at most."""
    hvs, hvsm = hvs_mse(ref_y, dec_y, peak)
    return _psnr(hvs), _psnr(hvsm)
