import numpy as np
import pytest
from ctc_testing import QuantZlibCodec, SelfMatchingJpeg

from anchors.jpeg import JpegCodec
from ctc.ratecontrol import Tolerance, match_rate


@pytest.fixture(scope="module")
def image():
    from skimage import data

    return np.ascontiguousarray(data.coffee()[100:196, 200:328])  # 128 x 96


@pytest.fixture(scope="module")
def jpeg_curve(image):
    """bpp at every JPEG quality (the brute-force truth)."""
    codec = JpegCodec()
    return {
        q: 8 * len(codec.encode(image, q)) / (image.shape[0] * image.shape[1]) for q in range(1, 96)
    }


@pytest.mark.parametrize("target", [0.5, 0.8, 1.2, 2.0, 3.0])
def test_integer_knob_gets_the_closest_admissible_value(image, jpeg_curve, target):
    r = match_rate(JpegCodec(), image, target, Tolerance(-100 + 1e-9, 1000))
    best = min(jpeg_curve, key=lambda q: abs(jpeg_curve[q] - target))
    assert r.bpp == pytest.approx(jpeg_curve[best])
    assert r.n_encodes <= 8  # a binary search over 95 values would need 7 or more
    assert r.deviation_percent == pytest.approx(100 * (r.bpp / target - 1))


@pytest.mark.parametrize("target", [0.8, 1.2, 2.0])
def test_never_exceed_takes_the_highest_rate_at_or_below_the_target(image, jpeg_curve, target):
    r = match_rate(JpegCodec(), image, target, Tolerance(-15, 15, never_exceed=True))
    best = max((q for q in jpeg_curve if jpeg_curve[q] <= target), key=lambda q: jpeg_curve[q])
    assert r.bpp == pytest.approx(jpeg_curve[best]) and r.bpp <= target


def test_unreachable_targets_give_the_range_end_out_of_tolerance(image, jpeg_curve):
    low = match_rate(JpegCodec(), image, 0.01, Tolerance(-5, 5))
    assert low.knob_value == 1 and not low.in_tolerance and low.n_encodes <= 3
    high = match_rate(JpegCodec(), image, 50.0, Tolerance(-5, 5))
    assert high.knob_value == 95 and not high.in_tolerance


@pytest.mark.parametrize("target", [1.5, 3.0, 8.0])
def test_continuous_knob_with_falling_rate_reaches_the_window(image, target):
    codec = QuantZlibCodec()
    r = match_rate(codec, image, target, Tolerance(-5, 5))
    assert r.in_tolerance, r
    assert abs(r.deviation_percent) <= 5 and r.n_encodes <= 8
    assert 8 * len(codec.encode(image, r.knob_value)) / (128 * 96) == pytest.approx(r.bpp)


def test_max_encodes_is_respected(image):
    r = match_rate(QuantZlibCodec(), image, 1.5, Tolerance(-0.01, 0.01), max_encodes=3)
    assert r.n_encodes == 3


def test_a_codec_may_match_its_rate_itself(image):
    codec = SelfMatchingJpeg()
    r = match_rate(codec, image, 1.0, Tolerance(-15, 15))
    assert (r.method, r.n_encodes, codec.calls) == ("codec", 1, 1)
    assert r.bpp <= 1.15 and r.in_tolerance == (0.85 <= r.bpp <= 1.15)
    declining = SelfMatchingJpeg(decline=True)
    r = match_rate(declining, image, 1.0, Tolerance(-15, 15))
    assert r.method == "search" and declining.calls == 1 and r.n_encodes > 1


def test_tolerance_window():
    assert Tolerance(-5, 5).window(2.0) == pytest.approx((1.9, 2.1))
    assert Tolerance(-5, 5, never_exceed=True).window(2.0) == pytest.approx((1.9, 2.0))
    assert Tolerance(-15, 15).contains(1.0, 1.15) and not Tolerance(-15, 15).contains(1.0, 1.16)
    with pytest.raises(ValueError):
        match_rate(JpegCodec(), np.zeros((8, 8, 3), np.uint8), 0.0, Tolerance(-5, 5))


def test_nic_matches_its_own_rate_and_reports_its_real_encodes(image):
    from nic.ctc_codec import NicCodec

    nic = NicCodec()
    result = match_rate(nic, image, 0.8, Tolerance(-5, 5))
    assert result.method == "codec" and result.in_tolerance
    low, high = Tolerance(-5, 5).window(0.8)
    assert result.n_encodes == nic.encode_to_target(image, 0.8, low, high)[2] <= 4
    assert nic.knob.kind == "continuous" and 0 < result.knob_value < nic.knob.high
