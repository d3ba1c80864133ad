"""The integer entropy-parameter path: exact in any summation order, close to the float path,
and pinned by golden bitstreams of each zoo model (regenerate them with
`python tests/nic/test_integer_synthesis.py` when a zoo model changes)."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata

from nic import codec, zoo
from nic.entropy import scale_indexes
from nic.models import IntegerOverflowError
from nic.models.integer_synthesis import FRACTION_BITS

GOLDEN = Path(__file__).parent / "golden"


GAIN_MODEL = "nic-mshp-n128-v2"
GOLDEN_POSITIONS = {"nic-mshp-n128-v2": (1, 8), "nic-masked-n128-v2": (1.25, 1.75, 5.5)}
"""Rate positions pinned per zoo model: the masked model's take network 1 a quarter step finer
(1.25), network 2 a quarter step coarser (1.75) and extrapolate past the last rate point (5.5)."""


@pytest.fixture(scope="module")
def model():
    return zoo.load(GAIN_MODEL)


@pytest.fixture(scope="module")
def z(model, small_photo):
    return codec.analyse(model, small_photo, 6).z


def _transposed_conv_by_halves(layer, weight, x):
    """The first layer's output, summed over two halves of its input channels in another order."""
    half = x.shape[1] // 2
    parts = [
        torch.nn.functional.conv_transpose2d(
            x[:, sl], weight[sl], None, layer.stride, layer.padding, layer.output_padding
        )
        for sl in (slice(half, None), slice(0, half))
    ]
    return parts[0] + parts[1]


def test_integer_sums_are_exact_in_any_order_while_float_sums_are_not(model, z):
    first = model.entropy_path.layers[0]
    weight, _ = first.integer_weights("cpu")
    x = torch.from_numpy(z).double()
    conv = torch.nn.functional.conv_transpose2d
    whole = conv(x, weight, None, first.stride, first.padding, first.output_padding)
    assert torch.equal(whole, _transposed_conv_by_halves(first, weight, x))
    # The same check on the float32 weights finds rounding differences: the check has teeth.
    float_layer = model.net.h_s[0]
    xf = x.float()
    w = float_layer.weight.detach()
    half = xf.shape[1] // 2
    whole_f = conv(xf, w, None, float_layer.stride, float_layer.padding, (1, 1))
    split_f = conv(xf[:, half:], w[half:], None, 2, 2, (1, 1)) + conv(
        xf[:, :half], w[:half], None, 2, 2, (1, 1)
    )
    assert not torch.equal(whole_f, split_f)


@pytest.mark.parametrize("model_name", ["nic-mshp-n128-v2", "nic-masked-n128-v2"])
def test_integer_weights_are_the_float64_rounding_of_the_weights(model_name):
    model = zoo.load(model_name)
    for layer in model.rate_network(128).entropy_path.layers[::2]:  # the convolutions
        weight, bias = layer.integer_weights("cpu")
        w = layer.layer.weight.detach().double()
        assert weight.dtype == torch.float64 and torch.equal(
            weight, torch.round(w * 2.0**layer.weight_shift)
        )
        assert torch.equal(
            bias, torch.round(layer.layer.bias.detach().double() * 2.0**layer.bias_shift)
        )


def test_integer_path_does_not_depend_on_thread_count(model, z):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        mean1, index1 = model.entropy_path(z)
        torch.set_num_threads(max(2, threads))
        mean2, index2 = model.entropy_path(z)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(mean1, mean2) and torch.equal(index1, index2)


def test_integer_path_stays_close_to_the_float_network(model, z):
    mean, index = model.entropy_path(z)
    assert torch.equal(mean * 2.0**FRACTION_BITS, torch.round(mean * 2.0**FRACTION_BITS))
    with torch.inference_mode():
        mean_f, scale_f = model.net.entropy_parameters(torch.from_numpy(z).float())
    assert (mean - mean_f.double()).abs().max() < 0.1
    agreement = (index == scale_indexes(scale_f, model.scale_table).long()).double().mean()
    assert agreement > 0.98


def test_activations_beyond_exact_float64_are_refused(model):
    huge = np.full((1, model.net.config.N, 2, 2), 2**40, dtype=np.int64)
    with pytest.raises(IntegerOverflowError):
        model.entropy_path(huge)


def _golden_image() -> np.ndarray:
    return np.ascontiguousarray(skdata.chelsea()[60:100, 120:168])  # 48x40: small and fast


def _sha(a: np.ndarray | bytes) -> str:
    return hashlib.sha256(
        a if isinstance(a, bytes) else np.ascontiguousarray(a).tobytes()
    ).hexdigest()


def _golden_name(model: str, rate: float) -> str:
    return f"chelsea-48x40-{model}-r{rate:g}"


GOLDEN_CASES = [(m, r) for m, rates in GOLDEN_POSITIONS.items() for r in rates]


@pytest.mark.parametrize(("model_name", "rate"), GOLDEN_CASES)
def test_golden_bitstreams_decode_to_the_recorded_latents_and_pixels(model_name, rate):
    name = _golden_name(model_name, rate)
    stream = (GOLDEN / f"{name}.nic").read_bytes()
    expected = json.loads((GOLDEN / "golden.json").read_text())[name]
    assert _sha(stream) == expected["stream_sha256"]
    header, model, latents = codec.decode_latents(stream)
    assert model.name == model_name and header.rate_position == rate
    assert (
        _sha(latents.z) == expected["z_sha256"]
        and _sha(latents.y.astype(np.int64)) == expected["y_sha256"]
    )
    assert _sha(codec.decode(stream)) == expected["pixels_sha256"]


@pytest.mark.parametrize(("model_name", "rate"), GOLDEN_CASES)
def test_encoding_today_reproduces_the_golden_stream(model_name, rate):
    stream = codec.encode(_golden_image(), zoo.load(model_name), rate)
    assert stream == (GOLDEN / f"{_golden_name(model_name, rate)}.nic").read_bytes()


def make_golden() -> None:
    """Write the golden streams and their hashes for every model in GOLDEN_POSITIONS."""
    GOLDEN.mkdir(exist_ok=True)
    image, record = _golden_image(), {}
    for model_name, rate in GOLDEN_CASES:
        model = zoo.load(model_name)
        stream = codec.encode(image, model, rate)
        name = _golden_name(model_name, rate)
        (GOLDEN / f"{name}.nic").write_bytes(stream)
        _, _, latents = codec.decode_latents(stream)
        record[name] = {
            "stream_sha256": _sha(stream),
            "z_sha256": _sha(latents.z),
            "y_sha256": _sha(latents.y.astype(np.int64)),
            "pixels_sha256": _sha(codec.decode(stream)),
        }
    (GOLDEN / "golden.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    make_golden()
