import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from ctc.metrics.fsim import MIN_SIDE, fsim

DATA = Path(__file__).parent / "data"

# The JPEG AI quality framework's FSIM (IQA_pytorch FSIM on its 10-bit RGB) of scikit-image's
# astronaut against its Pillow JPEG quality-30 decode (tests/ctc/data/astronaut-jpeg-q30.png).
JPEG_AI_FSIMC = 0.987601


@pytest.fixture(scope="module")
def astronaut_pair() -> tuple[np.ndarray, np.ndarray]:
    decoded = np.asarray(Image.open(DATA / "astronaut-jpeg-q30.png").convert("RGB"))
    return skdata.astronaut(), decoded


def noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0.0, sigma, image.shape), 0, 255).astype(np.uint8)


def test_jpeg_ai_reference_value(astronaut_pair):
    value, value_c = fsim(*astronaut_pair)
    assert value_c == pytest.approx(JPEG_AI_FSIMC, abs=1e-5)
    assert value_c < value < 1.0  # FSIM on luma only; the chroma factor lowers FSIMc


def test_variants_differ_only_by_the_10_bit_rescale_here(astronaut_pair):
    # 512 x 512: F = 2 and even sides, where both variants downsample alike; what is left is
    # the framework's round(x * 1023 / 255) * 255 / 1023 rescale of the RGB (about 1e-5).
    jpeg_ai = fsim(*astronaut_pair)
    matlab = fsim(*astronaut_pair, variant="matlab")
    for a, b in zip(jpeg_ai, matlab, strict=True):
        assert a != b and a == pytest.approx(b, abs=5e-5)


@pytest.mark.parametrize("variant", ["jpeg_ai", "matlab"])
def test_identical_images_give_one(crops, variant):
    for image in crops.values():
        assert fsim(image, image.copy(), variant=variant) == (1.0, 1.0)
    flat = np.full((20, 30, 3), 128, np.uint8)
    assert fsim(flat, flat, variant=variant) == (1.0, 1.0)


@pytest.mark.parametrize("variant", ["jpeg_ai", "matlab"])
def test_monotonic_in_noise(variant):
    image = np.ascontiguousarray(skdata.astronaut()[:256, 128:384])
    scores = [fsim(image, noisy(image, s), variant=variant) for s in (2, 6, 15, 40)]
    for column in zip(*scores, strict=True):
        assert all(a > b for a, b in pairwise(column))
        assert all(0.0 < v < 1.0 for v in column)


def test_a_colour_shift_lowers_fsimc_only_a_little():
    image = np.ascontiguousarray(skdata.coffee()[:200, :300])
    shifted = image.copy()
    shifted[..., 0] = np.clip(shifted[..., 0].astype(int) + 12, 0, 255)
    value, value_c = fsim(image, shifted)
    assert value_c < value


def test_odd_sizes_and_downsampling_factors():
    image = np.tile(skdata.astronaut(), (2, 2, 1))
    for h, w in ((97, 131), (333, 517), (770, 1000)):  # F = 1, 1, 3
        crop = np.ascontiguousarray(image[:h, :w])
        for variant in ("jpeg_ai", "matlab"):
            value, value_c = fsim(crop, noisy(crop, 10), variant=variant)
            assert 0.5 < value_c <= value < 1.0


def test_a_one_sample_side_is_zero_padded():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (1, 40, 3), dtype=np.uint8)
    b = noisy(a, 20)
    pad = ((0, MIN_SIDE - 1), (0, 0), (0, 0))
    assert fsim(a, b) == fsim(np.pad(a, pad), np.pad(b, pad))
    assert all(math.isfinite(v) for v in fsim(a, b))


def test_no_phase_congruency_anywhere_is_undefined():
    a = np.full((16, 16, 3), 100, np.uint8)
    value, value_c = fsim(a, a + 10)
    assert math.isnan(value) and math.isnan(value_c)


def test_bad_input():
    a = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match=r"^shape mismatch: reference \(16, 16, 3\) vs decoded"):
        fsim(a, a[:, :15])
    with pytest.raises(ValueError, match="uint8 RGB"):
        fsim(a[..., 0], a[..., 0])
    with pytest.raises(ValueError, match="uint8 RGB"):
        fsim(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="variant"):
        fsim(a, a, variant="piq")
