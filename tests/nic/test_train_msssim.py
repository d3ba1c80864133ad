import numpy as np
import pytest
import torch

from ctc.metrics import msssim as ctc_msssim
from nic.train.loss import rd_loss
from nic.train.msssim import ms_ssim


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small convolutions: one thread is faster than contending with a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic(h: int, w: int, seed: int = 1) -> np.ndarray:
    """A deterministic uint8 RGB image: smooth colour gradients, a periodic texture, mild grain."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([120 + 100 * np.sin(3 * xx + yy), 80 + 150 * xx * yy, 200 - 150 * yy], axis=-1)
    texture = 20 * np.outer(np.cos(0.7 * np.arange(h)), np.sin(0.9 * np.arange(w)))[..., None]
    grain = np.random.default_rng(seed).normal(0, 4, (h, w, 3))
    return np.clip(base + texture + grain, 0, 255).astype(np.uint8)


def tensor(image: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) in [0, 1]."""
    return torch.from_numpy(image).permute(2, 0, 1)[None].to(dtype) / 255.0


def distortions(image: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    noisy = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
    heavy = np.clip(image + rng.normal(0, 50, image.shape), 0, 255).astype(np.uint8)
    return {"noise": noisy, "heavy_noise": heavy, "quantized": (image // 32) * 32}


def test_identical_images_give_one(astronaut):
    x = torch.cat([tensor(astronaut[:256, :256]), tensor(synthetic(256, 256))])
    value = ms_ssim(x, x.clone())
    assert value.shape == (2,)
    assert torch.allclose(value, torch.ones(2), atol=1e-6)


def test_decreases_as_noise_grows(astronaut):
    x = tensor(astronaut[:256, :320])
    gen = torch.Generator().manual_seed(0)
    sigmas = [0.0, 0.01, 0.03, 0.1, 0.3]
    noisy = torch.cat([(x + s * torch.randn(x.shape, generator=gen)).clamp(0, 1) for s in sigmas])
    values = ms_ssim(x.expand_as(noisy), noisy)
    assert values.shape == (len(sigmas),)
    assert values[0] == pytest.approx(1.0, abs=1e-6)
    assert torch.all(values[1:] < values[:-1]), values
    assert values[-1] < 0.8
    # Batch items are independent: the same value alone as in the batch.
    assert ms_ssim(x, noisy[2:3]).item() == pytest.approx(values[2].item(), abs=1e-6)


def _gradients(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    y = y.clone().requires_grad_(True)
    value = ms_ssim(x, y)
    (1 - value).sum().backward()
    assert torch.isfinite(value).all()
    return x.grad, y.grad


def test_gradients_are_finite_for_random_images():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 2, 3, 256, 256, generator=gen)
    gx, gy = _gradients(x, y)
    assert torch.isfinite(gx).all() and torch.isfinite(gy).all()
    assert gx.abs().sum() > 0 and gy.abs().sum() > 0


@pytest.mark.parametrize("case", ["black_white", "inverted", "flat_vs_noise"])
def test_gradients_are_finite_for_very_different_images(case):
    gen = torch.Generator().manual_seed(1)
    noise = torch.rand(1, 3, 192, 192, generator=gen)
    x, y = {
        "black_white": (torch.zeros(1, 3, 192, 192), torch.ones(1, 3, 192, 192)),
        # Contrast-structure near -1 at every scale: all terms hit the clamp.
        "inverted": (noise, 1 - noise),
        "flat_vs_noise": (torch.full((1, 3, 192, 192), 0.5), noise),
    }[case]
    assert ms_ssim(x, y).item() < 0.5  # far from 1 (luminance alone weighs only 0.1333)
    gx, gy = _gradients(x, y)
    assert torch.isfinite(gx).all() and torch.isfinite(gy).all()


def test_too_small_input_raises():
    with pytest.raises(ValueError, match="161"):
        ms_ssim(torch.rand(1, 3, 160, 300), torch.rand(1, 3, 160, 300))
    with pytest.raises(ValueError, match="equal shape"):
        ms_ssim(torch.rand(1, 3, 200, 200), torch.rand(1, 3, 200, 201))
    assert ms_ssim(torch.rand(1, 3, 161, 161), torch.rand(1, 3, 161, 161)).shape == (1,)


@pytest.mark.parametrize("size", [(512, 512), (203, 171)])
def test_agrees_with_the_evaluation_metric(astronaut, size):
    # ctc.metrics.msssim works on uint8 (H, W, C) planes with peak 255 in float64 and averages
    # the per-channel scores; its default "symmetric" downsampling repeats an odd last
    # row/column, as ours does. SSIM is invariant to scaling the samples and the constants
    # together, so x/255 with data_range 1 is the same quantity. 512x512 (astronaut) is even at
    # every scale; 203x171 (synthetic) is odd at several, exercising the odd-side convention.
    image = astronaut if size == (512, 512) else synthetic(*size)
    for name, distorted in distortions(image).items():
        expected = ctc_msssim.ms_ssim(image, distorted)
        # float64: the same algorithm, so only summation-order rounding (measured ~1e-15).
        exact = ms_ssim(tensor(image, torch.float64), tensor(distorted, torch.float64)).item()
        assert exact == pytest.approx(expected, abs=1e-12), name
        # float32 (what training uses): sigma^2 = E[x^2] - mu^2 cancels about 1e-8 absolute
        # against C2 = 9e-4, i.e. ~1e-5 relative per pixel, which averages down over the
        # windows; the measured difference is at most 1.5e-6 (CPU and H200), so 1e-5 leaves
        # a 6x margin.
        single = ms_ssim(tensor(image), tensor(distorted)).item()
        assert single == pytest.approx(expected, abs=1e-5), name


def test_runs_in_float32_under_autocast():
    gen = torch.Generator().manual_seed(2)
    x, y = torch.rand(2, 1, 3, 192, 192, generator=gen)
    expected = ms_ssim(x, y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = ms_ssim(x.bfloat16(), y)
    assert value.dtype == torch.float32
    # bfloat16 input keeps ~3 significant digits of each sample; the computation itself is
    # float32, so the score moves only by that input rounding.
    assert value.item() == pytest.approx(expected.item(), abs=5e-3)


def _fake_output(x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    delta = (0.05 * torch.randn(x.shape, generator=gen)).requires_grad_(True)
    logits = torch.randn(x.shape[0], 4, 16, 16, generator=gen).requires_grad_(True)
    out = {
        "x_hat": x + delta,
        "y_likelihoods": torch.sigmoid(logits),
        "z_likelihoods": torch.sigmoid(logits[:, :1, :4, :4] + 1),
    }
    return out, delta


def test_rd_loss_with_ms_ssim_backpropagates():
    x = torch.cat([tensor(synthetic(192, 192, seed)) for seed in range(2)])
    out, delta = _fake_output(x)
    lambdas = torch.tensor([2.4, 220.0])
    parts = rd_loss(out, x, lambdas, distortion="ms-ssim")
    assert set(parts) == {"loss", "bpp", "mse", "ms_ssim"}
    quality = ms_ssim(out["x_hat"], x)
    expected = (lambdas * (1 - quality)).mean() + parts["bpp"]
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["ms_ssim"].item() == pytest.approx(quality.mean().item(), rel=1e-6)
    assert parts["mse"].item() == pytest.approx(((out["x_hat"] - x) ** 2).mean().item())
    parts["loss"].backward()
    assert torch.isfinite(delta.grad).all() and delta.grad.abs().sum() > 0


def test_rd_loss_default_is_the_mse_loss():
    x = tensor(synthetic(64, 64)).expand(2, -1, -1, -1)  # below MS-SSIM's size: never computed
    out, _ = _fake_output(x)
    lambdas = torch.tensor([0.0018, 0.18])
    parts = rd_loss(out, x, lambdas)
    assert set(parts) == {"loss", "bpp", "mse"}
    mse = ((out["x_hat"] - x) ** 2).flatten(1).mean(1)
    expected = (lambdas * 255.0**2 * mse).mean() + parts["bpp"]
    assert parts["loss"].item() == pytest.approx(expected.item(), rel=1e-6)


def test_rd_loss_unknown_distortion_raises():
    x = tensor(synthetic(64, 64))
    out, _ = _fake_output(x)
    with pytest.raises(ValueError, match="'mse' or 'ms-ssim'"):
        rd_loss(out, x, torch.tensor([0.01]), distortion="ssim")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_runs_under_cuda_autocast():
    gen = torch.Generator().manual_seed(4)
    x, y = torch.rand(2, 2, 3, 256, 256, generator=gen).cuda()
    expected = ms_ssim(x, y)
    y = y.clone().requires_grad_(True)
    with torch.autocast("cuda", dtype=torch.float16):
        value = ms_ssim(x.half(), y)
    assert value.dtype == torch.float32
    (1 - value).sum().backward()
    assert torch.isfinite(y.grad).all()
    # float16 input: ~3 significant digits per sample; the computation is float32.
    assert torch.allclose(value, expected, atol=5e-3)
