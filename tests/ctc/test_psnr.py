import math

import numpy as np
import pytest

from ctc.metrics import MetricConfig, compute
from ctc.metrics.aggregate import dataset_psnr
from ctc.metrics.psnr import psnr, psnr_rgb, psnr_yuv, sse


def test_psnr_of_a_known_error():
    a = np.full((4, 4, 3), 100, np.uint8)
    b = a + 1
    assert psnr_rgb(a, b) == pytest.approx(10 * math.log10(255**2))
    assert psnr_rgb(a, a) == math.inf
    assert psnr(np.zeros(4, np.uint16), np.full(4, 2, np.uint16), 1023) == pytest.approx(
        10 * math.log10(1023**2 / 4)
    )


def test_sse_is_exact_on_large_errors():
    a = np.zeros((300, 300, 3), np.uint8)
    b = np.full_like(a, 255)
    assert sse(a, b) == 300 * 300 * 3 * 255**2


def test_yuv_psnr_is_611_weighted(crops):
    a = crops["astro"]
    b = np.clip(a.astype(int) + np.arange(a.size).reshape(a.shape) % 7 - 3, 0, 255).astype(np.uint8)
    for chroma in ("444", "420"):
        r = psnr_yuv(a, b, "bt709", 10, chroma)
        assert r["psnr_yuv"] == pytest.approx((6 * r["psnr_y"] + r["psnr_u"] + r["psnr_v"]) / 8)
        assert all(math.isfinite(v) for v in r.values())


def test_dataset_psnr_pools_squared_errors():
    # two images: one nearly lossless, one poor; CLIC's pooled PSNR is not the mean of PSNRs
    a1, b1 = np.zeros((10, 10, 3), np.uint8), np.zeros((10, 10, 3), np.uint8)
    b1[0, 0, 0] = 1
    a2, b2 = np.zeros((20, 10, 3), np.uint8), np.full((20, 10, 3), 10, np.uint8)
    pooled = dataset_psnr([sse(a1, b1), sse(a2, b2)], [a1.size, a2.size])
    mse = (1 + 100 * a2.size) / (a1.size + a2.size)
    assert pooled == pytest.approx(10 * math.log10(255**2 / mse))
    assert pooled < (psnr_rgb(a1, b1) + psnr_rgb(a2, b2)) / 2
    with pytest.raises(ValueError):
        dataset_psnr([], [])


def test_compute_fills_the_selected_columns_only(crops):
    a = crops["coffee"]
    b = (a // 4) * 4
    out = compute(a, b, MetricConfig("bt601", 8, {"psnr_rgb": {}, "psnr_yuv": {"chroma": "420"}}))
    assert set(out) == {"psnr_rgb", "sse_rgb", "n_values", "psnr_y", "psnr_u", "psnr_v", "psnr_yuv"}
    assert out["n_values"] == a.size and out["sse_rgb"] == sse(a, b)
    with pytest.raises(ValueError, match="decoded"):
        compute(a, b[:-1], MetricConfig())
