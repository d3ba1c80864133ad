"""ctc.bdrate against the bjontegaard package (FAU-LMS) and against values worked by hand."""

import math
import warnings

import bjontegaard
import numpy as np
import pytest

from ctc.bdrate import (
    MIN_OVERLAP,
    Curve,
    LeftOutWarning,
    LowOverlapWarning,
    OutlierWarning,
    bd_dataset,
    bd_quality,
    bd_rate,
    bd_result,
    curve_problem,
    msssim_db,
    select_range,
)

METHODS = ["pchip", "cubic", "akima"]
FVC_TARGETS = [0.06, 0.12, 0.25, 0.5, 1.0, 1.5]

# (anchor rate, anchor quality, test rate, test quality): realistic curves.
CURVES = {
    # The bjontegaard README's x265 example (kbps, PSNR), points listed from high to low rate.
    "x265_presets": (
        [9487.76, 4593.60, 2486.44, 1358.24],
        [40.037, 38.615, 36.845, 34.851],
        [9787.80, 4469.00, 2451.52, 1356.24],
        [40.121, 38.651, 36.970, 34.987],
    ),
    # BPG-like anchor against a learned codec, 4 points at FVC's low targets (bpp, PSNR).
    "bpg_vs_learned_low": (
        [0.063, 0.121, 0.247, 0.512],
        [25.91, 27.62, 29.78, 32.35],
        [0.058, 0.117, 0.255, 0.493],
        [26.48, 28.31, 30.62, 33.01],
    ),
    # All six FVC targets; the test is worse at low rate and better at high rate.
    "crossing_six_points": (
        [0.061, 0.118, 0.26, 0.515, 0.97, 1.52],
        [26.1, 27.9, 30.2, 32.9, 35.6, 37.4],
        [0.059, 0.123, 0.248, 0.49, 1.03, 1.46],
        [25.7, 27.8, 30.3, 33.2, 36.4, 38.1],
    ),
    # Different numbers of points for anchor (5) and test (4).
    "unequal_counts": (
        [0.1, 0.2, 0.4, 0.8, 1.6],
        [28.0, 30.6, 33.5, 36.2, 39.0],
        [0.15, 0.3, 0.6, 1.2],
        [29.8, 32.4, 35.3, 38.1],
    ),
}


def _reference(func, curve, method):
    ar, aq, tr, tq = curve
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(ar, aq, tr, tq, method=method, require_matching_points=False)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", list(CURVES))
def test_matches_bjontegaard_package(name, method):
    curve = CURVES[name]
    if method == "cubic" and min(len(curve[0]), len(curve[2])) < 4:
        pytest.skip("cubic needs 4 points")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowOverlapWarning)
        ours_rate = bd_rate(*curve, method=method)
        ours_quality = bd_quality(*curve, method=method)
    assert ours_rate == pytest.approx(_reference(bjontegaard.bd_rate, curve, method), rel=1e-6)
    assert ours_quality == pytest.approx(_reference(bjontegaard.bd_psnr, curve, method), rel=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_msssim_linear_is_integrated_in_db(method):
    ar, tr = [0.06, 0.12, 0.25, 0.5], [0.055, 0.125, 0.24, 0.52]
    aq, tq = [0.905, 0.941, 0.965, 0.981], [0.921, 0.952, 0.972, 0.985]
    ours = bd_rate(ar, aq, tr, tq, method, msssim_linear=True)
    in_db = bd_rate(ar, msssim_db(aq), tr, msssim_db(tq), method)
    reference = _reference(bjontegaard.bd_rate, (ar, msssim_db(aq), tr, msssim_db(tq)), method)
    assert ours == pytest.approx(in_db, rel=1e-12)
    assert ours == pytest.approx(reference, rel=1e-6)
    # Integrating linear MS-SSIM would give a different answer.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LowOverlapWarning)
        linear = bd_rate(ar, aq, tr, tq, method)
    assert not ours == pytest.approx(linear, rel=1e-3)
    quality_db = bd_quality(ar, aq, tr, tq, method, msssim_linear=True)
    assert quality_db == pytest.approx(bd_quality(ar, msssim_db(aq), tr, msssim_db(tq), method))


def test_msssim_db():
    assert msssim_db(0.9) == pytest.approx(10.0)
    assert msssim_db(0.99) == pytest.approx(20.0)
    assert msssim_db(0.0) == 0.0
    np.testing.assert_allclose(msssim_db([0.9, 0.999]), [10.0, 30.0])
    for bad in (1.0, 1.2, float("nan")):
        with pytest.raises(ValueError, match="MS-SSIM"):
            msssim_db(bad)


# --- values worked by hand -------------------------------------------------------------------

ANCHOR_RATE = np.array([0.06, 0.12, 0.25, 0.5, 1.0, 1.5])
ANCHOR_PSNR = np.array([26.1, 27.9, 30.2, 32.9, 35.6, 37.4])


@pytest.mark.parametrize("method", METHODS)
def test_rate_scaled_by_0_9_is_minus_10_percent(method):
    # log10 rate shifts by log10(0.9) at every quality, whatever the interpolation.
    result = bd_result(ANCHOR_RATE, ANCHOR_PSNR, 0.9 * ANCHOR_RATE, ANCHOR_PSNR, "rate", method)
    assert result.value == pytest.approx(-10.0, abs=1e-9)
    assert result.overlap == 1.0
    assert not result.low_overlap and not result.outlier


@pytest.mark.parametrize("method", METHODS)
def test_quality_shift_of_1_db(method):
    # PSNR linear in log10 rate, slope 8 dB per decade: +1 dB everywhere.
    rate = np.array([0.06, 0.12, 0.25, 0.5])
    psnr = 30.0 + 8.0 * np.log10(rate / 0.06)
    assert bd_quality(rate, psnr, rate, psnr + 1.0, method) == pytest.approx(1.0, abs=1e-9)
    # The same quality needs log10 rate lower by 1/8: BD-rate = 10^(-1/8) - 1.
    result = bd_result(rate, psnr, rate, psnr + 1.0, "rate", method)
    assert result.value == pytest.approx(100 * (10 ** (-1 / 8) - 1), abs=1e-9)
    # Quality intervals [30, 30 + s] and [31, 31 + s], s = 8 log10(0.5/0.06): overlap (s-1)/(s+1).
    span = 8.0 * math.log10(0.5 / 0.06)
    assert result.overlap == pytest.approx((span - 1) / (span + 1))


@pytest.mark.parametrize("method", METHODS)
def test_identical_curves_give_zero(method):
    for delta in ("rate", "quality"):
        result = bd_result(ANCHOR_RATE, ANCHOR_PSNR, ANCHOR_RATE, ANCHOR_PSNR, delta, method)
        assert result.value == pytest.approx(0.0, abs=1e-12)
        assert result.overlap == 1.0


@pytest.mark.parametrize("method", ["pchip", "akima"])
def test_two_points_are_a_straight_line(method):
    # Quality 30..40 dB; log10 rate is linear in quality, averaging log10(4)/2 for the anchor and
    # log10(2)/2 for the test: BD-rate = 10^(-log10(2)/2) - 1 = 1/sqrt(2) - 1.
    value = bd_rate([1.0, 4.0], [30.0, 40.0], [1.0, 2.0], [30.0, 40.0], method)
    assert value == pytest.approx(100 * (1 / math.sqrt(2) - 1), abs=1e-9)


def test_points_in_any_order():
    order = [3, 0, 5, 1, 4, 2]
    shuffled = bd_rate(ANCHOR_RATE[order], ANCHOR_PSNR[order], 0.8 * ANCHOR_RATE, ANCHOR_PSNR)
    assert shuffled == pytest.approx(-20.0)


# --- overlap warning and outlier flag --------------------------------------------------------


def test_low_overlap_warns_and_flags():
    rate = np.array([0.1, 0.2, 0.4, 0.8])
    psnr = np.array([30.0, 32.0, 34.0, 36.0])
    # Test quality interval [33, 39] against [30, 36]: overlap 3 / 9.
    with pytest.warns(LowOverlapWarning, match="33.33 %"):
        result = bd_result(rate, psnr, rate, psnr + 3.0)
    assert result.overlap == pytest.approx(1 / 3)
    assert result.low_overlap
    with pytest.warns(LowOverlapWarning):
        bd_rate(rate, psnr, rate, psnr + 3.0)
    # BD-quality overlaps on log10 rate: [log 0.1, log 0.8] against [log 0.2, log 1.6], 2/4.
    with pytest.warns(LowOverlapWarning):
        result = bd_result(rate, psnr, 2 * rate, psnr, "quality")
    assert result.overlap == pytest.approx(0.5)


def test_overlap_at_threshold_does_not_warn():
    rate = np.array([0.1, 0.2, 0.4, 0.8])
    psnr = np.array([30.0, 32.0, 34.5, 37.0])
    # Test interval [31, 38] against [30, 37]: intersection 6 over union 8, exactly 0.75.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = bd_result(rate, psnr, rate, psnr + 1.0)
    assert result.overlap == MIN_OVERLAP
    assert not result.low_overlap


def test_outlier_flag():
    with pytest.warns(OutlierWarning, match="150 %"):
        worse = bd_result(ANCHOR_RATE, ANCHOR_PSNR, 2.5 * ANCHOR_RATE, ANCHOR_PSNR)
    assert worse.value == pytest.approx(150.0) and worse.outlier
    with pytest.warns(OutlierWarning):
        bd_rate(ANCHOR_RATE, ANCHOR_PSNR, 2.5 * ANCHOR_RATE, ANCHOR_PSNR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        better = bd_result(ANCHOR_RATE, ANCHOR_PSNR, 0.4 * ANCHOR_RATE, ANCHOR_PSNR)
    assert better.value == pytest.approx(-60.0) and not better.outlier
    # BD-quality has no percent scale: never flagged.
    quality = bd_result(ANCHOR_RATE, ANCHOR_PSNR, ANCHOR_RATE, ANCHOR_PSNR + 150.0, "quality")
    assert quality.value == pytest.approx(150.0) and not quality.outlier


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("anchor", "test", "method", "message"),
    [
        (([0.1, 0.2, 0.4], [30, 32, 34]), ([0.1, 0.2, 0.4], [31, 33, 35]), "cubic", "at least 4"),
        (([0.1], [30]), ([0.1, 0.2], [30, 32]), "pchip", "at least 2"),
        (([0.1, 0.2, 0.2], [30, 32, 34]), ([0.1, 0.2, 0.4], [30, 32, 34]), "pchip", "duplicate"),
        (([0.1, 0.2, 0.4], [30, 34, 32]), ([0.1, 0.2, 0.4], [30, 32, 34]), "pchip", "increase"),
        (([0.1, 0.2, 0.4], [30, 32, 32]), ([0.1, 0.2, 0.4], [30, 32, 34]), "akima", "increase"),
        (([0.0, 0.2, 0.4], [30, 32, 34]), ([0.1, 0.2, 0.4], [30, 32, 34]), "pchip", "positive"),
        (([-0.1, 0.2, 0.4], [30, 32, 34]), ([0.1, 0.2, 0.4], [30, 32, 34]), "pchip", "positive"),
        (([0.1, 0.2, 0.4], [30, np.nan, 34]), ([0.1, 0.2, 0.4], [30, 32, 34]), "pchip", "finite"),
        (([0.1, 0.2, 0.4], [30, 32, 34]), ([0.1, np.inf, 0.4], [30, 32, 34]), "pchip", "finite"),
        (([0.1, 0.2, 0.4], [30, 32, 34]), ([0.1, 0.2], [30, 32, 34]), "pchip", "rates but"),
        (([0.1, 0.2, 0.4], [30, 32, 34]), ([0.1, 0.2, 0.4], [35, 36, 37]), "pchip", "overlap"),
        (([0.1, 0.2, 0.4], [30, 32, 34]), ([0.1, 0.2, 0.4], [30, 32, 34]), "spline", "method"),
        (
            ([0.1, 0.2, 0.4], [30, 32, np.inf]),
            ([0.1, 0.2, 0.4], [30, 32, 34]),
            "pchip",
            "quality is inf at rate 0.4 .infinite quality: a lossless decode",
        ),
        (
            ([0.1, 0.2, 0.4, 0.8], [30, 32, 34, 33.99]),
            ([0.1, 0.2, 0.4], [30, 32, 34]),
            "pchip",
            "quality must increase strictly with rate; it falls by 0.01 from rate 0.4 to 0.8",
        ),
        (
            ([0.1, 0.2, 0.4, 0.8], [30, 31, 31, 30]),
            ([0.1, 0.2, 0.4], [30, 32, 34]),
            "pchip",
            "it stays at 31 from rate 0.2 to 0.4, and at 1 more point",
        ),
    ],
)
def test_errors(anchor, test, method, message):
    with pytest.raises(ValueError, match=message):
        bd_rate(*anchor, *test, method=method)


def test_msssim_of_one_is_named():
    rates, msssim = [0.1, 0.2, 0.4], [0.95, 0.99, 1.0]
    with pytest.raises(ValueError, match=r"test: MS-SSIM is 1 at rate 0.4 \(a lossless decode\)"):
        bd_rate(rates, [0.9, 0.95, 0.98], rates, msssim, msssim_linear=True)
    with pytest.raises(ValueError, match="below 1 to convert to dB, got 1.2 at rate 0.4"):
        bd_rate(rates, [0.9, 0.95, 0.98], rates, [0.9, 0.95, 1.2], msssim_linear=True)


def test_curve_problem_says_why_a_curve_cannot_enter_a_bd():
    assert curve_problem(([0.1, 0.2, 0.4], [30, 32, 34])) is None
    assert "increase" in curve_problem(([0.1, 0.2, 0.4], [30, 34, 32]))
    assert "at least 4" in curve_problem(([0.1, 0.2, 0.4], [30, 32, 34]), "cubic")
    assert "finite" in curve_problem(([0.1, 0.2, 0.4], [30, np.nan, 34]))
    with pytest.raises(ValueError, match="method"):
        curve_problem(([0.1, 0.2], [30, 32]), "spline")


def test_no_rate_overlap_for_bd_quality():
    with pytest.raises(ValueError, match="rate intervals"):
        bd_quality([0.1, 0.2], [30, 32], [0.3, 0.4], [30, 32])


# --- range selection ---------------------------------------------------------------------------

ACHIEVED = np.array([0.061, 0.118, 0.26, 0.515, 0.97, 1.52])


def test_select_range_uses_targets():
    curve = Curve(ACHIEVED, ANCHOR_PSNR, FVC_TARGETS)
    low = select_range(curve, "low")
    np.testing.assert_array_equal(low.target, [0.06, 0.12, 0.25, 0.5])
    np.testing.assert_array_equal(low.rate, ACHIEVED[:4])  # 0.515 kept: its target is 0.5
    np.testing.assert_array_equal(low.quality, ANCHOR_PSNR[:4])
    high = select_range(curve, "high")
    np.testing.assert_array_equal(high.target, [0.25, 0.5, 1.0, 1.5])  # 1.52 kept: target 1.5
    assert select_range(curve, "all").rate.size == 6
    assert select_range(curve, (0.1, 0.3)).target.tolist() == [0.12, 0.25]


def test_select_range_uses_achieved_bpp_without_targets():
    low = select_range((ACHIEVED, ANCHOR_PSNR), "low")
    np.testing.assert_array_equal(low.rate, [0.061, 0.118, 0.26])
    assert low.target is None
    high = select_range((ACHIEVED, ANCHOR_PSNR), "high")
    np.testing.assert_array_equal(high.rate, [0.26, 0.515, 0.97])


def test_select_range_errors():
    with pytest.raises(ValueError, match="bpp range"):
        select_range((ACHIEVED, ANCHOR_PSNR), "medium")
    with pytest.raises(ValueError, match="empty"):
        select_range((ACHIEVED, ANCHOR_PSNR), (1.0, 0.5))
    with pytest.raises(ValueError, match="targets but"):
        Curve(ACHIEVED, ANCHOR_PSNR, [0.06, 0.12])


# --- dataset aggregation -------------------------------------------------------------------------

PSNR6 = [26.0, 28.0, 30.0, 33.0, 36.0, 38.0]


def _three_image_dataset(with_targets: bool):
    """The test saves 10 % on image a, 20 % on b and 40 % on c; b needs 3x the bits of a and c.

    Per-image mean: (-10 - 20 - 40) / 3 = -23.33 %. Every image has the same PSNR at each target,
    so the average curves have that PSNR, and rates (1 + 3 + 1) r / 3 for the anchor and
    (0.9 + 2.4 + 0.6) r / 3 for the test: a ratio of 3.9 / 5 = 0.78 at every point, -22 %.
    """
    r = np.array(FVC_TARGETS)
    targets = FVC_TARGETS if with_targets else None
    anchor = {name: Curve(k * r, PSNR6, targets) for name, k in (("a", 1), ("b", 3), ("c", 1))}
    test = {name: Curve(k * r, PSNR6, targets) for name, k in (("a", 0.9), ("b", 2.4), ("c", 0.6))}
    return anchor, test


@pytest.mark.parametrize("with_targets", [True, False])
@pytest.mark.parametrize("method", METHODS)
def test_dataset_both_aggregations(with_targets, method):
    anchor, test = _three_image_dataset(with_targets)
    mean = bd_dataset(anchor, test, method=method)
    assert mean.aggregation == "per_image_mean"
    assert mean.per_image["a"].value == pytest.approx(-10.0)
    assert mean.per_image["b"].value == pytest.approx(-20.0)
    assert mean.per_image["c"].value == pytest.approx(-40.0)
    assert mean.per_image_mean == pytest.approx(-70 / 3)
    assert mean.average_curve.value == pytest.approx(-22.0)
    assert mean.value == pytest.approx(-70 / 3)
    assert mean.outliers == [] and mean.low_overlap == []

    average = bd_dataset(anchor, test, aggregation="average_curve", method=method)
    assert average.aggregation == "average_curve"
    assert average.value == pytest.approx(-22.0)
    assert average.per_image_mean == pytest.approx(-70 / 3)


def test_dataset_average_curve_is_pointwise_mean():
    anchor = {
        "a": ([0.07, 0.13, 0.24, 0.52], [26.0, 28.1, 30.3, 33.0], [0.06, 0.12, 0.25, 0.5]),
        "b": ([0.05, 0.12, 0.26, 0.47], [27.5, 29.9, 32.0, 34.6], [0.06, 0.12, 0.25, 0.5]),
    }
    # Image b's points are listed in another order: they are matched by target.
    test = {
        "a": ([0.065, 0.125, 0.25, 0.49], [26.4, 28.6, 30.9, 33.4], [0.06, 0.12, 0.25, 0.5]),
        "b": ([0.5, 0.058, 0.26, 0.115], [35.1, 27.9, 32.6, 30.1], [0.5, 0.06, 0.25, 0.12]),
    }
    result = bd_dataset(anchor, test, aggregation="average_curve")
    expected = bd_rate(
        [0.06, 0.125, 0.25, 0.495],
        [26.75, 29.0, 31.15, 33.8],
        [0.0615, 0.12, 0.255, 0.495],
        [27.15, 29.35, 31.75, 34.25],
    )
    assert result.value == pytest.approx(expected, rel=1e-9)
    quality = bd_dataset(anchor, test, delta="quality")
    assert quality.delta == "quality"
    assert quality.per_image["a"].value == pytest.approx(
        bd_quality(*anchor["a"][:2], *test["a"][:2])
    )


def test_dataset_range_selection():
    anchor, test = _three_image_dataset(with_targets=True)
    # Make the test much worse at 1.0 and 1.5 bpp only: the low range does not see it.
    worse_high = np.array([1, 1, 1, 1, 3, 3])
    test = {name: Curve(c.rate * worse_high, c.quality, c.target) for name, c in test.items()}
    low = bd_dataset(anchor, test, bpp_range="low", method="cubic")
    assert low.bpp_range == "low"
    assert low.per_image_mean == pytest.approx(-70 / 3)
    assert low.average_curve.value == pytest.approx(-22.0)
    assert bd_dataset(anchor, test, bpp_range="high").per_image_mean > 0


def test_dataset_msssim_averages_linear_values_before_db():
    rates = [0.06, 0.12, 0.25, 0.5]
    anchor = {"a": (rates, [0.90, 0.94, 0.96, 0.98]), "b": (rates, [0.80, 0.90, 0.95, 0.97])}
    test = {"a": (rates, [0.92, 0.95, 0.97, 0.985]), "b": (rates, [0.84, 0.92, 0.96, 0.975])}
    result = bd_dataset(anchor, test, delta="quality", msssim_linear=True)
    expected = bd_quality(
        rates, msssim_db([0.85, 0.92, 0.955, 0.975]), rates, msssim_db([0.88, 0.935, 0.965, 0.98])
    )
    assert result.average_curve.value == pytest.approx(expected, rel=1e-9)
    assert result.per_image["b"].value == pytest.approx(
        bd_quality(rates, msssim_db(anchor["b"][1]), rates, msssim_db(test["b"][1]))
    )


def test_dataset_flags_and_warning():
    anchor, test = _three_image_dataset(with_targets=True)
    test["b"] = Curve(2.5 * anchor["b"].rate, PSNR6, FVC_TARGETS)  # +150 %: an outlier
    psnr_shifted = np.array(PSNR6) + 6.0  # quality overlap 6/18 on image a
    test["a"] = Curve(anchor["a"].rate, psnr_shifted, FVC_TARGETS)
    with (
        pytest.warns(LowOverlapWarning, match="'a'"),
        pytest.warns(OutlierWarning, match=r"\['b'\]"),
    ):
        result = bd_dataset(anchor, test)
    assert result.outliers == ["b"]
    assert result.low_overlap == ["a"]
    assert result.per_image["b"].value == pytest.approx(150.0)


def test_dataset_errors():
    anchor, test = _three_image_dataset(with_targets=True)
    with pytest.raises(ValueError, match="same images"):
        bd_dataset(anchor, {"a": test["a"]})
    with pytest.raises(ValueError, match="aggregation"):
        bd_dataset(anchor, test, aggregation="median")
    with pytest.raises(ValueError, match="^delta must be"):
        bd_dataset(anchor, test, delta="distortion")
    with pytest.raises(ValueError, match="no images"):
        bd_dataset({}, {})
    # Every image left out of both aggregations: one error naming each image's reason.
    with pytest.raises(ValueError, match="images 'a', 'b', 'c': anchor: .*at least 4 points"):
        bd_dataset(anchor, test, bpp_range=(0.1, 0.3), method="cubic")
    untargeted = {"a": (anchor["a"].rate[:1], PSNR6[:1]), "b": (anchor["b"].rate[:1], PSNR6[:1])}
    with pytest.raises(ValueError, match="average curve: anchor: .*at least 2 points, got 1"):
        bd_dataset(untargeted, untargeted)


def test_dataset_leaves_out_images_the_average_cannot_match():
    anchor, test = _three_image_dataset(with_targets=True)
    uneven = dict(anchor, b=Curve(anchor["b"].rate[:5], PSNR6[:5], FVC_TARGETS[:5]))
    with pytest.warns(LeftOutWarning, match="average curve leaves out image 'b': anchor: targets"):
        result = bd_dataset(uneven, test)
    assert result.left_out == {} and set(result.per_image) == {"a", "b", "c"}
    assert list(result.average_curve_left_out) == ["b"]
    # a and c: the same rates, PSNR and savings of 10 % and 40 %: -25 % on the average curve.
    assert result.average_curve.value == pytest.approx(-25.0)

    repeated = dict(anchor, a=Curve(anchor["a"].rate, PSNR6, [0.06, 0.06, 0.25, 0.5, 1.0, 1.5]))
    with pytest.warns(LeftOutWarning):
        result = bd_dataset(repeated, test)
    assert "a target is repeated" in result.average_curve_left_out["a"]
    assert set(result.per_image) == {"a", "b", "c"}

    # Without targets, by rank: the image with another number of points is left out.
    untargeted = {"a": (anchor["a"].rate, PSNR6), "b": (anchor["b"].rate[:5], PSNR6[:5]),
                  "c": (anchor["c"].rate, PSNR6)}  # fmt: skip
    with pytest.warns(LeftOutWarning):
        result = bd_dataset(untargeted, untargeted)
    assert "5 points where 2 other image(s) have 6" in result.average_curve_left_out["b"]
    assert result.average_curve.value == pytest.approx(0.0, abs=1e-12)

    # An infinite PSNR cannot be averaged: that image is left out of both aggregations.
    lossless = dict(anchor, c=Curve(anchor["c"].rate, [*PSNR6[:5], np.inf], FVC_TARGETS))
    with pytest.warns(LeftOutWarning):
        result = bd_dataset(lossless, test)
    assert "quality is inf at target 1.5" in result.left_out["c"]
    assert "quality is inf at target 1.5" in result.average_curve_left_out["c"]
    assert result.per_image_mean == pytest.approx(-15.0)
    # ...but only in a range that holds the lossless point.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low = bd_dataset(lossless, test, bpp_range="low")
    assert low.left_out == {} and low.average_curve_left_out == {}


def test_a_point_repeated_exactly_counts_once():
    # A codec that cannot go below 0.1 bpp serves targets 0.06 and 0.12 with one file.
    rate = np.array([0.1, 0.1, 0.25, 0.5, 1.0])
    psnr = np.array([27.0, 27.0, 30.0, 33.0, 36.0])
    once = bd_rate(rate[1:], psnr[1:], 0.9 * rate[1:], psnr[1:], "cubic")
    assert bd_rate(rate, psnr, 0.9 * rate, psnr, "cubic") == pytest.approx(once)
    assert once == pytest.approx(-10.0)
    # Four listed points but three distinct ones: too few for the cubic.
    with pytest.raises(ValueError, match="at least 4 distinct points, got 3"):
        bd_rate(rate[:4], psnr[:4], rate[:4], psnr[:4], "cubic")
    # The same rate with another quality is still an error.
    with pytest.raises(ValueError, match="duplicate rates"):
        bd_rate([0.1, 0.1, 0.3], [27.0, 27.5, 30.0], rate, psnr)
