"""Y'CbCr to RGB for the anchors' decoders, and 4:2:0 chroma upsampling.

The forward conversion is ctc.metrics.colour.rgb_to_yuv (Rec. ITU-T H.273, full range, any bit
depth, 4:2:0 chroma as the 2x2 mean at centre siting), so that an anchor's input is converted
exactly as the YUV metrics convert images. This module inverts it:

    E'Y = Y / (2^B - 1),   E'PB = (Cb - 2^(B-1)) / (2^B - 1),   E'PR likewise
    E'R = E'Y + 2 (1 - Kr) E'PR,   E'B = E'Y + 2 (1 - Kb) E'PB,
    E'G = (E'Y - Kr E'R - Kb E'B) / (1 - Kr - Kb)
    R = Round(255 E'R), clipped to [0, 255] (round-half-up, as the forward conversion)

4:2:0 chroma is brought back to full resolution by bilinear interpolation for centre-sited
samples (weights 3/4 and 1/4 in each direction, edges replicated), the "fancy upsampling" of
libjpeg, which is the inverse geometry of the 2x2 mean used to subsample.
"""

from __future__ import annotations

import numpy as np

from ctc.metrics.colour import KR_KB, Matrix


def _upsample_axis(plane: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Double one axis of a centre-sited plane with 3/4-1/4 weights, cropped to `size`."""
    p = np.moveaxis(plane, axis, 0)
    prev = np.concatenate([p[:1], p[:-1]])
    nxt = np.concatenate([p[1:], p[-1:]])
    out = np.empty((2 * p.shape[0], *p.shape[1:]), dtype=np.float64)
    out[0::2] = 0.75 * p + 0.25 * prev
    out[1::2] = 0.75 * p + 0.25 * nxt
    return np.moveaxis(out[:size], 0, axis)


def upsample_420(plane: np.ndarray, height: int, width: int) -> np.ndarray:
    """A ceil(H/2) x ceil(W/2) chroma plane brought to H x W (float64, unrounded)."""
    expected = ((height + 1) // 2, (width + 1) // 2)
    if plane.shape != expected:
        raise ValueError(f"4:2:0 chroma of {width}x{height} must be {expected}, got {plane.shape}")
    p = plane.astype(np.float64)
    return _upsample_axis(_upsample_axis(p, height, 0), width, 1)


def yuv_to_rgb(
    y: np.ndarray, cb: np.ndarray, cr: np.ndarray, matrix: Matrix, bit_depth: int
) -> np.ndarray:
    """Full-range Y'CbCr planes (4:4:4, or 4:2:0 chroma that is upsampled) to uint8 RGB."""
    if matrix not in KR_KB:
        raise ValueError(f"unknown colour matrix {matrix!r}; expected one of {sorted(KR_KB)}")
    height, width = y.shape
    if cb.shape != y.shape:
        cb, cr = upsample_420(cb, height, width), upsample_420(cr, height, width)
    kr, kb = KR_KB[matrix]
    peak = float((1 << bit_depth) - 1)
    offset = float(1 << (bit_depth - 1))
    ey = y.astype(np.float64) / peak
    epb = (cb.astype(np.float64) - offset) / peak
    epr = (cr.astype(np.float64) - offset) / peak
    er = ey + 2.0 * (1.0 - kr) * epr
    eb = ey + 2.0 * (1.0 - kb) * epb
    eg = (ey - kr * er - kb * eb) / (1.0 - kr - kb)
    rgb = np.stack([er, eg, eb], axis=-1) * 255.0
    return np.clip(np.floor(rgb + 0.5), 0, 255).astype(np.uint8)
