import math

import pytest

from ctc.metrics.aggregate import dataset_psnr
from ctc.results import format_table, summarize


def rows(bpps, sses):
    return [
        {
            "condition": "c",
            "codec": "jpeg",
            "codec_version": "v",
            "target_bpp": 1.0,
            "condition_hash": "h",
            "image": f"im{i}",
            "bpp": bpp,
            "in_tolerance": int(0.95 <= bpp <= 1.05),
            "sse_rgb": sse,
            "n_values": 300,
            "psnr_rgb": 10 * math.log10(255**2 * 300 / sse),
            "psnr_yuv": None,
            "msssim_rgb_db": None,
            "msssim_y_db": None,
            "vmaf": None,
            "encode_seconds": 0.1,
            "decode_seconds": 0.2,
        }  # fmt: skip
        for i, (bpp, sse) in enumerate(zip(bpps, sses, strict=True))
    ]


def record(scope):
    return {"h": {"tolerance": {"min_percent": -5, "max_percent": 5}, "tolerance_scope": scope}}


def test_per_image_scope_counts_images_in_tolerance():
    (line,) = summarize(rows([0.9, 1.0, 1.1], [300, 600, 900]), record("per_image"))
    assert line["in_tolerance"] == "1/3" and line["images"] == 3
    assert line["bpp"] == pytest.approx(1.0) and line["deviation_percent"] == pytest.approx(0)
    assert line["psnr_clic"] == pytest.approx(dataset_psnr([300, 600, 900], [300] * 3))
    assert line["psnr_clic"] != pytest.approx(line["psnr_rgb"])
    assert line["vmaf"] is None and line["decode_seconds"] == pytest.approx(0.2)


def test_dataset_average_scope_checks_the_mean_rate():
    (line,) = summarize(rows([0.9, 1.0, 1.1], [300] * 3), record("dataset_average"))
    assert line["in_tolerance"] == "avg ok"
    (line,) = summarize(rows([0.9, 1.0, 1.3], [300] * 3), record("dataset_average"))
    assert line["in_tolerance"] == "avg out"


def test_table_formats_missing_and_infinite_values():
    text = format_table([{"a": None, "b": math.inf, "c": 0.123456, "d": 41.2345}], "abcd")
    assert text.splitlines()[1].split() == ["-", "inf", "0.1235", "41.23"]


def test_means_leave_out_infinite_values_and_say_how_many():
    group = rows([1.0, 1.0, 1.0], [300, 600, 900])
    group[0].update(psnr_rgb=math.inf, msssim_rgb_db=math.inf, sse_rgb=0)  # a lossless decode
    group[1].update(msssim_rgb_db=30.0, vmaf=math.nan)
    group[2].update(msssim_rgb_db=20.0)
    (line,) = summarize(group, record("per_image"))
    assert line["psnr_rgb"] == pytest.approx((group[1]["psnr_rgb"] + group[2]["psnr_rgb"]) / 2)
    assert line["msssim_rgb_db"] == pytest.approx(25.0)
    assert line["vmaf"] is None  # no finite value: no mean
    # vmaf: NaN in one row, empty in the two others (undefined there, as VIF-P of a flat image)
    assert line["left_out"] == "inf: psnr_rgb 1, msssim_rgb_dB 1; nan: vmaf 1; undefined: vmaf 2"
    # The dataset PSNR pools squared errors: the lossless image counts, with 0.
    assert line["psnr_clic"] == pytest.approx(dataset_psnr([0, 600, 900], [300] * 3))
    assert summarize(rows([1.0], [300]), record("per_image"))[0]["left_out"] is None

    every = rows([1.0, 1.0], [300, 300])
    for r in every:
        r.update(psnr_rgb=math.inf, sse_rgb=0)
    (line,) = summarize(every, record("per_image"))
    assert line["psnr_rgb"] is None and line["left_out"] == "inf: psnr_rgb 2"
    text = format_table([line], ["psnr_rgb", "left_out"])
    assert text.splitlines()[1].split() == ["-", "inf:", "psnr_rgb", "2"]
