"""The JPEG AI / IEEE 1857.11 metric set through the registry, the store, `ctc results` and the
report's BD (PSNR-HVS(-M), MS-SSIM YUV, VIF-P, IW-SSIM, FSIM(c), NLPD)."""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image
from skimage import data as skdata

import ctc
from ctc.bdrate import bd_dataset, bd_rate
from ctc.condition import parse_condition
from ctc.metrics import COLUMNS, JPEG_AI_LUMA, METRICS, OPTIONS, MetricConfig, compute, msssim_yuv
from ctc.metrics.colour import rgb_to_yuv
from ctc.metrics.jpegai_luma import jpeg_ai_luma
from ctc.metrics.msssim import MIN_SIDE, ms_ssim_plane, to_db
from ctc.metrics.psnr_hvs import psnr_hvs
from ctc.report.data import METRICS as REPORT_METRICS
from ctc.report.data import curves
from ctc.results import ROW_COLUMNS, SUMMARY_COLUMNS, format_table, summarize
from ctc.store import COLUMN_NAMES

DATA = Path(__file__).parent / "data"
NEW = {
    "psnr_hvs": ("psnr_hvs", "psnr_hvsm"),
    "msssim_yuv": ("msssim_yuv", "msssim_yuv_db"),
    "vif_p": ("vif_p",),
    "iw_ssim": ("iw_ssim",),
    "fsim": ("fsim", "fsimc"),
    "nlpd": ("nlpd",),
}


@pytest.fixture(scope="module")
def pair():
    ref = skdata.astronaut()
    dec = np.asarray(Image.open(DATA / "astronaut-jpeg-q30.png").convert("RGB"))
    return ref, dec


def config(metrics, matrix="bt709", depth=10):
    return MetricConfig(matrix, depth, metrics)


def test_the_new_metrics_are_registered_with_store_and_report_columns():
    for name, columns in NEW.items():
        assert name in METRICS and COLUMNS[name] == columns
        assert set(columns) <= set(COLUMN_NAMES)
    assert OPTIONS["msssim_yuv"]["chroma"] == ("420", "444")
    assert OPTIONS["nlpd"]["variant"] == ("jpeg_ai", "matlab")
    assert set(JPEG_AI_LUMA) == {"psnr_hvs", "vif_p", "iw_ssim", "nlpd"}
    labels = {m.column: m for m in REPORT_METRICS}
    expected = {
        "psnr_hvs": "PSNR-HVS", "psnr_hvsm": "PSNR-HVS-M", "msssim_yuv": "MS-SSIM YUV",
        "vif_p": "VIF-P", "iw_ssim": "IW-SSIM", "fsim": "FSIM", "fsimc": "FSIMc", "nlpd": "NLPD",
    }  # fmt: skip
    assert {c: labels[c].label for c in expected} == expected
    assert labels["msssim_yuv"].msssim and labels["nlpd"].lower_better
    assert labels["nlpd"].axis == "NLPD (lower is better)"
    assert not any(m.lower_better for m in REPORT_METRICS if m.column != "nlpd")


def test_a_condition_selects_them_with_their_options():
    data = yaml.safe_load((Path(ctc.__file__).parent / "conditions" / "fvc.yaml").read_text())
    data["metrics"] = {"psnr_hvs": {}, "msssim_yuv": {"chroma": "444"}, "nlpd": {}}
    cond = parse_condition(data, "test")
    assert cond.metrics == {
        "psnr_hvs": {},
        "msssim_yuv": {"chroma": "444", "downsample": "symmetric"},
        "nlpd": {"variant": "jpeg_ai"},
    }


def test_psnr_hvs_uses_the_jpeg_ai_luma_whatever_the_condition(pair):
    ref, dec = pair
    out = compute(ref, dec, config({"psnr_hvs": {}}))
    assert set(out) == {"psnr_hvs", "psnr_hvsm"}
    assert out["psnr_hvs"] == pytest.approx(33.01805, abs=1e-4)
    assert out["psnr_hvsm"] == pytest.approx(38.59610, abs=1e-4)
    assert compute(ref, dec, config({"psnr_hvs": {}}, "bt601", 8)) == out
    assert out == dict(
        zip(("psnr_hvs", "psnr_hvsm"), psnr_hvs(jpeg_ai_luma(ref), jpeg_ai_luma(dec)), strict=True)
    )
    assert compute(ref, ref, config({"psnr_hvs": {}})) == {"psnr_hvs": 100.0, "psnr_hvsm": 100.0}


def test_msssim_yuv_weights_y_u_v_6_1_1_on_the_conditions_planes(pair):
    ref, dec = (p[:200, :232] for p in pair)
    for matrix, depth, chroma in (("bt709", 10, "420"), ("bt601", 8, "444")):
        out = compute(ref, dec, config({"msssim_yuv": {"chroma": chroma}}, matrix, depth))
        planes = zip(
            rgb_to_yuv(ref, matrix, depth, chroma),
            rgb_to_yuv(dec, matrix, depth, chroma),
            strict=True,
        )
        y, u, v = (ms_ssim_plane(a, b, float((1 << depth) - 1)) for a, b in planes)
        assert out["msssim_yuv"] == pytest.approx((6 * y + u + v) / 8, abs=1e-12)
        assert out["msssim_yuv_db"] == pytest.approx(to_db(out["msssim_yuv"]), abs=1e-12)
        assert 0.9 < out["msssim_yuv"] < 1
    default = compute(ref, dec, config({"msssim_yuv": {}}))
    assert default["msssim_yuv"] == msssim_yuv(ref, dec, "bt709", 10, "420")
    same = compute(ref, ref, config({"msssim_yuv": {}}))
    assert same == {"msssim_yuv": 1.0, "msssim_yuv_db": math.inf}


def test_msssim_yuv_of_a_small_image_pads_its_420_chroma_planes(pair):
    """A 60 x 90 image has 30 x 45 chroma planes, far below MS-SSIM's 161: each is mirror-padded
    (as small luma planes are); the score stays a similarity of the image itself."""
    ref, dec = (p[200:260, 210:300] for p in pair)
    cb = rgb_to_yuv(ref, "bt709", 8, "420")[1]
    assert cb.shape == (30, 45) and max(cb.shape) < MIN_SIDE
    value = msssim_yuv(ref, dec, "bt709", 8, "420")
    assert 0.8 < value < 1
    assert msssim_yuv(ref, ref, "bt709", 8, "420") == 1.0
    worse = np.clip(dec.astype(int) + np.random.default_rng(0).normal(0, 20, dec.shape), 0, 255)
    assert msssim_yuv(ref, worse.astype(np.uint8), "bt709", 8, "420") < value
    tiny = msssim_yuv(ref[:3, :5], dec[:3, :5], "bt709", 8, "420")  # 2 x 3 chroma
    assert 0 < tiny <= 1


# The four metrics of their own modules, through the registry: which planes, peak and options
# each gets, which columns it fills.


@pytest.fixture(scope="module")
def crop(pair):
    return tuple(np.ascontiguousarray(p[180:308, 200:328]) for p in pair)


def test_vif_p_through_the_registry(crop):
    from ctc.metrics import vif

    ref, dec = crop
    out = compute(ref, dec, config({"vif_p": {}}, "bt601", 8))
    assert out["vif_p"] == vif.vif_p(jpeg_ai_luma(ref), jpeg_ai_luma(dec), peak=1023.0)
    assert 0 < out["vif_p"] < 1
    assert compute(ref, ref, config({"vif_p": {}}))["vif_p"] == pytest.approx(1.0, abs=1e-6)


def test_iw_ssim_through_the_registry(crop):
    from ctc.metrics import iwssim

    ref, dec = crop
    out = compute(ref, dec, config({"iw_ssim": {}}, "bt601", 8))
    assert out["iw_ssim"] == iwssim.iw_ssim(jpeg_ai_luma(ref), jpeg_ai_luma(dec), peak=1023.0)
    assert 0 < out["iw_ssim"] < 1
    assert compute(ref, ref, config({"iw_ssim": {}}))["iw_ssim"] == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("variant", OPTIONS["fsim"]["variant"])
def test_fsim_through_the_registry(crop, variant):
    from ctc.metrics import fsim

    ref, dec = crop
    out = compute(ref, dec, config({"fsim": {"variant": variant}}))
    expected = fsim.fsim(ref, dec, variant=variant)
    assert (out["fsim"], out["fsimc"]) == tuple(float(v) for v in expected)
    assert 0 < out["fsimc"] <= out["fsim"] < 1
    same = compute(ref, ref, config({"fsim": {}}))
    assert same == pytest.approx({"fsim": 1.0, "fsimc": 1.0}, abs=1e-6)


@pytest.mark.parametrize("variant", OPTIONS["nlpd"]["variant"])
def test_nlpd_through_the_registry(crop, variant):
    from ctc.metrics import nlpd

    ref, dec = crop
    out = compute(ref, dec, config({"nlpd": {"variant": variant}}, "bt601", 8))
    expected = nlpd.nlpd(jpeg_ai_luma(ref), jpeg_ai_luma(dec), peak=1023.0, variant=variant)
    assert out["nlpd"] == expected and out["nlpd"] > 0
    assert compute(ref, ref, config({"nlpd": {"variant": variant}}))["nlpd"] == pytest.approx(
        0.0, abs=1e-9
    )


# Results tables and the report's BD.


def _row(image, target, bpp, nlpd):
    return {"image": image, "target_bpp": target, "bpp": bpp, "nlpd": nlpd}


def test_bd_integrates_minus_nlpd_so_that_less_distortion_saves_rate():
    """NLPD falls as the rate rises; BD needs a rising quality, so the report integrates -NLPD:
    a test codec reaching the anchor's NLPD at 20 % less rate has a BD-rate of -20 %."""
    nlpd = next(m for m in REPORT_METRICS if m.column == "nlpd")
    targets = (0.25, 0.5, 0.75, 1.0)
    anchor = [
        _row(i, t, t * k, 0.4 / (t * k) ** 0.5) for i, k in (("a", 1), ("b", 1.1)) for t in targets
    ]
    test = [{**r, "bpp": r["bpp"] * 0.8} for r in anchor]
    a, t = curves(anchor, nlpd), curves(test, nlpd)
    assert all(np.all(np.diff(c.quality) > 0) for c in a.values())  # -NLPD rises
    assert a["a"].quality[0] == pytest.approx(-0.8)
    result = bd_dataset(a, t)
    assert result.per_image_mean == pytest.approx(-20.0, abs=1e-9)
    with pytest.raises(ValueError, match="increase strictly"):  # NLPD itself cannot be used
        bd_rate(a["a"].rate, -a["a"].quality, t["a"].rate, -t["a"].quality)


def test_results_tables_show_the_new_means_only_where_there_are_values():
    base = {
        "condition": "c", "codec": "jpeg", "codec_version": "v", "target_bpp": 1.0,
        "condition_hash": "h", "bpp": 1.0, "in_tolerance": 1, "sse_rgb": None,
        "psnr_rgb": 30.0, "encode_seconds": 0.1, "decode_seconds": 0.1,
    }  # fmt: skip
    old = [{**base, "image": "a"}]  # a row of an older CSV: no new keys at all
    (line,) = summarize(old, {})
    assert line["nlpd"] is None and line["psnr_hvs"] is None
    text = format_table([line], SUMMARY_COLUMNS)
    assert "psnr_rgb" in text and "nlpd" not in text and "fsim" not in text
    new = [
        {**base, "image": "a", "psnr_hvs": 40.0, "nlpd": 0.2, "msssim_yuv_db": math.inf},
        {**base, "image": "b", "psnr_hvs": 100.0, "nlpd": 0.4, "msssim_yuv_db": 20.0},
    ]
    (line,) = summarize(new, {})
    assert line["psnr_hvs"] == 70.0 and line["nlpd"] == pytest.approx(0.3)
    assert line["left_out"] == "inf: msssim_yuv_dB 1"
    header = format_table([line], SUMMARY_COLUMNS).splitlines()[0].split()
    assert {"psnr_hvs", "nlpd", "msssim_yuv_dB"} <= set(header)
    assert not {"psnr_hvsm", "vif_p", "iw_ssim", "fsim", "fsimc"} & set(header)
    assert "psnr_hvs" in format_table(new, ROW_COLUMNS).splitlines()[0]
