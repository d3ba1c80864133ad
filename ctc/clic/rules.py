"""The CLIC challenge's dataset-level rules: the byte budget and the two aggregate metrics.

CLIC (Challenge on Learned Image Compression, from 2018, compression.cc) judges a whole test
set as one target:

- low-rate track: the sum of the sizes of all compressed files must not exceed a byte budget
  (tasks pages, challenge.compression.cc/tasks, at 0.15 bpp: 4,722,341 bytes for the
  validation set, 15,749,090 for the 2019 test set, 22,540,456 for the 2020 one; the later
  image tracks, compression.cc/tasks: one budget for each of 0.075, 0.15 and 0.3 bpp);
- PSNR: one MSE over all RGB samples of all pixels of the dataset, then 10 log10(255^2 / MSE)
  (CLIC 2019 low-rate track rules; the pooled PSNR of ctc.metrics.aggregate);
- MS-SSIM: computed per PNG, then averaged weighted by each image's pixel count (CLIC 2021 FAQ,
  compression.cc/faq; the 2019 and 2020 pages do not state the weighting);
- transparent track (CLIC 2019): at least 40 dB aggregate PSNR and 0.993 aggregate MS-SSIM,
  ranked by the smallest total size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from numbers import Integral

from ctc.metrics.psnr import psnr_from_mse

PEAK = 255.0
SAMPLES_PER_PIXEL = 3  # R, G and B: the MSE runs over 3 * H * W samples per image
TRANSPARENT_MIN_PSNR = 40.0
TRANSPARENT_MIN_MSSSIM = 0.993
TRACKS = ("low_rate", "transparent")


@dataclass(frozen=True)
class ClicTrack:
    """A CLIC track as a condition states it (the `clic:` block of a condition file).

    track: "low_rate" (the files of the whole set within each byte budget, ranked on aggregate
    PSNR and MS-SSIM) or "transparent" (aggregate PSNR and MS-SSIM at least min_psnr dB and
    min_msssim, ranked on the smallest total size). budgets_bpp: the low-rate budgets as
    rates, each turned into bytes by `budget_bytes` over the dataset's images (or given
    explicitly to `ctc clic allocate --budget`). max_decoder_bytes: the size limit of the
    decoder package with its model (CLIC 2020: 500 MB; 2021: 250 MB), None where the track
    states none.
    """

    track: str
    budgets_bpp: tuple[float, ...] = ()
    min_psnr: float | None = None
    min_msssim: float | None = None
    max_decoder_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.track not in TRACKS:
            raise ValueError(f"track must be one of {', '.join(TRACKS)}, got {self.track!r}")
        if self.track == "low_rate" and not self.budgets_bpp:
            raise ValueError("a low_rate track needs at least one budget (budgets_bpp)")
        if self.track == "low_rate" and (self.min_psnr, self.min_msssim) != (None, None):
            raise ValueError("a low_rate track has budgets, no floors (min_psnr, min_msssim)")
        if self.track == "transparent" and self.budgets_bpp:
            raise ValueError("a transparent track has floors (min_psnr, min_msssim), no budgets")
        if self.track == "transparent" and (self.min_psnr, self.min_msssim) == (None, None):
            raise ValueError("a transparent track needs a floor (min_psnr, min_msssim or both)")


def budget_bytes(bpp: float | Fraction, pixel_counts: Iterable[int]) -> int:
    """The low-rate track's byte budget: floor(bpp * sum(H * W) / 8), in bytes.

    The challenge publishes each budget as one number per dataset (CLIC 2019: 4,722,341 bytes
    for the validation set, 15,749,090 for the test set, at 0.15 bpp); this harness derives
    it from the target bpp and the image sizes by that rule, or takes an explicit number.
    A float bpp is read as the decimal it prints as (0.3 is 3/10, not the binary
    0.29999999999999998), so a budget that is a whole number in decimal is not floored one
    byte short. pixel_counts: H * W of each image, positive integers.
    """
    counts = [_positive_int(p, "pixel count") for p in pixel_counts]
    if not counts:
        raise ValueError("no images: a budget needs at least one pixel count")
    rate = Fraction(repr(bpp)) if isinstance(bpp, float) else Fraction(bpp)
    if rate <= 0:
        raise ValueError(f"bpp must be positive, got {bpp}")
    return math.floor(rate * sum(counts) / 8)


def aggregate_psnr(sse_total: float, sample_count: int) -> float:
    """CLIC's dataset PSNR in dB: one MSE, sse_total / sample_count, over all RGB samples of
    all images (sample_count = 3 * sum(H * W)), then 10 log10(255^2 / MSE); +inf when the
    error is zero (CLIC 2019 low-rate track rules)."""
    if not math.isfinite(sse_total) or sse_total < 0:
        raise ValueError(f"total SSE must be a finite number >= 0, got {sse_total}")
    return psnr_from_mse(sse_total / _positive_int(sample_count, "sample count"), PEAK)


def aggregate_msssim(values: Iterable[float], pixel_counts: Iterable[int]) -> float:
    """CLIC's dataset MS-SSIM: the per-image MS-SSIM values averaged with each image's pixel
    count H * W as its weight (CLIC 2021 FAQ)."""
    values, pixel_counts = list(values), list(pixel_counts)
    if len(values) != len(pixel_counts):
        raise ValueError(f"{len(values)} MS-SSIM values but {len(pixel_counts)} pixel counts")
    if not values:
        raise ValueError("no images: MS-SSIM needs at least one value")
    if not all(math.isfinite(v) for v in values):
        raise ValueError("MS-SSIM values must be finite numbers")
    weights = [_positive_int(p, "pixel count") for p in pixel_counts]
    return math.fsum(v * w for v, w in zip(values, weights, strict=True)) / sum(weights)


def _positive_int(value: int, what: str) -> int:
    """value as an int when it is an integer above zero (numpy's too), else one ValueError
    line naming `what`."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)
