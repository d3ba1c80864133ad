"""Bjøntegaard delta rate and delta quality between two rate-quality curves.

BD-rate is the mean horizontal gap between the curves in log10 rate, averaged over the quality
interval both curves cover, given as a percentage rate change (negative: the test saves bits).
BD-quality (BD-PSNR when quality is PSNR) is the mean vertical gap in quality, averaged over the
log10-rate interval both curves cover. Sources (details in docs/bdrate.md):

- "cubic": G. Bjøntegaard, VCEG-M33, 2001: a third-order polynomial fitted to the points.
- "pchip" (default): the shape-preserving piecewise cubic Hermite interpolation of the JCT-VC
  common test conditions Excel sheet (F. Bossen, JCTVC-L1100, 2013), kept in the JVET sheet.
- "akima": Akima interpolation, found more accurate by Herglotz et al. (arXiv:2202.12565).

A dataset is summarised two ways, both always computed: the mean of per-image BD values (as the
FVC/NIC workbook does) and the BD of the dataset-average curve (as most papers do).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

Method = Literal["pchip", "cubic", "akima"]
Delta = Literal["rate", "quality"]
Aggregation = Literal["per_image_mean", "average_curve"]

METHODS: tuple[str, ...] = ("pchip", "cubic", "akima")
AGGREGATIONS: tuple[str, ...] = ("per_image_mean", "average_curve")
# FVC's bpp ranges: low 0.06-0.5 and high 0.25-1.5 (bounds included); "all" keeps every point.
RANGES: dict[str, tuple[float, float]] = {
    "low": (0.06, 0.5),
    "high": (0.25, 1.5),
    "all": (0.0, math.inf),
}
MIN_OVERLAP = 0.75  # below this overlap fraction a BD value is warned about and flagged
OUTLIER_PERCENT = 100.0  # a BD-rate with a larger magnitude is flagged as an outlier
_MIN_POINTS = {"pchip": 2, "akima": 2, "cubic": 4}
_RANGE_RTOL = 1e-9  # so that a target stored as 0.5000000001 still counts as 0.5


class LowOverlapWarning(UserWarning):
    """The curves share less than MIN_OVERLAP of their integration interval."""


@dataclass(frozen=True)
class Curve:
    """One rate-quality curve: achieved bpp, quality, and (optionally) the target bpp per point."""

    rate: np.ndarray
    quality: np.ndarray
    target: np.ndarray | None = None

    def __post_init__(self) -> None:
        rate = np.asarray(self.rate, dtype=float).reshape(-1)
        quality = np.asarray(self.quality, dtype=float).reshape(-1)
        if rate.shape != quality.shape:
            raise ValueError(f"{rate.size} rates but {quality.size} qualities")
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "quality", quality)
        if self.target is not None:
            target = np.asarray(self.target, dtype=float).reshape(-1)
            if target.shape != rate.shape:
                raise ValueError(f"{target.size} targets but {rate.size} rates")
            object.__setattr__(self, "target", target)


CurveLike = Curve | tuple[ArrayLike, ArrayLike] | tuple[ArrayLike, ArrayLike, ArrayLike]


@dataclass(frozen=True)
class BDResult:
    """One Bjøntegaard delta and the checks on it.

    value: percent for delta="rate" (negative: the test needs fewer bits), quality units (dB for
    PSNR and MS-SSIM in dB) for delta="quality" (positive: the test is better).
    overlap: length of the intersection over the length of the union of the two curves'
    integration intervals (quality for BD-rate, log10 rate for BD-quality), in (0, 1].
    low_overlap: overlap < MIN_OVERLAP. outlier: |BD-rate| > OUTLIER_PERCENT (never set for
    BD-quality, which has no percent scale).
    """

    value: float
    delta: Delta
    method: Method
    overlap: float
    low_overlap: bool
    outlier: bool


@dataclass(frozen=True)
class DatasetBD:
    """BD over a dataset under both aggregations, with the one chosen recorded in `aggregation`."""

    aggregation: Aggregation
    delta: Delta
    method: Method
    bpp_range: str | tuple[float, float]
    per_image: dict[str, BDResult]
    per_image_mean: float
    average_curve: BDResult

    @property
    def value(self) -> float:
        """The BD value under the chosen aggregation."""
        if self.aggregation == "per_image_mean":
            return self.per_image_mean
        return self.average_curve.value

    @property
    def outliers(self) -> list[str]:
        """Images whose BD-rate magnitude exceeds OUTLIER_PERCENT."""
        return [name for name, r in self.per_image.items() if r.outlier]

    @property
    def low_overlap(self) -> list[str]:
        """Images whose curves overlap by less than MIN_OVERLAP."""
        return [name for name, r in self.per_image.items() if r.low_overlap]


def msssim_db(x: ArrayLike) -> np.ndarray | float:
    """Linear MS-SSIM in [0, 1) to dB, -10 log10(1 - x): the scale on which BD is integrated.

    Linear MS-SSIM crowds near 1 at useful rates, squeezing the differences there; the dB scale
    spreads them as PSNR does. MS-SSIM of 1 (a lossless image) has no dB value.
    """
    x = np.asarray(x, dtype=float)
    if np.any(np.isnan(x)) or np.any(x >= 1.0):
        raise ValueError("linear MS-SSIM must be a number below 1 to convert to dB")
    return (-10.0 * np.log10(1.0 - x))[()]


def select_range(curve: CurveLike, bpp_range: str | tuple[float, float] = "all") -> Curve:
    """The points of `curve` whose bpp lies in `bpp_range` (a RANGES name or (low, high)).

    The target bpp decides when the curve has targets, as FVC defines its ranges on targets (a
    point aimed at 0.5 bpp that lands at 0.51 is still in the low range); otherwise the achieved
    bpp decides. Both bounds are included.
    """
    c = _as_curve(curve)
    low, high = _resolve_range(bpp_range)
    bpp = c.rate if c.target is None else c.target
    keep = (bpp >= low * (1 - _RANGE_RTOL)) & (bpp <= high * (1 + _RANGE_RTOL))
    return Curve(c.rate[keep], c.quality[keep], None if c.target is None else c.target[keep])


def bd_result(
    anchor_rate: ArrayLike,
    anchor_quality: ArrayLike,
    test_rate: ArrayLike,
    test_quality: ArrayLike,
    delta: Delta = "rate",
    method: Method = "pchip",
    *,
    msssim_linear: bool = False,
) -> BDResult:
    """BD-rate (delta="rate") or BD-quality (delta="quality") of test against anchor, with flags.

    Points may come in any order; after sorting by rate, quality must rise strictly with rate.
    msssim_linear: the qualities are linear MS-SSIM, converted with msssim_db before integration.
    Warns with LowOverlapWarning when the overlap is below MIN_OVERLAP.
    """
    anchor, test = Curve(anchor_rate, anchor_quality), Curve(test_rate, test_quality)
    return _warned(_bd(anchor, test, delta, method, msssim_linear))


def bd_rate(
    anchor_rate: ArrayLike,
    anchor_quality: ArrayLike,
    test_rate: ArrayLike,
    test_quality: ArrayLike,
    method: Method = "pchip",
    *,
    msssim_linear: bool = False,
) -> float:
    """BD-rate in percent (negative: the test saves bits at equal quality); see bd_result."""
    anchor, test = Curve(anchor_rate, anchor_quality), Curve(test_rate, test_quality)
    return _warned(_bd(anchor, test, "rate", method, msssim_linear)).value


def bd_quality(
    anchor_rate: ArrayLike,
    anchor_quality: ArrayLike,
    test_rate: ArrayLike,
    test_quality: ArrayLike,
    method: Method = "pchip",
    *,
    msssim_linear: bool = False,
) -> float:
    """BD-quality in quality units, dB for PSNR (positive: the test is better); see bd_result."""
    anchor, test = Curve(anchor_rate, anchor_quality), Curve(test_rate, test_quality)
    return _warned(_bd(anchor, test, "quality", method, msssim_linear)).value


def curve_problem(
    curve: CurveLike, method: Method = "pchip", *, msssim_linear: bool = False
) -> str | None:
    """Why `curve` cannot enter a BD computation by `method` (too few points, a rate that is not
    positive, quality that does not rise with rate...), or None when it can."""
    _check_choices("rate", method)
    try:
        _prepare(_as_curve(curve), "curve", method, msssim_linear)
    except ValueError as err:
        return str(err)
    return None


def bd_dataset(
    anchor_curves: Mapping[str, CurveLike],
    test_curves: Mapping[str, CurveLike],
    delta: Delta = "rate",
    aggregation: Aggregation = "per_image_mean",
    method: Method = "pchip",
    bpp_range: str | tuple[float, float] = "all",
    *,
    msssim_linear: bool = False,
) -> DatasetBD:
    """BD of test against anchor over a dataset of images (image name -> curve).

    Both aggregations are computed and returned; `aggregation` records which one `value` gives.
    per_image_mean: the arithmetic mean of the per-image BD values.
    average_curve: one BD between the dataset-average curves, whose points average rate and
    quality over images at each target bpp (every image must have the same targets), or, for
    curves without targets, at each rank of the rate-sorted points (every image must have the
    same number). Linear MS-SSIM is averaged before conversion to dB, as papers plot it.
    Points are first kept by select_range(bpp_range). Warns once for all low-overlap images.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, not {aggregation!r}")
    _check_choices(delta, method)
    if set(anchor_curves) != set(test_curves):
        missing = sorted(set(anchor_curves) ^ set(test_curves))
        raise ValueError(f"anchor and test must cover the same images; unmatched: {missing}")
    if not anchor_curves:
        raise ValueError("no images")
    anchor = {k: select_range(v, bpp_range) for k, v in anchor_curves.items()}
    test = {k: select_range(v, bpp_range) for k, v in test_curves.items()}

    per_image = {}
    for name in anchor:
        try:
            per_image[name] = _bd(anchor[name], test[name], delta, method, msssim_linear)
        except ValueError as err:
            raise ValueError(f"image {name!r}: {err}") from err
    try:
        average = _bd(_average_curve(anchor), _average_curve(test), delta, method, msssim_linear)
    except ValueError as err:
        raise ValueError(f"average curve: {err}") from err

    low = [name for name, r in per_image.items() if r.low_overlap]
    if average.low_overlap:
        low.append("<average curve>")
    if low:
        warnings.warn(
            f"BD-{delta}: curves overlap by less than {100 * MIN_OVERLAP:.0f} % for {low}",
            LowOverlapWarning,
            stacklevel=2,
        )
    return DatasetBD(
        aggregation=aggregation,
        delta=delta,
        method=method,
        bpp_range=bpp_range,
        per_image=per_image,
        per_image_mean=float(np.mean([r.value for r in per_image.values()])),
        average_curve=average,
    )


def _warned(result: BDResult) -> BDResult:
    """Warn the public function's caller when the curves overlap too little."""
    if result.low_overlap:
        warnings.warn(
            f"BD-{result.delta}: the curves overlap by {100 * result.overlap:.2f} % "
            f"(< {100 * MIN_OVERLAP:.0f} %), so the value describes only their shared part",
            LowOverlapWarning,
            stacklevel=3,
        )
    return result


def _as_curve(curve: CurveLike) -> Curve:
    return curve if isinstance(curve, Curve) else Curve(*curve)


def _resolve_range(bpp_range: str | tuple[float, float]) -> tuple[float, float]:
    if isinstance(bpp_range, str):
        if bpp_range not in RANGES:
            raise ValueError(f"bpp range must be one of {tuple(RANGES)} or (low, high)")
        return RANGES[bpp_range]
    low, high = (float(v) for v in bpp_range)
    if not low <= high:
        raise ValueError(f"bpp range ({low}, {high}) is empty")
    return low, high


def _average_curve(curves: Mapping[str, Curve]) -> Curve:
    """Mean rate and quality over images at each target bpp, or at each rank without targets."""
    by_target = all(c.target is not None for c in curves.values())
    matched = {}
    for name, c in curves.items():
        order = np.argsort(c.target if by_target else c.rate, kind="stable")
        key = np.round(c.target[order], 9) if by_target else np.arange(c.rate.size)
        matched[name] = key, c.rate[order], c.quality[order]
    first_name, (first_key, _, _) = next(iter(matched.items()))
    if np.any(np.diff(first_key) == 0):
        raise ValueError(f"image {first_name!r} repeats a target bpp")
    for name, (key, _, _) in matched.items():
        if not np.array_equal(key, first_key):
            what = "targets" if by_target else "numbers of points (curves without targets)"
            raise ValueError(
                f"every image needs the same {what}; image {name!r} has "
                f"{key.tolist()}, image {first_name!r} has {first_key.tolist()}"
            )
    rates = np.mean([rate for _, rate, _ in matched.values()], axis=0)
    qualities = np.mean([quality for _, _, quality in matched.values()], axis=0)
    return Curve(rates, qualities, first_key if by_target else None)


def _bd(anchor: Curve, test: Curve, delta: Delta, method: Method, msssim_linear: bool) -> BDResult:
    """BD value and flags, without warnings (callers decide how to report low overlap)."""
    _check_choices(delta, method)
    log_rate_a, quality_a = _prepare(anchor, "anchor", method, msssim_linear)
    log_rate_t, quality_t = _prepare(test, "test", method, msssim_linear)
    if delta == "rate":  # integrate log10 rate over quality
        xa, ya, xt, yt = quality_a, log_rate_a, quality_t, log_rate_t
    else:  # integrate quality over log10 rate
        xa, ya, xt, yt = log_rate_a, quality_a, log_rate_t, quality_t

    low, high = max(xa[0], xt[0]), min(xa[-1], xt[-1])
    if not low < high:
        axis = "quality" if delta == "rate" else "rate"
        raise ValueError(
            f"BD-{delta}: the {axis} intervals of anchor [{xa[0]:.6g}, {xa[-1]:.6g}] and test "
            f"[{xt[0]:.6g}, {xt[-1]:.6g}] do not overlap"
        )
    overlap = (high - low) / (max(xa[-1], xt[-1]) - min(xa[0], xt[0]))
    mean_gap = (_integral(xt, yt, method, low, high) - _integral(xa, ya, method, low, high)) / (
        high - low
    )
    if delta == "rate":
        value = (10.0**mean_gap - 1.0) * 100.0
        outlier = abs(value) > OUTLIER_PERCENT
    else:
        value, outlier = mean_gap, False
    return BDResult(
        value=float(value),
        delta=delta,
        method=method,
        overlap=float(overlap),
        low_overlap=bool(overlap < MIN_OVERLAP),
        outlier=bool(outlier),
    )


def _check_choices(delta: Delta, method: Method) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if delta not in ("rate", "quality"):
        raise ValueError(f"delta must be 'rate' or 'quality', not {delta!r}")


def _prepare(
    curve: Curve, which: str, method: Method, msssim_linear: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Checked (log10 rate, quality) sorted by rate; quality must rise strictly with rate.

    A point repeated exactly (same rate and same quality) counts once: in a CTC run it is one
    bitstream that served two targets because the codec could not go lower or higher.
    """
    rate, quality = curve.rate, curve.quality
    if rate.size < _MIN_POINTS[method]:
        raise ValueError(
            f"{which}: method {method!r} needs at least {_MIN_POINTS[method]} points, "
            f"got {rate.size}"
        )
    if not (np.all(np.isfinite(rate)) and np.all(np.isfinite(quality))):
        raise ValueError(f"{which}: rates and qualities must be finite (no NaN or inf)")
    if np.any(rate <= 0):
        raise ValueError(f"{which}: rates must be positive, got {rate.tolist()}")
    if msssim_linear:
        quality = np.asarray(msssim_db(quality))
    order = np.argsort(rate, kind="stable")
    rate, quality = rate[order], quality[order]
    # One file that served two targets (a codec at the end of its range) is one point.
    repeated = np.concatenate([[False], (np.diff(rate) == 0) & (np.diff(quality) == 0)])
    rate, quality = rate[~repeated], quality[~repeated]
    if rate.size < _MIN_POINTS[method]:
        raise ValueError(
            f"{which}: method {method!r} needs at least {_MIN_POINTS[method]} distinct points, "
            f"got {rate.size}"
        )
    if np.any(np.diff(rate) == 0):
        raise ValueError(f"{which}: duplicate rates {rate.tolist()}")
    if np.any(np.diff(quality) <= 0):
        raise ValueError(
            f"{which}: quality must increase strictly with rate; by rate {rate.tolist()} "
            f"the qualities are {quality.tolist()}"
        )
    return np.log10(rate), quality


def _integral(x: np.ndarray, y: np.ndarray, method: Method, low: float, high: float) -> float:
    """Integral over [low, high] of the curve through (x, y) (x strictly increasing)."""
    if method == "cubic":
        # Least-squares cubic (exact through 4 points), fitted on a scaled axis for conditioning.
        antiderivative = np.polynomial.Polynomial.fit(x, y, 3).integ()
        return float(antiderivative(high) - antiderivative(low))
    if method == "akima" and x.size > 2:
        return float(Akima1DInterpolator(x, y).integrate(low, high))
    # pchip; Akima through 2 points is the same straight line.
    return float(PchipInterpolator(x, y).integrate(low, high))
