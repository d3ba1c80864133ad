import dataclasses

import numpy as np
import pytest
import torch

from nic import codec, model_file, zoo
from nic.bitstream import GAIN_STEPS, BitstreamError, pack, unpack
from nic.codec import ModelMismatchError
from nic.image_io import ImageFormatError
from nic.model_file import load_model_file, save_model_file
from nic.ratecontrol import encode_to_target


@pytest.fixture(scope="module", params=["nic-masked-n128-v2", "nic-mshp-n128-v2"])
def model(request):
    """Both kinds of zoo model: the masked default and the gain model."""
    return zoo.load(request.param)


def psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255**2 / mse)


def test_decoder_latents_equal_encoder_latents_and_pixels_equal_reconstruction(model, small_photo):
    k = 4
    latents = codec.analyse(model, small_photo, k)
    stream = codec.encode(small_photo, model, k)
    header, _, decoded = codec.decode_latents(stream, model)
    np.testing.assert_array_equal(decoded.z, latents.z)
    np.testing.assert_array_equal(decoded.y, latents.y)
    np.testing.assert_array_equal(decoded.y_index, latents.y_index)
    h, w = small_photo.shape[:2]
    expected = codec.reconstruct(model, latents, k, h, w)
    np.testing.assert_array_equal(codec.decode(stream, model), expected)
    assert (header.width, header.height, header.rate_position) == (w, h, k)


def test_encoding_is_deterministic(model, small_photo):
    assert codec.encode(small_photo, model, 2) == codec.encode(small_photo, model, 2)


def test_file_size_matches_the_model_rate_estimate(model, kodak_size_photo):
    for k in (1, 5):
        stream = codec.encode(kodak_size_photo, model, k)
        header_bytes = len(stream) - sum(len(s) for s in unpack(stream)[1])
        estimate = codec.estimated_bits(model, kodak_size_photo, k)
        payload_bits = 8 * (len(stream) - header_bytes)
        assert abs(payload_bits - estimate) <= 0.02 * estimate, (k, payload_bits, estimate)


def test_rate_and_quality_increase_with_the_rate_point(model, small_photo):
    sizes, qualities = [], []
    for k in (0, model.num_rate_points - 1):
        stream = codec.encode(small_photo, model, k)
        sizes.append(len(stream))
        qualities.append(psnr(small_photo, codec.decode(stream)))
    assert sizes[0] < sizes[1] and qualities[0] < qualities[1]


@pytest.mark.parametrize(("h", "w"), [(1, 1), (17, 33), (7, 3000), (65, 64)])
def test_any_size_round_trips(model, astronaut, h, w):
    image = np.ascontiguousarray(np.tile(astronaut, (-(-h // 512), -(-w // 512), 1))[:h, :w])
    out = codec.decode(codec.encode(image, model, 3), model)
    assert out.shape == (h, w, 3) and out.dtype == np.uint8
    if h * w > 64:
        assert psnr(image, out) > 20


def test_decode_finds_the_zoo_model_by_name(small_photo):
    stream = codec.encode(small_photo, None, 0)
    assert codec.decode(stream).shape == small_photo.shape


def test_stream_from_another_model_is_refused_naming_both(model, small_photo, tmp_path):
    other_path = tmp_path / "other.pt"
    save_model_file(other_path, "other-model", model.net, {})
    other = load_model_file(other_path)
    stream = codec.encode(small_photo, other, 1)
    match = f"a model file \\(weights {other.weights_hash.hex()}\\), not with {model.name}"
    with pytest.raises(ModelMismatchError, match=match):
        codec.decode(stream, model)
    # Same name, different weights: refused by the weights hash.
    renamed = dataclasses.replace(other, name=model.name)
    with pytest.raises(ModelMismatchError, match="weights"):
        codec.decode(codec.encode(small_photo, renamed, 1), model)


def test_bad_rate_point_and_bad_pixels_are_clear_errors(model, small_photo):
    with pytest.raises(ValueError, match="rate 99 outside"):
        codec.encode(small_photo, model, 99)
    with pytest.raises(ImageFormatError):
        codec.encode(small_photo.astype(np.float32), model, 1)
    with pytest.raises(ImageFormatError):
        codec.encode(small_photo[:, :, :2], model, 1)


def test_corrupt_payload_is_refused(model, small_photo):
    stream = bytearray(codec.encode(small_photo, model, 3))
    stream[-5] ^= 0xFF
    with pytest.raises(BitstreamError, match="CRC"):
        codec.decode(bytes(stream), model)


def test_fractional_rates_lie_between_their_rate_points(model, small_photo):
    sizes = [len(codec.encode(small_photo, model, r)) for r in (4, 4.25, 4.5, 4.75, 5)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[2] < sizes[4]
    stream = codec.encode(small_photo, model, 4.5)
    header, _ = unpack(stream)
    assert header.gain_code == 4.5 * GAIN_STEPS and header.rate_position == 4.5
    q = [psnr(small_photo, codec.decode(codec.encode(small_photo, model, r))) for r in (4, 4.5, 5)]
    assert q[0] < q[1] < q[2]


def test_whole_rate_positions_use_the_rate_points_own_gains(model):
    for k in (0, 3, model.num_rate_points - 1):
        network = model.rate_network(k * GAIN_STEPS)
        gain, inverse = network.net.gains(network.position)
        if model.masked:
            own = model.net.independent[k]
            expected = own["log_gain"][0].exp(), own["log_inverse_gain"][0].exp()
        else:
            expected = model.net.log_gain[k].exp(), model.net.log_inverse_gain[k].exp()
        assert torch.equal(gain[0, :, 0, 0], expected[0])
        assert torch.equal(inverse[0, :, 0, 0], expected[1])


@pytest.mark.parametrize("target", [0.25, 0.8, 1.5])
def test_rate_control_lands_in_the_window_with_few_encodes(model, kodak_size_photo, target):
    match = encode_to_target(kodak_size_photo, model, target)
    h, w = kodak_size_photo.shape[:2]
    assert match.bpp == 8 * len(match.data) / (w * h)
    assert 0.95 * target <= match.bpp <= 1.05 * target
    assert match.encodes <= 2 and match.estimates <= 12
    assert unpack(match.data)[0].rate_position == match.rate
    assert codec.decode(match.data, model).shape == kodak_size_photo.shape


def test_rate_control_out_of_reach_returns_the_end_of_the_range(model, small_photo):
    match = encode_to_target(small_photo, model, 0.001)
    assert match.rate == 0 and match.bpp > 0.001 * 1.05


def _with_z(model, latents, z):
    """The latents with hyper-latent `z`, their tables re-derived from it as the decoder does."""
    network = model.rate_network(0, latents.network)
    mean, index, _ = network.entropy_path.start(z, model.device).parameters(0, latents.y_hat)
    y_hat = torch.from_numpy(latents.y).to(mean) + mean
    return dataclasses.replace(latents, z=z, y_index=index.numpy(), y_hat=y_hat)


def test_latents_far_outside_their_tables_are_coded_exactly_not_clamped(small_photo):
    model = zoo.load("nic-masked-n128-v2")
    latents = codec.analyse(model, small_photo, 0)
    z = latents.z.copy()
    z[0, 0, 0, 0] = model.z_tables[0].offsets[0] - 300
    latents = _with_z(model, latents, z)
    latents.y[0, 0, 0, 0] = 10**6
    latents.y[0, 5, 1, 2] = -77777
    h, w = small_photo.shape[:2]
    stream = codec.pack_stream(model, latents, 0, w, h)
    _, _, decoded = codec.decode_latents(stream, model)
    np.testing.assert_array_equal(decoded.z, latents.z)
    np.testing.assert_array_equal(decoded.y, latents.y)
    assert decoded.y.max() == 10**6


def test_a_masked_model_codes_a_position_with_either_neighbouring_network(small_photo):
    model = zoo.load("nic-masked-n128-v2")
    crossover = model_file.NETWORK_CROSSOVER
    assert model.default_network(2 * GAIN_STEPS + round(crossover * GAIN_STEPS) - 1) == 2
    assert model.default_network(2 * GAIN_STEPS + round(crossover * GAIN_STEPS)) == 3
    h, w = small_photo.shape[:2]
    for network in (2, 3):
        stream = codec.encode(small_photo, model, 2.25, network=network)
        header, _, decoded = codec.decode_latents(stream, model)
        assert header.network == network and decoded.network == network
        expected = codec.reconstruct(
            model, codec.analyse(model, small_photo, 2.25, network), 2.25, h, w
        )
        np.testing.assert_array_equal(codec.decode(stream), expected)
    with pytest.raises(ValueError, match="network 4 cannot code rate position 2.25"):
        codec.encode(small_photo, model, 2.25, network=4)
    header, substreams = unpack(codec.encode(small_photo, model, 2.25))
    forged = pack(dataclasses.replace(header, network=5), substreams)
    with pytest.raises(BitstreamError, match="network 5 cannot code"):
        codec.decode(forged)


def test_a_stream_of_an_unregistered_model_file_needs_that_file(model, small_photo, tmp_path):
    path = tmp_path / "mine.pt"
    save_model_file(path, "mine", model.net, {})
    stream = codec.encode(small_photo, load_model_file(path), 1)
    assert unpack(stream)[0].model_index == 0
    with pytest.raises(ModelMismatchError, match="not in the zoo.*--model FILE"):
        codec.decode(stream)
    assert codec.decode(stream, str(path)).shape == small_photo.shape
