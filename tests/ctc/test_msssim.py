import numpy as np
import pytest
import torch
from pytorch_msssim import ms_ssim as reference_ms_ssim
from skimage import data as skdata

from ctc.metrics import msssim


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small convolutions: one thread is faster than contending with a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def reference(a: np.ndarray, b: np.ndarray, peak: float = 255.0, exact: bool = False) -> float:
    """pytorch-msssim (an independent implementation), channels averaged.

    As shipped it runs in float32 with a float32 window; exact=True runs it in float64 with a
    float64 11-tap sigma-1.5 window, to compare the algorithms without rounding noise.
    """
    dtype = np.float64 if exact else np.float32
    t = lambda x: torch.from_numpy(x.astype(dtype)).permute(2, 0, 1)[None]  # noqa: E731
    win = None
    if exact:
        x = np.arange(11) - 5.0
        g = np.exp(-x * x / (2 * 1.5**2))
        win = torch.from_numpy(g / g.sum())[None, None, None, :].repeat(a.shape[2], 1, 1, 1)
    return float(reference_ms_ssim(t(a), t(b), data_range=peak, win=win))


def distortions(image: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    noisy = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    return {"noise": noisy, "quantized": (image // 16) * 16}


def crop(h: int, w: int) -> np.ndarray:
    return np.ascontiguousarray(skdata.astronaut()[:h, :w])


@pytest.mark.parametrize("shape", [(176, 192), (200, 256), (163, 171)])
def test_zero_pad_mode_agrees_with_pytorch_msssim(shape):
    image = crop(*shape)
    for name, distorted in distortions(image).items():
        ours = msssim.ms_ssim(image, distorted, downsample="zero_pad")
        assert ours == pytest.approx(reference(image, distorted), abs=1e-5), name


def test_zero_pad_mode_is_the_same_algorithm_to_rounding():
    image = crop(163, 171)  # odd sides at every scale
    noisy = distortions(image)["noise"]
    ours = msssim.ms_ssim(image, noisy, downsample="zero_pad")
    assert ours == pytest.approx(reference(image, noisy, exact=True), abs=1e-12)


def test_symmetric_mode_agrees_where_every_scale_is_even_and_differs_elsewhere():
    image = crop(176, 256)  # 16 divides both sides
    for name, distorted in distortions(image).items():
        ours = msssim.ms_ssim(image, distorted, downsample="symmetric")
        assert ours == pytest.approx(reference(image, distorted), abs=1e-5), name
    odd = crop(171, 201)
    noisy = distortions(odd)["noise"]
    assert abs(msssim.ms_ssim(odd, noisy) - reference(odd, noisy)) > 1e-5


def test_identical_images_score_one(crops):
    for image in crops.values():
        assert msssim.ms_ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert msssim.to_db(1.0) == float("inf")
    assert msssim.to_db(0.99) == pytest.approx(20.0)


def test_small_images_are_mirror_padded_to_the_five_scale_minimum(crops):
    image = crops["cat"]  # 51 x 67: both sides below MIN_SIDE
    distorted = distortions(image)["noise"]
    padded = [
        np.stack([msssim.pad_to_min_side(x[..., c]) for c in range(3)], axis=-1)
        for x in (image, distorted)
    ]
    assert padded[0].shape == (msssim.MIN_SIDE, msssim.MIN_SIDE, 3)
    # mirror padding: the first padded row repeats the last row, then the image reflects
    assert np.array_equal(padded[0][51, :67], image[50])
    assert np.array_equal(padded[0][52, :67], image[49])
    assert np.array_equal(padded[0][:51, 67], image[:, 66])
    expected = reference(padded[0], padded[1])
    ours = msssim.ms_ssim(image, distorted, downsample="zero_pad")
    assert ours == pytest.approx(expected, abs=1e-5)


def test_single_plane_with_another_dynamic_range():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 1024, (176, 176)).astype(np.uint16)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 1023).astype(np.uint16)
    ours = msssim.ms_ssim(a, b, peak=1023.0)
    assert ours == pytest.approx(reference(a[..., None], b[..., None], 1023.0), abs=1e-5)


def test_rejects_unknown_downsampling_and_mismatched_shapes(crops):
    a = crops["astro"]
    with pytest.raises(ValueError, match="downsampling"):
        msssim.ms_ssim(a, a, downsample="bilinear")
    with pytest.raises(ValueError, match="shape"):
        msssim.ms_ssim(a, a[:-1])
