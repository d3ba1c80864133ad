"""Aggregates that one image must not break: the dataset BD-rates (both aggregations), the
report's BD cells and the means of `ctc results`, on a real run with a flat image that a codec
codes losslessly and on curves built to dip, to collapse to one point, or to crowd."""

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from ctc_testing import quiet_bd
from PIL import Image

from ctc.bdrate import (
    OUTLIER_PERCENT,
    Curve,
    LeftOutWarning,
    OutlierWarning,
    bd_dataset,
    bd_quality,
    bd_rate,
    describe_left_out,
    msssim_db,
)
from ctc.cli import main
from ctc.report import build_report
from ctc.report.data import METRICS, ReportData
from ctc.report.summary import average_curve, bd_rows
from ctc.results import summarize
from ctc.store import Store

TARGETS = [0.06, 0.12, 0.25, 0.5, 1.0, 1.5]
METHODS = ["pchip", "cubic", "akima"]


# --- a real run: a flat image that one codec codes losslessly ------------------------------


@pytest.fixture()
def flat_run(tmp_path, crops, test_codecs):
    """jpeg against quantzlib on three photo crops and one black image. quantzlib rounds 0 to 0
    at every step, so it codes the black image losslessly (PSNR inf, MS-SSIM 1) at every target;
    JPEG does too, as black has no chroma to lose."""
    from ctc_testing import write_condition

    from ctc.runner import run

    images = tmp_path / "images"
    images.mkdir()
    for name, pixels in crops.items():
        Image.fromarray(pixels).save(images / f"{name}.png")
    Image.fromarray(np.zeros((48, 64, 3), np.uint8)).save(images / "flat.png")
    condition = write_condition(
        tmp_path, targets_bpp=[1.0, 2.0, 4.0], metrics={"psnr_rgb": {}, "msssim_rgb": {}},
        tolerance={"min_percent": -30, "max_percent": 30, "scope": "per_image"},
    )  # fmt: skip
    summary = run(str(condition), codecs=["jpeg", "quantzlib"], dataset=str(images),
                  out=tmp_path / "out", progress=False)  # fmt: skip
    assert not summary.failures
    return tmp_path / "out"


def test_flat_lossless_image_keeps_the_dataset_bd(flat_run, tmp_path):
    with Store(flat_run) as store:
        rows = store.results()
    flat = [r for r in rows if r["image"] == "flat" and r["codec"] == "quantzlib"]
    assert flat and all(r["msssim_rgb"] == 1.0 and r["psnr_rgb"] == math.inf for r in flat)

    with quiet_bd():
        report = build_report(flat_run, ["jpeg"], tmp_path / "r.xlsx", measure=False, plots=False)
    by_metric = {r.metric.column: r for r in report.bd}
    msssim, psnr = by_metric["msssim_rgb"].cells["all"], by_metric["psnr_rgb"].cells["all"]

    # MS-SSIM: the flat image has no dB value, so no per-image BD; the others still give one.
    assert msssim.per_image_mean is not None and msssim.error is None
    assert "MS-SSIM is 1" in msssim.left_out["flat"] and "lossless" in msssim.left_out["flat"]
    assert set(msssim.per_image) == {"astro", "coffee", "cat"}
    # The average curve averages linear MS-SSIM, 1 included: its mean stays below 1.
    assert msssim.average_curve is not None and "flat" not in msssim.average_curve_left_out
    curves = {codec: _curves(rows, codec, "msssim_rgb") for codec in ("jpeg", "quantzlib")}
    with quiet_bd():  # these small crops give low-overlap, outlier curves: flagged, not checked
        mean_of_three = np.mean(
            [
                bd_rate(*curves["jpeg"][i][:2], *curves["quantzlib"][i][:2], msssim_linear=True)
                for i in ("astro", "coffee", "cat")
            ]
        )
    assert msssim.per_image_mean == pytest.approx(mean_of_three, rel=1e-12)
    average = {
        codec: [
            np.mean([curves[codec][i][k] for i in ("astro", "coffee", "cat", "flat")], axis=0)
            for k in (0, 1)
        ]
        for codec in curves
    }
    assert np.all(average["quantzlib"][1] < 1.0)
    with quiet_bd():
        expected = bd_rate(*average["jpeg"], *average["quantzlib"], msssim_linear=True)
    assert msssim.average_curve == pytest.approx(expected, rel=1e-12)

    # PSNR: infinite at every point of the flat image; left out of both aggregations by name
    # (not as "metric missing"), the other images give both values.
    assert psnr.per_image_mean is not None and psnr.average_curve is not None
    assert "infinite" in psnr.left_out["flat"] and "infinite" in psnr.average_curve_left_out["flat"]
    assert by_metric["psnr_rgb"].left_out == []
    assert "flat" in psnr.left_out_note and "per-image mean" in psnr.left_out_note


def test_ctc_results_means_leave_out_infinite_values(flat_run, capsys):
    with Store(flat_run) as store:
        rows = store.results()
    lines = summarize(rows, {})
    assert len(lines) == 6
    for line in lines:
        for metric in ("psnr_rgb", "msssim_rgb_db"):
            assert math.isfinite(line[metric])
        finite = [
            r["psnr_rgb"]
            for r in rows
            if (r["codec"], r["target_bpp"]) == (line["codec"], line["target_bpp"])
            and math.isfinite(r["psnr_rgb"])
        ]
        assert line["psnr_rgb"] == pytest.approx(np.mean(finite))
        assert line["left_out"] == "inf: psnr_rgb 1, msssim_rgb_dB 1"

    assert main(["results", str(flat_run)]) == 0
    out = capsys.readouterr().out
    summary = out.split("\n\n")[1].splitlines()
    assert "left_out" in summary[0]
    # Per-row values may be inf (that is the measurement); no mean is.
    for line in summary[1:]:
        before_note = line.split("inf:")[0]
        assert "inf" not in before_note.split(), line


def _curves(rows, codec, column):
    out = {}
    for r in sorted(rows, key=lambda r: r["target_bpp"]):
        if r["codec"] == codec:
            c = out.setdefault(r["image"], ([], [], []))
            c[0].append(r["bpp"])
            c[1].append(r[column])
            c[2].append(r["target_bpp"])
    return {k: tuple(np.array(v) for v in c) for k, c in out.items()}


# --- a slight dip, a single distinct point -------------------------------------------------


def _dataset(scales=(1.0, 2.0, 0.7), savings=(0.8, 0.7, 0.9)):
    """Three images; at each target the test needs `saving` of the anchor's bits."""
    anchor, test = {}, {}
    for name, scale, saving in zip("abc", scales, savings, strict=True):
        rate = scale * np.array(TARGETS)
        psnr = 24 + 8 * np.log10(rate / 0.06)
        anchor[name] = Curve(rate, psnr, TARGETS)
        test[name] = Curve(saving * rate, psnr, TARGETS)
    return anchor, test


@pytest.mark.parametrize("method", METHODS)
def test_a_dip_of_a_hundredth_of_a_db_leaves_the_image_out_of_the_per_image_mean(method):
    anchor, test = _dataset()
    dipped = test["c"].quality.copy()
    dipped[4] = dipped[3] - 0.01  # 1.0 bpp: 0.01 dB below the 0.5 bpp point
    test["c"] = Curve(test["c"].rate, dipped, TARGETS)

    with pytest.warns(LeftOutWarning, match="'c'"):
        result = bd_dataset(anchor, test, method=method)
    assert set(result.per_image) == {"a", "b"}
    assert result.per_image_mean == pytest.approx((-20.0 - 30.0) / 2)
    assert list(result.left_out) == ["c"]
    assert "test: quality must increase strictly with rate" in result.left_out["c"]
    assert "falls by 0.01" in result.left_out["c"]
    # The average curve uses every measured point, the dipping image's included.
    assert result.average_curve_left_out == {}
    mean_rate = {k: np.mean([c.rate for c in d.values()], axis=0) for k, d in
                 (("anchor", anchor), ("test", test))}  # fmt: skip
    mean_psnr = {k: np.mean([c.quality for c in d.values()], axis=0) for k, d in
                 (("anchor", anchor), ("test", test))}  # fmt: skip
    expected = bd_rate(mean_rate["anchor"], mean_psnr["anchor"], mean_rate["test"],
                       mean_psnr["test"], method)  # fmt: skip
    assert result.average_curve.value == pytest.approx(expected, rel=1e-12)
    assert result.value == result.per_image_mean


def test_a_single_distinct_point_leaves_only_that_image_out_in_the_report():
    # VMAF of a codec that serves every target with one file for image c.
    rows = {"anchor": [], "test": []}
    for name, scale, saving in zip("abc", (1.0, 2.0, 0.7), (0.8, 0.7, 0.9), strict=True):
        for target in TARGETS:
            rate = scale * target
            vmaf = 30 + 12 * math.log10(rate / 0.06)
            rows["anchor"].append(_vmaf_row(name, target, rate, vmaf))
            if name == "c":
                rate, vmaf = scale * 0.25, 30 + 12 * math.log10(scale * 0.25 / 0.06)
                rows["test"].append(_vmaf_row(name, target, rate, vmaf))
            else:
                rows["test"].append(_vmaf_row(name, target, saving * rate, vmaf))
    fvc = {"name": "unit", "bd_ranges": {"low": [0.06, 0.5], "high": [0.25, 1.5]}}
    data = ReportData(Path("."), fvc, "h", rows, {}, [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the report records; it does not warn
        (row,) = bd_rows(data, ["anchor"])
    assert row.metric.column == "vmaf"
    for bpp_range in ("low", "high", "all"):
        cell = row.cells[bpp_range]
        assert cell.error is None, cell.error
        assert cell.per_image_mean == pytest.approx(-25.0)
        assert "at least 2 distinct points, got 1" in cell.left_out["c"]
        assert cell.average_curve is not None and cell.average_curve_left_out == {}
        assert cell.images == 3 and set(cell.per_image) == {"a", "b"}


def _vmaf_row(image, target, bpp, vmaf):
    return {"image": image, "target_bpp": target, "bpp": bpp, "vmaf": vmaf}


# --- cubic on a crowded curve ------------------------------------------------------------------

CROWDED = ([0.06, 0.12, 0.25, 0.5], [28.0, 30.5, 33.0, 35.5], [0.06, 0.12, 0.25, 0.5],
           [28.0, 30.0, 30.01, 36.0])  # fmt: skip


def test_cubic_on_a_crowded_curve_warns():
    with pytest.warns(OutlierWarning, match="cubic"):
        value = bd_rate(*CROWDED, method="cubic")
    assert value > 100 * OUTLIER_PERCENT
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert abs(bd_rate(*CROWDED, method="pchip")) < OUTLIER_PERCENT


def test_cubic_outliers_reach_the_report_cell():
    ar, aq, tr, tq = CROWDED
    rows = {"anchor": [], "test": []}
    for name, crowded in (("a", False), ("b", True)):
        for target, rate, q_a, q_t in zip(ar, tr, aq, tq, strict=True):
            rows["anchor"].append({"image": name, "target_bpp": target, "bpp": rate, "vmaf": q_a})
            q = q_t if crowded else q_a + 1.0
            rows["test"].append({"image": name, "target_bpp": target, "bpp": rate, "vmaf": q})
    data = ReportData(Path("."), {"name": "unit"}, "h", rows, {}, [])
    (row,) = bd_rows(data, ["anchor"], method="cubic")
    cell = row.cells["all"]
    assert cell.outliers == ["b"] and cell.per_image["b"] > OUTLIER_PERCENT
    with pytest.warns(OutlierWarning, match="'b'"):
        bd_dataset(
            {n: Curve(ar, aq) for n in "ab"},
            {"a": Curve(tr, np.array(aq) + 1.0), "b": Curve(tr, tq)},
            method="cubic",
        )


# --- the average curve: infinite and linear-MS-SSIM points, targets, failures -------------


def test_msssim_one_stays_in_the_average_curve_below_one():
    rates = [0.06, 0.12, 0.25, 0.5]
    anchor = {"a": (rates, [0.90, 0.94, 0.96, 0.98]), "flat": (rates, [0.99, 0.999, 1.0, 1.0])}
    test = {"a": (rates, [0.92, 0.95, 0.97, 0.985]), "flat": (rates, [0.995, 1.0, 1.0, 1.0])}
    with quiet_bd():
        result = bd_dataset(anchor, test, delta="quality", msssim_linear=True)
    assert "MS-SSIM is 1" in result.left_out["flat"]
    assert result.average_curve_left_out == {}
    expected = bd_quality(
        rates,
        msssim_db([0.945, 0.9695, 0.98, 0.99]),
        rates,
        msssim_db([0.9575, 0.975, 0.985, 0.9925]),
    )
    assert result.average_curve.value == pytest.approx(expected, rel=1e-12)
    assert result.per_image_mean == pytest.approx(
        bd_quality(rates, anchor["a"][1], rates, test["a"][1], msssim_linear=True)
    )


def test_every_image_lossless_at_a_target_has_no_average_point():
    rows = [
        {"image": i, "target_bpp": t, "bpp": t, "msssim_rgb": q}
        for i in ("a", "b")
        for t, q in ((0.25, 0.97), (0.5, 1.0))
    ]
    metric = next(m for m in METRICS if m.column == "msssim_rgb")
    points = average_curve(rows, metric)
    assert [p.target for p in points] == [0.25]
    assert points[0].quality == pytest.approx(float(msssim_db(0.97)))


def test_images_with_other_targets_are_left_out_of_the_average_curve_only():
    anchor, test = _dataset()
    # Image b lost its 1.5 bpp point (a failed job): it still has a per-image BD-rate.
    b = anchor["b"]
    anchor["b"] = Curve(b.rate[:5], b.quality[:5], TARGETS[:5])
    with pytest.warns(LeftOutWarning, match="average curve"):
        result = bd_dataset(anchor, test)
    assert set(result.per_image) == {"a", "b", "c"} and result.left_out == {}
    assert "targets" in result.average_curve_left_out["b"]
    two = bd_dataset({k: anchor[k] for k in "ac"}, {k: test[k] for k in "ac"})
    assert result.average_curve.value == pytest.approx(two.average_curve.value, rel=1e-12)


def test_an_average_curve_that_cannot_be_used_keeps_the_per_image_mean():
    # Rate control swapped image b's two top points (target 0.25 landed at 0.6 bpp): each image
    # is a rising curve, but the average at 0.25 and at 0.5 has the same quality.
    targets = [0.06, 0.12, 0.25, 0.5]
    anchor = {
        "a": Curve([0.06, 0.12, 0.25, 0.5], [30.0, 32.0, 34.0, 36.0], targets),
        "b": Curve([0.06, 0.12, 0.6, 0.45], [30.0, 32.0, 37.0, 35.0], targets),
    }
    test = {k: Curve(0.9 * c.rate, c.quality, targets) for k, c in anchor.items()}
    with quiet_bd():
        result = bd_dataset(anchor, test, aggregation="average_curve")
    assert result.per_image_mean == pytest.approx(-10.0)
    assert result.average_curve is None
    assert "quality must increase" in result.average_curve_error
    with pytest.raises(ValueError, match="no average-curve value.*quality must increase"):
        _ = result.value


def test_no_image_left_raises_naming_every_image():
    anchor, test = _dataset()
    for name in test:
        q = test[name].quality.copy()
        q[2] = q[1]  # a flat step in every test curve, and so in the average
        test[name] = Curve(test[name].rate, q, TARGETS)
    with pytest.raises(ValueError) as caught:
        bd_dataset(anchor, test)
    message = str(caught.value)
    assert message.startswith("image 'a': test: quality must increase")
    for name in "bc":
        assert f"image '{name}': test: quality must increase" in message
    assert "average curve: test: quality must increase" in message


def test_describe_left_out_groups_images_by_reason():
    text = describe_left_out({"a": "x", "b": "y", "c": "x"})
    assert text == "images 'a', 'c': x; image 'b': y"
    assert describe_left_out({}) == ""
