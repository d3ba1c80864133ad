import numpy as np
import pytest
import torch
import torch.nn.functional as F
from ctc_testing import noisy_plane

from ctc.metrics import iwssim
from ctc.metrics.iwssim import MIN_SIDE, iw_ssim, laplacian_pyramid
from ctc.metrics.vif import pad_to


@pytest.fixture(scope="module")
def pair(luma_pair) -> tuple[np.ndarray, np.ndarray]:
    return luma_pair


def noisy(plane: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    return noisy_plane(plane, sigma, seed=seed)


def test_jpeg_ai_reference_value(pair):
    value = iw_ssim(*pair)
    assert value == pytest.approx(0.986858, abs=1e-4)
    assert value == pytest.approx(0.9868597, abs=1e-6)
    # The framework's port does not normalize the scale weights (sum 1.0001); iwssim.m does.
    assert value ** sum(iwssim.WEIGHTS) == pytest.approx(0.986858, abs=5e-7)


def test_identical_planes_give_one(pair):
    ref = pair[0]
    assert iw_ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)
    flat = np.full((256, 256), 512)  # every weight 0: plain means, each 1
    assert iw_ssim(flat, flat) == pytest.approx(1.0, abs=1e-12)


def test_more_noise_lowers_the_score(pair):
    ref = pair[0][:256, 128:384].astype(np.float64)
    scores = [iw_ssim(ref, noisy(ref, sigma)) for sigma in (2, 8, 32, 128)]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores
    assert 0 < scores[-1] < scores[0] < 1


def test_small_planes_are_zero_padded_to_min_side(pair):
    ref = pair[0][200:240, 200:230]  # 40 x 30
    dec = noisy(ref, 10.0)
    value = iw_ssim(ref, dec)
    assert 0 < value < 1
    assert pad_to(ref, MIN_SIDE).shape == (256, 256)
    assert value == iw_ssim(pad_to(ref, MIN_SIDE), pad_to(dec, MIN_SIDE))


def test_bad_input():
    with pytest.raises(ValueError, match=r"two 2-D luma planes of one shape, got \(256, 256\)"):
        iw_ssim(np.zeros((256, 256)), np.zeros((257, 256)))
    with pytest.raises(ValueError, match="two 2-D luma planes"):
        iw_ssim(np.zeros(256), np.zeros(256))


@pytest.mark.parametrize("shape", [(64, 64), (77, 93)])
def test_pyramid_of_a_constant(shape):
    """binom5 with reflect1 edges: band-pass bands vanish, the residual is 2^4 times the level."""
    bands = laplacian_pyramid(np.full(shape, 3.0))
    assert [b.shape for b in bands][-1] == tuple(-(-s // 16) for s in shape)
    for band in bands[:-1]:
        assert np.abs(band).max() < 1e-12
    assert bands[-1] == pytest.approx(np.full(bands[-1].shape, 48.0), abs=1e-12)


def test_pyramid_agrees_with_pyrtools():
    pt = pytest.importorskip("pyrtools")
    im = np.random.default_rng(1).normal(0, 50, (257, 301))
    ours = laplacian_pyramid(im)
    theirs = pt.pyramids.LaplacianPyramid(im, height=5).pyr_coeffs
    for i, band in enumerate(ours):
        np.testing.assert_allclose(band, theirs[(i, 0)], atol=1e-10)


@pytest.mark.parametrize("shape", [(16, 16), (33, 20)])
def test_enlarge_is_imenlarge2(shape):
    """imenlarge2 built on PyTorch's bilinear resize (MATLAB's imresize mapping)."""
    band = np.random.default_rng(2).normal(0, 10, shape)
    m, n = shape
    t = torch.from_numpy(band)[None, None]
    t1 = F.interpolate(t, size=(4 * m - 3, 4 * n - 3), mode="bilinear", align_corners=False)
    t2 = torch.zeros(4 * m - 1, 4 * n - 1, dtype=torch.float64)
    t2[1:-1, 1:-1] = t1[0, 0]
    t2[0], t2[-1] = 2 * t2[1] - t2[2], 2 * t2[-2] - t2[-3]
    t2[:, 0], t2[:, -1] = 2 * t2[:, 1] - t2[:, 2], 2 * t2[:, -2] - t2[:, -3]
    np.testing.assert_allclose(iwssim._enlarge(band), t2[::2, ::2].numpy(), atol=1e-10)
