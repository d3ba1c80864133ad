"""The luma plane on which the JPEG AI quality framework computes its Y-only metrics.

JPEG AI (ISO/IEC 6048; its common training and test conditions and objective quality
assessment framework) evaluates PSNR-HVS, VIF, IW-SSIM, NLPD and the like on the BT.709
full-range luma at 10 bits, derived from the 8-bit RGB as follows:

1. each 8-bit sample is scaled to 10 bits and rounded: R10 = round(R * 1023 / 255), likewise
   G and B (R * 1023 / 255 = R * 341 / 85 is never a half-integer, so no tie rule matters);
2. Y = round(0.2126 * R10 + 0.7152 * G10 + 0.0722 * B10), the BT.709 luma weights; Y is in
   [0, 1023] (PEAK) since the weights sum to 1.

The order (scale and round, then matrix and round) differs from ctc.metrics.colour.rgb_to_yuv,
which applies the matrix to R/255 and rounds once; the two differ by one code value on some
samples. This order reproduces the framework's PSNR-Y of the reference test pair
(tests/ctc/data/astronaut-jpeg-q30.png against scikit-image's astronaut), 32.76711 dB, to
1.6e-5 dB (32.767126 dB here).

Ties: 1356 of the 2^24 RGB colours give a weighted sum that is exactly a half-integer in
floating point. They are rounded half to even here (numpy's rint); rounding them half up
instead changes 11 samples of the reference pair, its PSNR-Y by 1.05e-5 dB (to 32.767116 dB),
its VIF-P by 2e-7 and its IW-SSIM by 1e-8.
"""

from __future__ import annotations

import numpy as np

PEAK = 1023.0
KR, KG, KB = 0.2126, 0.7152, 0.0722


def jpeg_ai_luma(rgb: np.ndarray) -> np.ndarray:
    """BT.709 full-range 10-bit luma (uint16, values 0..1023) of an 8-bit RGB image (H, W, 3)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3) RGB, got {rgb.dtype} {rgb.shape}")
    c = np.rint(rgb.astype(np.float64) * (PEAK / 255.0))
    y = np.rint(KR * c[..., 0] + KG * c[..., 1] + KB * c[..., 2])
    return np.clip(y, 0.0, PEAK).astype(np.uint16)
