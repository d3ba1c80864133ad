import numpy as np
import pytest
from PIL import Image

from ctc.metrics.colour import rgb_to_yuv


def pixel(r, g, b):
    return np.array([[[r, g, b]]], dtype=np.uint8)


@pytest.mark.parametrize("depth,peak,mid", [(8, 255, 128), (10, 1023, 512)])
def test_white_black_and_grey_are_neutral(depth, peak, mid):
    for matrix in ("bt709", "bt601"):
        y, u, v = rgb_to_yuv(pixel(255, 255, 255), matrix, depth)
        assert (y.item(), u.item(), v.item()) == (peak, mid, mid)
        y, u, v = rgb_to_yuv(pixel(0, 0, 0), matrix, depth)
        assert (y.item(), u.item(), v.item()) == (0, mid, mid)


def test_bt709_red_follows_h273_full_range():
    # E'Y = 0.2126, E'PB = -0.2126 / 1.8556, E'PR = 0.5; 10 bits: Round(1023 * x + 512).
    y, u, v = rgb_to_yuv(pixel(255, 0, 0), "bt709", 10)
    assert y.item() == round(1023 * 0.2126)
    assert u.item() == round(1023 * (-0.2126 / 1.8556) + 512)
    assert v.item() == 1023  # 1023 * 0.5 + 512 = 1023.5, clipped


def test_bt601_8bit_matches_pillow_jfif_conversion(crops):
    # Pillow's YCbCr is JFIF: BT.601 full range, fixed-point arithmetic (so +-1 at most).
    for image in crops.values():
        ours = np.stack(rgb_to_yuv(image, "bt601", 8), axis=-1).astype(int)
        pil = np.asarray(Image.fromarray(image).convert("YCbCr")).astype(int)
        assert np.abs(ours - pil).max() <= 1


def test_420_is_2x2_mean_with_odd_edges_replicated():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    y, u, v = rgb_to_yuv(image, "bt709", 10, "420")
    assert y.shape == (5, 7) and u.shape == v.shape == (3, 4)
    # E'PB recovered from a 16-bit conversion (error < 1e-5), then re-quantized to 10 bits
    pb = (rgb_to_yuv(image, "bt709", 16, "444")[1].astype(float) - 32768) / 65535
    to10 = lambda x: 1023 * x + 512  # noqa: E731
    assert abs(int(u[0, 0]) - to10(pb[0:2, 0:2].mean())) <= 0.51
    # the bottom-right chroma sample covers the single last pixel (replicated)
    assert abs(int(u[2, 3]) - to10(pb[4, 6])) <= 0.51


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="matrix"):
        rgb_to_yuv(pixel(1, 2, 3), "bt2020")
    with pytest.raises(ValueError, match="uint8"):
        rgb_to_yuv(np.zeros((2, 2, 3), np.float32))
