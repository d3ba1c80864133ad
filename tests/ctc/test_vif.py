import numpy as np
import pytest
from ctc_testing import noisy_plane
from scipy.signal import correlate2d

from ctc.metrics.vif import MIN_SIDE, pad_to, vif_p


@pytest.fixture(scope="module")
def pair(luma_pair) -> tuple[np.ndarray, np.ndarray]:
    return luma_pair


def noisy(plane: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    return noisy_plane(plane, sigma, seed=seed)


def direct_vif(ref: np.ndarray, dec: np.ndarray) -> float:
    """vifp_mscale.m spelled out with 2-D windows and scipy.signal (slow, 8-bit scale)."""
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        x = np.arange(n) - n // 2
        win = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (n / 5) ** 2))
        win /= win.sum()
        f = lambda a, w=win: correlate2d(a, w, mode="valid")  # noqa: E731
        if scale > 1:
            ref, dec = f(ref)[::2, ::2], f(dec)[::2, ::2]
        mu1, mu2 = f(ref), f(dec)
        s1 = np.maximum(f(ref * ref) - mu1 * mu1, 0)
        s2 = np.maximum(f(dec * dec) - mu2 * mu2, 0)
        s12 = f(ref * dec) - mu1 * mu2
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        g[s1 < 1e-10], sv[s1 < 1e-10], s1[s1 < 1e-10] = 0, s2[s1 < 1e-10], 0
        g[s2 < 1e-10], sv[s2 < 1e-10] = 0, 0
        sv[g < 0] = s2[g < 0]
        g[g < 0] = 0
        sv[sv <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g * g * s1 / (sv + 2)))
        den += np.sum(np.log10(1 + s1 / 2))
    return num / den


def test_jpeg_ai_reference_value(pair):
    # The framework's 0.599064 is float32 arithmetic; float64 gives 0.5990826 (see vif.py).
    value = vif_p(*pair)
    assert value == pytest.approx(0.599064, abs=1e-4)
    assert value == pytest.approx(0.5990826, abs=1e-6)


def test_agrees_with_the_reference_code_spelled_out(pair):
    ref, dec = (p[100:260, 180:300].astype(np.float64) * 255 / 1023 for p in pair)
    assert vif_p(ref, dec, peak=255.0) == pytest.approx(direct_vif(ref, dec), abs=1e-12)


def test_identical_planes_give_one(pair):
    ref = pair[0]
    assert vif_p(ref, ref) == pytest.approx(1.0, abs=1e-9)
    assert vif_p(ref.astype(np.float32), ref.astype(np.float64)) == pytest.approx(1.0, abs=1e-9)
    assert vif_p(np.zeros((64, 64)), np.zeros((64, 64))) == 1.0


def test_more_noise_lowers_the_score(pair):
    ref = pair[0][:200, :200].astype(np.float64)
    scores = [vif_p(ref, noisy(ref, sigma)) for sigma in (2, 8, 32, 128)]
    assert all(a > b for a, b in zip(scores, scores[1:], strict=False)), scores
    assert 0 < scores[-1] < scores[0] < 1


def test_is_not_symmetric(pair):
    assert vif_p(pair[1], pair[0]) != pytest.approx(vif_p(*pair), abs=1e-3)


def test_peak_scales_the_planes(pair):
    ref, dec = (p[:128, :128].astype(np.float64) for p in pair)
    assert vif_p(ref, dec, peak=1023.0) == pytest.approx(
        vif_p(ref * 255 / 1023, dec * 255 / 1023, peak=255.0), abs=1e-12
    )


def test_small_planes_are_zero_padded_to_min_side(pair):
    ref = pair[0][200:240, 200:230]  # 40 x 30
    dec = noisy(ref, 10.0)
    value = vif_p(ref, dec)
    assert 0 < value < 1
    padded = vif_p(pad_to(ref, MIN_SIDE), pad_to(dec, MIN_SIDE))
    assert pad_to(ref, MIN_SIDE).shape == (64, 64)
    assert value == padded
    wide = pair[0][:40, :100]  # only the short side is padded
    assert pad_to(wide, MIN_SIDE).shape == (64, 100)
    assert vif_p(wide, wide + 1) == vif_p(pad_to(wide, MIN_SIDE), pad_to(wide + 1, MIN_SIDE))


def test_bad_input():
    with pytest.raises(ValueError, match=r"two 2-D luma planes of one shape, got \(64, 64\)"):
        vif_p(np.zeros((64, 64)), np.zeros((64, 65)))
    with pytest.raises(ValueError, match="two 2-D luma planes"):
        vif_p(np.zeros((64, 64, 3)), np.zeros((64, 64, 3)))
