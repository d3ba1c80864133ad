from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from ctc.metrics.nlpd import MIN_SIDE, nlpd

DATA = Path(__file__).parent / "data"

# The JPEG AI quality framework's NLPD (IQA_pytorch NLPD on its 10-bit luma) of scikit-image's
# astronaut against its Pillow JPEG quality-30 decode (tests/ctc/data/astronaut-jpeg-q30.png).
JPEG_AI_NLPD = 0.123260


def luma10(rgb: np.ndarray) -> np.ndarray:
    """The framework's luma, written out here independently of ctc.metrics.jpegai_luma:
    round(x * 1023 / 255) per RGB sample, then round(0.2126 R + 0.7152 G + 0.0722 B)."""
    c = np.rint(rgb.astype(np.float64) * (1023.0 / 255.0))
    return np.rint(0.2126 * c[..., 0] + 0.7152 * c[..., 1] + 0.0722 * c[..., 2])


@pytest.fixture(scope="module")
def astronaut_luma() -> tuple[np.ndarray, np.ndarray]:
    decoded = np.asarray(Image.open(DATA / "astronaut-jpeg-q30.png").convert("RGB"))
    return luma10(skdata.astronaut()), luma10(decoded)


def noisy(plane: np.ndarray, sigma: float, peak: float = 1023.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(plane + rng.normal(0.0, sigma, plane.shape)), 0, peak)


def test_jpeg_ai_reference_value(astronaut_luma):
    assert nlpd(*astronaut_luma) == pytest.approx(JPEG_AI_NLPD, abs=1e-5)
    assert nlpd(*astronaut_luma, peak=1023.0, variant="jpeg_ai") == nlpd(*astronaut_luma)


def test_matlab_variant_is_another_definition(astronaut_luma):
    # 5 band-pass levels plus the low-pass band, other padding and filters: close, not equal.
    # (This implementation reproduces the authors' NLP_dist.m outputs published with pyiqa's
    # calibration images to 1e-15; those images are not shipped here.)
    matlab = nlpd(*astronaut_luma, variant="matlab")
    assert matlab == pytest.approx(JPEG_AI_NLPD, rel=0.1)
    assert abs(matlab - JPEG_AI_NLPD) > 1e-3


@pytest.mark.parametrize("variant", ["jpeg_ai", "matlab"])
def test_identical_planes_give_zero(astronaut_luma, variant):
    y = astronaut_luma[0]
    assert nlpd(y, y.copy(), variant=variant) == 0.0
    small = y[:40, :30]
    assert nlpd(small, small.copy(), variant=variant) == 0.0


@pytest.mark.parametrize("variant", ["jpeg_ai", "matlab"])
def test_monotonic_in_noise(astronaut_luma, variant):
    y = astronaut_luma[0][:256, 128:384]
    scores = [nlpd(y, noisy(y, s), variant=variant) for s in (2, 8, 30, 100)]
    assert all(0.0 < a < b for a, b in pairwise(scores))


def test_peak_only_scales_the_samples(astronaut_luma):
    ref, dec = (y[:200, :160] for y in astronaut_luma)
    for variant in ("jpeg_ai", "matlab"):
        expected = nlpd(ref, dec, variant=variant)
        assert nlpd(ref / 1023.0, dec / 1023.0, peak=1.0, variant=variant) == pytest.approx(
            expected, rel=1e-12
        )


def test_a_constant_offset_only_moves_the_low_pass_band(astronaut_luma):
    # "jpeg_ai" has band-pass levels only (reflection padding keeps a constant flat): blind to
    # a uniform offset; "matlab" keeps the low-pass residual as its sixth band.
    y = astronaut_luma[0][:256, :256]
    assert nlpd(y, y + 40.0) == pytest.approx(0.0, abs=1e-12)
    assert nlpd(y, y + 40.0, variant="matlab") > 1e-3


def test_small_planes_are_zero_padded_to_min_side(astronaut_luma):
    ref, dec = (y[:40, :100] for y in astronaut_luma)
    pad = ((0, MIN_SIDE - 40), (0, MIN_SIDE - 100))
    assert nlpd(ref, dec) == nlpd(np.pad(ref, pad), np.pad(dec, pad))
    ref, dec = (y[:50, :300] for y in astronaut_luma)
    pad = ((0, MIN_SIDE - 50), (0, 0))
    assert nlpd(ref, dec) == nlpd(np.pad(ref, pad), np.pad(dec, pad))


def test_matlab_variant_needs_no_minimum():
    rng = np.random.default_rng(3)
    for shape in ((1, 1), (1, 9), (5, 7), (33, 17)):
        a = rng.integers(0, 1024, shape).astype(np.float64)
        value = nlpd(a, noisy(a, 30), variant="matlab")
        assert np.isfinite(value) and value > 0.0


def test_bad_input():
    a = np.zeros((130, 130))
    with pytest.raises(ValueError, match=r"^shape mismatch: reference \(130, 130\) vs decoded"):
        nlpd(a, a[:, :129])
    with pytest.raises(ValueError, match="2-D"):
        nlpd(np.zeros((130, 130, 3)), np.zeros((130, 130, 3)))
    with pytest.raises(ValueError, match="variant"):
        nlpd(a, a, variant="piq")
    with pytest.raises(ValueError, match="peak"):
        nlpd(a, a, peak=0.0)
