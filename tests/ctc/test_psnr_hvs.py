import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from ctc.metrics.colour import rgb_to_yuv
from ctc.metrics.jpegai_luma import jpeg_ai_luma
from ctc.metrics.psnr import psnr
from ctc.metrics.psnr_hvs import CSF, hvs_mse, pad_to_blocks, psnr_hvs

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def astronaut_pair():
    """scikit-image's astronaut and its Pillow JPEG (quality 30) decode, as JPEG AI luma."""
    ref = skdata.astronaut()
    dec = np.asarray(Image.open(DATA / "astronaut-jpeg-q30.png").convert("RGB"))
    return jpeg_ai_luma(ref), jpeg_ai_luma(dec)


def test_jpeg_ai_framework_values_on_the_astronaut(astronaut_pair):
    """The JPEG AI framework's PSNR-Y, PSNR-HVS and PSNR-HVS-M of this pair (10-bit luma)."""
    ref, dec = astronaut_pair
    assert ref.dtype == np.uint16 and ref.shape == (512, 512)
    assert psnr(ref, dec, 1023.0) == pytest.approx(32.76711, abs=5e-5)
    hvs, hvsm = psnr_hvs(ref, dec)
    assert hvs == pytest.approx(33.01805, abs=1e-4)
    assert hvsm == pytest.approx(38.59610, abs=1e-4)


def test_jpeg_ai_luma_scales_to_10_bits_then_weights_and_rounds():
    rgb = np.array([[[255, 0, 0], [1, 1, 1], [255, 255, 255], [0, 0, 0], [0, 255, 0]]], np.uint8)
    # red: round(0.2126 * 1023) = 217; (1, 1, 1): round(1023 / 255) = 4; green: round(731.65)
    assert jpeg_ai_luma(rgb).tolist() == [[217, 4, 1023, 0, 732]]
    image = skdata.astronaut()
    diff = jpeg_ai_luma(image).astype(int) - rgb_to_yuv(image, "bt709", 10)[0].astype(int)
    assert set(np.unique(diff)) == {-1, 0, 1}  # not the H.273 10-bit luma of ctc.metrics.colour
    with pytest.raises(ValueError, match="expected uint8"):
        jpeg_ai_luma(image.astype(np.uint16))


def test_identical_planes_give_the_cap_of_100(astronaut_pair):
    ref, _ = astronaut_pair
    assert psnr_hvs(ref, ref) == (100.0, 100.0)
    assert psnr_hvs(ref[:13, :21], ref[:13, :21]) == (100.0, 100.0)


def test_a_uniform_offset_is_a_dc_error_only():
    """An offset d on every sample changes only each block's DC coefficient, by 8d (orthonormal
    DCT); DC is not masked, so both metrics are 10 log10(1 / (d * CSF[0,0])^2) on [0, 1]."""
    rng = np.random.default_rng(3)
    ref = rng.integers(100, 900, (40, 56))
    dec = ref + 6
    d = 6 / 1023
    expected = 10 * math.log10(1 / (d * CSF[0, 0]) ** 2)
    hvs, hvsm = psnr_hvs(ref, dec)
    assert hvs == pytest.approx(expected, abs=1e-9)
    assert hvsm == pytest.approx(expected, abs=1e-9)


def test_masking_only_lowers_the_error():
    rng = np.random.default_rng(4)
    ref = rng.integers(0, 1024, (64, 64))
    dec = np.clip(ref + rng.integers(-30, 31, ref.shape), 0, 1023)
    hvs, hvsm = hvs_mse(ref, dec)
    assert 0 < hvsm < hvs


def test_the_value_does_not_depend_on_the_scale(astronaut_pair):
    ref, dec = astronaut_pair
    scaled = psnr_hvs(ref.astype(np.float64) * 4, dec.astype(np.float64) * 4, peak=4092.0)
    assert scaled == pytest.approx(psnr_hvs(ref, dec), abs=1e-9)


def test_sides_that_are_not_multiples_of_8_are_edge_replicated(astronaut_pair):
    ref, dec = (p[:101, :67] for p in astronaut_pair)
    assert pad_to_blocks(ref).shape == (104, 72)
    assert (pad_to_blocks(ref)[101:, :67] == ref[100]).all()
    assert psnr_hvs(ref, dec) == psnr_hvs(pad_to_blocks(ref), pad_to_blocks(dec))
    tiny = np.array([[3, 5]]), np.array([[4, 5]])
    assert all(math.isfinite(v) and v < 100 for v in psnr_hvs(*tiny))


def test_shapes_must_match():
    with pytest.raises(ValueError, match="equal 2-D planes"):
        psnr_hvs(np.zeros((8, 8)), np.zeros((8, 16)))
    with pytest.raises(ValueError, match="equal 2-D planes"):
        psnr_hvs(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


def test_agrees_with_the_psnr_hvsm_package_where_installed(astronaut_pair):
    """psnr-hvsm (K. Trojanowski, an independent implementation) on [0, 1] planes padded to
    multiples of 8; it prints to stdout when imported without torch-dct."""
    with contextlib.redirect_stdout(io.StringIO()):
        package = pytest.importorskip("psnr_hvsm")
    reference = package.BACKENDS["numpy"]["psnr_hvs_hvsm"]
    rng = np.random.default_rng(5)
    noisy = np.clip(astronaut_pair[0] + rng.integers(-40, 41, (512, 512)), 0, 1023)
    for ref, dec in (astronaut_pair, (astronaut_pair[0][:77, :90], noisy[:77, :90])):
        a, b = (pad_to_blocks(p.astype(np.float64) / 1023) for p in (ref, dec))
        with np.errstate(invalid="ignore"):  # its flat-block division, discarded by np.where
            expected = tuple(float(v) for v in reference(a, b))
        assert psnr_hvs(ref, dec) == pytest.approx(expected, abs=1e-9)
