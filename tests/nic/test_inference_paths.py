"""The transforms' faster inference paths compute the plain paths' values bit for bit.

Under torch.inference_mode (how nic.codec runs the transforms) GDN works in place and, on one CPU
thread, in bands of rows, and the synthesis runs channels-last on one CPU thread (nic/nn/gdn.py,
MeanScaleHyperprior.synthesize). Each is checked here against the plain computation, which
training runs with gradients and evaluation under no_grad.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nic import codec, zoo
from nic.nn import GDN
from nic.nn.gdn import BAND_PIXELS


@pytest.fixture
def threads():
    """Restores torch's thread count after a test that sets it."""
    saved = torch.get_num_threads()
    yield
    torch.set_num_threads(saved)


def _gdn(inverse: bool, inplace: bool) -> GDN:
    torch.manual_seed(1)
    gdn = GDN(16, inverse=inverse, inplace=inplace)
    with torch.no_grad():
        gdn.beta.uniform_(0.5, 2)
        gdn.gamma.uniform_(0, 0.5)
    return gdn


# Rows of several bands, the last one short; a batch of two; one row wider than a band.
SHAPES = [(1, 16, 2 * BAND_PIXELS // 40 + 3, 40), (2, 16, 9, 7), (1, 16, 2, BAND_PIXELS + 5)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("count", [1, 2])
def test_gdn_in_inference_gives_the_plain_values(shape, inverse, channels_last, count, threads):
    torch.set_num_threads(count)
    x = torch.randn(shape) * 3
    layout = torch.channels_last if channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=layout)
    with torch.no_grad():
        plain = _gdn(inverse, False)(x)
    with torch.inference_mode():
        fast = _gdn(inverse, False)(x)
        copy = x.clone()
        overwritten = _gdn(inverse, True)(copy)
    assert torch.equal(fast, plain) and torch.equal(overwritten, plain)
    assert overwritten.data_ptr() == copy.data_ptr() and fast.data_ptr() != x.data_ptr()
    assert fast.is_contiguous(memory_format=layout)


def test_gdn_with_gradients_leaves_its_input_and_trains():
    gdn = _gdn(False, True)
    x = torch.randn(1, 16, 5, 6, requires_grad=True)
    before = x.detach().clone()
    gdn(x).square().sum().backward()
    assert torch.equal(x.detach(), before) and x.grad is not None and gdn.gamma.grad is not None


def test_the_synthesis_in_inference_gives_the_plain_pixels(kodak_size_photo, threads):
    torch.set_num_threads(1)
    model = zoo.load()
    stream = codec.encode(kodak_size_photo[:256, :320], model, 2.5)
    _, _, latents = codec.decode_latents(stream, model)
    network = model.rate_network(codec.gain_code(model, 2.5), latents.network)
    y_hat = latents.y_hat.clone()
    with torch.no_grad():
        plain = network.net.synthesize(y_hat, network.position)
    with torch.inference_mode():
        fast = network.net.synthesize(y_hat, network.position)
    assert torch.equal(fast, plain) and fast.is_contiguous()
    assert np.array_equal(codec.decode(stream, model), codec.decode(stream, model))
