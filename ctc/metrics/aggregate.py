"""Dataset-level PSNR as the CLIC challenge computes it.

CLIC (Challenge on Learned Image Compression, clic.compression.cc) ranks by one PSNR for the
whole test set: the squared errors of all RGB samples of all images are summed and divided by
the total number of samples, giving a single MSE, and PSNR is taken of that. Large images weigh
more than in the mean of per-image PSNRs, and one near-lossless image cannot dominate.
"""

from __future__ import annotations

from collections.abc import Iterable

from ctc.metrics.psnr import psnr_from_mse


def dataset_psnr(sses: Iterable[int], counts: Iterable[int], peak: float = 255.0) -> float:
    """PSNR of the pooled MSE: sum of squared errors over sum of sample counts."""
    total_sse = total_n = 0
    for s, n in zip(sses, counts, strict=True):
        total_sse += s
        total_n += n
    if total_n == 0:
        raise ValueError("no samples to aggregate")
    return psnr_from_mse(total_sse / total_n, peak)
