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
FVC/NIC workbook does) and the BD of the dataset-average curve (as most papers do). An image that
one aggregation cannot use (a curve that does not rise with rate, too few distinct points, an
infinite quality such as the PSNR or dB MS-SSIM of a lossless decode) is left out of that
aggregation by name, with the reason, and the value comes from the other images.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

Method = Literal["pchip", "cubic", "akima"]
Delta = Literal["rate", "quality"]
Aggregation = Literal["per_image_mean", "average_curve"]

METHODS: tuple[str, ...] = ("pchip", "cubic", "akima")
AGGREGATIONS: tuple[str, ...] = ("per_image_mean", "average_curve")
# Named bpp ranges a caller may pass as bpp_range: FVC's low 0.06-0.5 and high 0.25-1.5 (bounds
# included; scripts that compare with FVC's figures name them), and "all", every point. They are
# not every condition's ranges: a report takes the reported condition's own (its bd_ranges, see
# ctc.report.data.bd_ranges) and passes them as (low, high).
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


class OutlierWarning(UserWarning):
    """A BD-rate whose magnitude exceeds OUTLIER_PERCENT (the result's `outlier` flag): a codec
    that needs more than twice the bits, or an interpolation that swings between crowded points
    (VCEG-M33's cubic polynomial does)."""


class LeftOutWarning(UserWarning):
    """bd_dataset left images out of an aggregation; the result names them with the reasons."""


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
    """BD over a dataset under both aggregations, with the one chosen recorded in `aggregation`.

    per_image: the BDResult of every image in the per-image mean. per_image_mean: their mean
    (percent or quality units, as BDResult.value), None when every image is left out of it.
    left_out: image -> why it is not in the per-image mean (the message the single-curve
    functions would raise, naming "anchor" or "test").
    average_curve: the BDResult of the dataset-average curves, None when they give no value
    (average_curve_error says why). average_curve_left_out: image -> why it is not averaged.
    """

    aggregation: Aggregation
    delta: Delta
    method: Method
    bpp_range: str | tuple[float, float]
    per_image: dict[str, BDResult]
    per_image_mean: float | None
    average_curve: BDResult | None
    left_out: dict[str, str] = field(default_factory=dict)
    average_curve_left_out: dict[str, str] = field(default_factory=dict)
    average_curve_error: str | None = None

    @property
    def value(self) -> float:
        """The BD value under the chosen aggregation.

        Raises ValueError when that aggregation has no value (every image left out of the
        per-image mean, or average curves that cannot be integrated), naming why.
        """
        if self.aggregation == "per_image_mean":
            if self.per_image_mean is None:
                raise ValueError(
                    "no per-image mean: every image is left out "
                    f"({describe_left_out(self.left_out)})"
                )
            return self.per_image_mean
        if self.average_curve is None:
            raise ValueError(f"no average-curve value: {self.average_curve_error}")
        return self.average_curve.value

    @property
    def outliers(self) -> list[str]:
        """Images whose BD-rate magnitude exceeds OUTLIER_PERCENT."""
        return [name for name, r in self.per_image.items() if r.outlier]

    @property
    def low_overlap(self) -> list[str]:
        """Images whose curves overlap by less than MIN_OVERLAP."""
        return [name for name, r in self.per_image.items() if r.low_overlap]


def describe_left_out(left_out: Mapping[str, str]) -> str:
    """Left-out images as one line, images with the same reason together:
    "images 'a', 'c': <reason>; image 'b': <reason>" ("" when none)."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in left_out.items():
        by_reason.setdefault(reason, []).append(name)
    return "; ".join(
        f"{'image' if len(names) == 1 else 'images'} {', '.join(map(repr, names))}: {reason}"
        for reason, names in by_reason.items()
    )


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
    """The points of `curve` whose bpp lies in `bpp_range`: (low, high), or a RANGES name.

    The target bpp decides when the curve has targets, as FVC defines its ranges on targets (a
    point aimed at 0.5 bpp that lands at 0.51 is still in FVC's low range); otherwise the
    achieved bpp decides. Both bounds are included.
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

    Sources: G. Bjøntegaard, VCEG-M33 (2001) for the cubic; the pchip of the JCT-VC/JVET common
    test conditions sheet (JCTVC-L1100); Akima (arXiv:2202.12565). See docs/bdrate.md.
    Points may come in any order; after sorting by rate, quality must rise strictly with rate.
    msssim_linear: the qualities are linear MS-SSIM, converted with msssim_db before integration.
    Raises ValueError for a curve that breaks the input rules (too few distinct points, NaN or
    infinite values, MS-SSIM of 1, non-positive rates, quality that does not rise with rate) or
    curves that do not overlap. Warns with LowOverlapWarning when the overlap is below
    MIN_OVERLAP and with OutlierWarning when |BD-rate| exceeds OUTLIER_PERCENT.
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
    """BD-rate in percent (negative: the test saves bits at equal quality); see bd_result.

    Warns with OutlierWarning when |BD-rate| > OUTLIER_PERCENT (with method="cubic" this is often
    the polynomial swinging between crowded points) and LowOverlapWarning on low overlap; raises
    ValueError as bd_result does.
    """
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
    """BD-quality in quality units, dB for PSNR (positive: the test is better); see bd_result.

    Warns with LowOverlapWarning on low overlap; raises ValueError as bd_result does.
    """
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
    per_image_mean: the arithmetic mean of the per-image BD values (FVC/NIC workbook). An image
    whose anchor or test curve breaks the input rules of bd_result in the range (fewer distinct
    points than the method needs, a quality that does not rise strictly with rate, even by
    0.01 dB, NaN or infinite values such as the PSNR of a lossless decode, linear MS-SSIM of 1,
    curves that do not overlap) is left out of the mean and named in `left_out` with the reason.
    average_curve: one BD between the dataset-average curves (most papers), whose points average
    rate and quality over images at each target bpp, or, for curves without targets, at each
    rank of the rate-sorted points. Linear MS-SSIM is averaged before conversion to dB, as papers
    plot it, so an image at MS-SSIM 1 is averaged like any other. Left out of the average, and
    named in `average_curve_left_out`: an image with a NaN or infinite value or a non-positive
    rate (its mean would be one too), and an image whose targets (or point count) differ from
    those most images share. Its rules are on the average curves, not on each image: an image
    that dips is averaged. When the average curves break the rules themselves, `average_curve`
    is None and `average_curve_error` says why.
    Points are first kept by select_range(bpp_range). Warns once with LeftOutWarning naming the
    left-out images, once with LowOverlapWarning and once with OutlierWarning naming the flagged
    images ("<average curve>" for the average).
    Raises ValueError for arguments that are wrong for every image (unknown method, delta,
    aggregation or range; different image sets) and when neither aggregation has a value, naming
    every image's reason.
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
    test = {k: select_range(test_curves[k], bpp_range) for k in anchor}

    per_image, left_out = {}, {}
    for name in anchor:
        try:
            per_image[name] = _bd(anchor[name], test[name], delta, method, msssim_linear)
        except ValueError as err:
            left_out[name] = str(err)
    average, average_left_out, average_error = _average_bd(
        anchor, test, delta, method, msssim_linear
    )
    if not per_image and average is None:
        raise ValueError(
            f"{describe_left_out(left_out)}; average curve: {average_error} "
            f"(no image can be used: BD-{delta} has no value under either aggregation)"
        )

    notes = []
    if left_out:
        notes.append(f"the per-image mean leaves out {describe_left_out(left_out)}")
    if average_left_out:
        notes.append(f"the average curve leaves out {describe_left_out(average_left_out)}")
    if average is None:
        notes.append(f"the average curve has no value: {average_error}")
    if notes:
        warnings.warn(f"BD-{delta}: " + "; ".join(notes), LeftOutWarning, stacklevel=2)
    for attribute, category, what in (
        (
            "low_overlap",
            LowOverlapWarning,
            f"curves overlap by less than {100 * MIN_OVERLAP:.0f} %",
        ),
        ("outlier", OutlierWarning, f"|BD-rate| > {OUTLIER_PERCENT:g} %"),
    ):
        flagged = [name for name, r in per_image.items() if getattr(r, attribute)]
        if average is not None and getattr(average, attribute):
            flagged.append("<average curve>")
        if flagged:
            warnings.warn(f"BD-{delta}: {what} for {flagged}", category, stacklevel=2)
    return DatasetBD(
        aggregation=aggregation,
        delta=delta,
        method=method,
        bpp_range=bpp_range,
        per_image=per_image,
        per_image_mean=float(np.mean([r.value for r in per_image.values()])) if per_image else None,
        average_curve=average,
        left_out=left_out,
        average_curve_left_out=average_left_out,
        average_curve_error=average_error,
    )


def _warned(result: BDResult) -> BDResult:
    """Warn the public function's caller when the curves overlap too little or the BD-rate is
    an outlier."""
    if result.low_overlap:
        warnings.warn(
            f"BD-{result.delta}: the curves overlap by {100 * result.overlap:.2f} % "
            f"(< {100 * MIN_OVERLAP:.0f} %), so the value describes only their shared part",
            LowOverlapWarning,
            stacklevel=3,
        )
    if result.outlier:
        why = (
            "VCEG-M33's cubic polynomial can swing far from crowded points; compare with "
            "method='pchip'"
            if result.method == "cubic"
            else "check the curves"
        )
        warnings.warn(
            f"BD-rate of {result.value:.6g} % is beyond ±{OUTLIER_PERCENT:g} % "
            f"(method {result.method!r}): {why}",
            OutlierWarning,
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


def _average_bd(
    anchor: Mapping[str, Curve],
    test: Mapping[str, Curve],
    delta: Delta,
    method: Method,
    msssim_linear: bool,
) -> tuple[BDResult | None, dict[str, str], str | None]:
    """BD of the dataset-average curves, the images left out of them, and why there is no value
    (None when there is one)."""
    left_out: dict[str, str] = {}
    for name in anchor:
        why = _average_problem(anchor[name], "anchor", msssim_linear) or _average_problem(
            test[name], "test", msssim_linear
        )
        if why:
            left_out[name] = why
    means = {}
    for which, curves in (("anchor", anchor), ("test", test)):
        usable = [name for name in anchor if name not in left_out]
        by_target = all(curves[name].target is not None for name in usable)
        keys = {name: _average_key(curves[name], by_target) for name in usable}
        counts = Counter(keys.values())
        # The targets most images share (on a tie the longer list, then the first seen).
        first_seen = {key: -i for i, key in enumerate(dict.fromkeys(keys.values()))}
        common = max(counts, key=lambda k: (counts[k], len(k), first_seen[k]), default=())
        for name, key in keys.items():
            if len(set(key)) < len(key):
                left_out[name] = f"{which}: a target is repeated in {list(key)}"
            elif key != common and by_target:
                left_out[name] = (
                    f"{which}: targets {list(key)} differ from the {list(common)} of "
                    f"{counts[common]} other image(s); the average needs the same targets"
                )
            elif key != common:
                left_out[name] = (
                    f"{which}: {len(key)} points where {counts[common]} other image(s) have "
                    f"{len(common)}; without targets the average needs the same number"
                )
        means[which] = (by_target, common)
    images = [name for name in anchor if name not in left_out]
    if not images:
        return None, left_out, "every image is left out of it"
    try:
        result = _bd(
            _mean_curve([anchor[n] for n in images], *means["anchor"]),
            _mean_curve([test[n] for n in images], *means["test"]),
            delta,
            method,
            msssim_linear,
        )
    except ValueError as err:
        return None, left_out, str(err)
    return result, left_out, None


def _average_problem(curve: Curve, which: str, msssim_linear: bool) -> str | None:
    """Why `curve` cannot be averaged with others (its mean would not be finite), or None."""
    if curve.rate.size == 0:
        return f"{which}: no point in the range"
    for i in range(curve.rate.size):
        rate, quality = curve.rate[i], curve.quality[i]
        if not math.isfinite(rate) or rate <= 0:
            return f"{which}: rates must be finite and positive, got {rate} at {_where(curve, i)}"
        if not math.isfinite(quality):
            return f"{which}: quality is {quality} at {_where(curve, i)}{_hint(quality)}"
        if msssim_linear and quality > 1:
            return f"{which}: linear MS-SSIM {quality} above 1 at {_where(curve, i)}"
    return None


def _average_key(curve: Curve, by_target: bool) -> tuple:
    """What matches an image's points with the others': its targets, or its point ranks."""
    if by_target:
        return tuple(np.round(np.sort(curve.target), 9).tolist())
    return tuple(range(curve.rate.size))


def _mean_curve(curves: list[Curve], by_target: bool, key: tuple) -> Curve:
    """Mean rate and quality over curves at each target (sorted), or at each rank by rate."""
    orders = [np.argsort(c.target if by_target else c.rate, kind="stable") for c in curves]
    rate = np.mean([c.rate[o] for c, o in zip(curves, orders, strict=True)], axis=0)
    quality = np.mean([c.quality[o] for c, o in zip(curves, orders, strict=True)], axis=0)
    return Curve(rate, quality, np.array(key, dtype=float) if by_target else None)


def _where(curve: Curve, i: int) -> str:
    """A point of a curve as a reader finds it: its target, else its rate."""
    if curve.target is not None:
        return f"target {curve.target[i]:g} (rate {curve.rate[i]:g})"
    return f"rate {curve.rate[i]:g}"


def _hint(quality: float) -> str:
    return " (infinite quality: a lossless decode)" if quality == math.inf else ""


def _bd(anchor: Curve, test: Curve, delta: Delta, method: Method, msssim_linear: bool) -> BDResult:
    """BD value and flags, without warnings (callers decide how to report the flags); raises
    ValueError when a curve breaks the input rules or the curves do not overlap."""
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
        # A cubic swinging far can give a gap beyond float range: that is an infinite BD-rate.
        value = math.inf if mean_gap > 300 else (10.0 ** float(mean_gap) - 1.0) * 100.0
        outlier = not abs(value) <= OUTLIER_PERCENT  # NaN is an outlier too
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
    for i in range(rate.size):
        for what, value in (("rate", rate[i]), ("quality", quality[i])):
            if not math.isfinite(value):
                raise ValueError(
                    f"{which}: rates and qualities must be finite, but the {what} is {value} "
                    f"at {_where(curve, i)}{_hint(value) if what == 'quality' else ''}"
                )
    if np.any(rate <= 0):
        raise ValueError(f"{which}: rates must be positive, got {rate.tolist()}")
    if msssim_linear:
        i = int(np.argmax(quality >= 1.0))
        if quality[i] == 1.0:
            raise ValueError(
                f"{which}: MS-SSIM is 1 at {_where(curve, i)} (a lossless decode): infinite in "
                "dB, where BD integrates MS-SSIM"
            )
        if quality[i] > 1.0:
            raise ValueError(
                f"{which}: linear MS-SSIM must be below 1 to convert to dB, got {quality[i]} at "
                f"{_where(curve, i)}"
            )
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
    not_rising = np.flatnonzero(np.diff(quality) <= 0)
    if not_rising.size:
        i = int(not_rising[0])
        (r0, r1), (q0, q1) = rate[i : i + 2], quality[i : i + 2]
        unit = " dB" if msssim_linear else ""
        how = (
            f"falls by {q0 - q1:.3g}{unit} from rate {r0:g} to {r1:g} ({q0:.6g} to {q1:.6g})"
            if q1 < q0
            else f"stays at {q0:.6g}{unit} from rate {r0:g} to {r1:g}"
        )
        more = f", and at {not_rising.size - 1} more point(s)" if not_rising.size > 1 else ""
        raise ValueError(f"{which}: quality must increase strictly with rate; it {how}{more}")
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
