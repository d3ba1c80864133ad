import numpy as np
import pytest
from skimage import data as skdata

from anchors.colour import upsample_420, yuv_to_rgb
from ctc.metrics.colour import rgb_to_yuv


@pytest.fixture(scope="module")
def photo():
    return np.ascontiguousarray(skdata.astronaut()[:101, :77])


def test_ten_bit_444_inverts_the_forward_conversion_exactly(photo):
    assert np.array_equal(yuv_to_rgb(*rgb_to_yuv(photo, "bt709", 10, "444"), "bt709", 10), photo)


def test_eight_bit_bt601_is_off_by_at_most_one(photo):
    back = yuv_to_rgb(*rgb_to_yuv(photo, "bt601", 8, "444"), "bt601", 8).astype(int)
    assert np.abs(back - photo).max() == 1


def test_420_upsampling_keeps_flat_areas_and_is_close_on_photos(photo):
    flat = np.full((3, 4), 700, np.uint16)
    assert np.array_equal(upsample_420(flat, 5, 7), np.full((5, 7), 700.0))
    back = yuv_to_rgb(*rgb_to_yuv(photo, "bt709", 10, "420"), "bt709", 10).astype(int)
    assert back.shape == photo.shape and np.abs(back - photo).mean() < 2
    ramp = np.arange(4, dtype=float)[None, :].repeat(2, 0)
    assert np.allclose(upsample_420(ramp, 4, 8)[0], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    with pytest.raises(ValueError, match="must be"):
        upsample_420(ramp, 5, 8)
