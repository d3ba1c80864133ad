"""Tiled coding (nic.tiling): small images cross tile boundaries with tiles of 16 latents (256
pixels). The halos reach past every transform's receptive field, so a tiled stream carries the
untiled stream's latents and decodes to its pixels; an image that fits one tile is never tiled."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from skimage import data as skdata

from nic import codec, zoo
from nic.bitstream import DEFAULT_MAX_MEMORY, TILED_VERSION, VERSION, BitstreamError, pack, unpack
from nic.codec import ToolMismatchError
from nic.extensions import CodingTool
from nic.model_file import load_model_file, save_model_file
from nic.models import ElicHyperprior, HyperpriorConfig
from nic.tiling import Region, Tiling, latent_size, pixel_window, tiling_for

SMALL_TILE = 16


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """600 x 290 pixels: 40 x 20 latents, six tiles of 16 (partial ones right and below)."""
    astronaut = skdata.astronaut()[100:390]
    return np.ascontiguousarray(np.concatenate([astronaut, astronaut[:, :88]], axis=1))


@pytest.fixture(scope="module")
def model():
    return zoo.load()


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2))


def test_tiles_cover_the_latent_once_in_raster_order():
    tiling = Tiling(SMALL_TILE)
    regions = tiling.regions(20, 40)
    assert [(r.top, r.left, r.bottom, r.right) for r in regions] == [
        (0, 0, 16, 16), (0, 16, 16, 32), (0, 32, 16, 40),
        (16, 0, 20, 16), (16, 16, 20, 32), (16, 32, 20, 40),
    ]  # fmt: skip
    covered = np.zeros((20, 40), dtype=int)
    for r in regions:
        r.of(covered)[...] += 1
    assert (covered == 1).all()
    assert Region(0, 16, 16, 32).grown(2, 20, 40) == Region(0, 14, 18, 34)
    assert tiling_for(20, 40, SMALL_TILE) == tiling and tiling_for(16, 16, SMALL_TILE) is None


def test_a_pixel_window_is_the_padded_image_there(photo):
    whole = codec.padded_tensor(photo)
    height, width = latent_size(photo.shape[1], photo.shape[0])
    for region in (Region(0, 0, height, width), Region(14, 30, 20, 40), Region(2, 3, 9, 17)):
        assert torch.equal(pixel_window(photo, region), region.scaled(16).of(whole))


@pytest.mark.parametrize("rate", [0, 3.5])
def test_a_tiled_stream_carries_the_untiled_latents_and_pixels(photo, model, rate):
    whole = codec.analyse(model, photo, rate)
    tiled = codec.analyse(model, photo, rate, tile=SMALL_TILE)
    assert whole.tiling is None and tiled.tiling == Tiling(SMALL_TILE)
    assert len(tiled.regions()) == 6
    # The halos reach past every receptive field: only float summation order may differ.
    assert np.mean(whole.z == tiled.z) > 0.999
    assert np.mean(whole.y == tiled.y) > 0.999
    assert np.mean(whole.y_index == tiled.y_index) > 0.999
    untiled_stream = codec.encode(photo, model, rate)
    tiled_stream = codec.encode(photo, model, rate, tile=SMALL_TILE)
    header, _ = unpack(tiled_stream)
    assert untiled_stream[4] == VERSION and header.version == TILED_VERSION
    assert header.tiling == Tiling(SMALL_TILE) and header.tool == ""
    assert abs(len(tiled_stream) - len(untiled_stream)) <= 8  # the tiling fields, about
    pixels = codec.decode(tiled_stream)
    assert pixels.shape == photo.shape
    assert abs(_psnr(photo, pixels) - _psnr(photo, codec.decode(untiled_stream))) <= 0.02
    # The decoder's pixels are the encoder's reconstruction from its own latents.
    rebuilt = codec.reconstruct(model, tiled, rate, *photo.shape[:2])
    assert np.array_equal(rebuilt, pixels)


def test_the_rate_estimate_is_the_same_tile_by_tile(photo, model):
    code = codec.gain_code(model, 2.5)
    network = model.rate_network(code)
    gain, _ = network.net.gains(network.position)
    g_a_out = codec.analysis(model, photo, code)
    whole = codec.latent_bits(network.net, g_a_out, gain)
    assert codec.latent_bits(network.net, g_a_out, gain, tile=SMALL_TILE) == pytest.approx(
        whole, rel=1e-5
    )


def test_an_image_that_fits_one_tile_is_never_tiled(photo, model):
    assert codec.encode(photo, model, 2, tile=64) == codec.encode(photo, model, 2)
    stream = codec.encode(photo, model, 2, tile=SMALL_TILE)
    header, substreams = unpack(stream)
    one_tile = dataclasses.replace(header, tiling=Tiling(64))  # 40 x 20 latents fit one tile
    with pytest.raises(BitstreamError, match="fits one tile"):
        unpack(pack(one_tile, substreams))


@pytest.mark.parametrize(
    "field, value, message",
    [("tile", 8, "tile of 8"), ("tile", 18, "tile of 18"), ("synthesis_halo", 9, "halo")],
)
def test_the_decoder_refuses_tiling_fields_out_of_range(photo, model, field, value, message):
    header, substreams = unpack(codec.encode(photo, model, 2, tile=SMALL_TILE))
    tiling = Tiling(SMALL_TILE)
    object.__setattr__(tiling, field, value)  # a forged stream: pack does not check it
    with pytest.raises(BitstreamError, match=message):
        codec.decode(pack(dataclasses.replace(header, tiling=tiling), substreams))


def test_the_encoder_refuses_a_tile_size_no_stream_can_name(photo, model):
    with pytest.raises(ValueError, match="tile of 10"):
        codec.encode(photo, model, 2, tile=10)


def test_the_decoder_checks_the_memory_a_stream_needs_before_decoding(photo, model):
    stream = codec.encode(photo, model, 2, tile=SMALL_TILE)
    header, _ = unpack(stream)
    need = codec.decode_memory(header)
    with pytest.raises(BitstreamError, match="--max-memory"):
        codec.decode(stream, max_memory=need - 1)
    assert codec.decode(stream, max_memory=need).shape == photo.shape
    # JPEG AI's largest test image: a tiled stream fits the default budget, an untiled one not.
    tiled = dataclasses.replace(header, width=8160, height=6120, tiling=Tiling())
    untiled = dataclasses.replace(tiled, tiling=None)
    assert codec.decode_memory(tiled) < 2.5 * 2**30 < DEFAULT_MAX_MEMORY
    assert codec.decode_memory(untiled) > 20 * 2**30


class Unchanged(CodingTool):
    name = "unchanged"


class HalfTheChannels(CodingTool):
    """Codes the first half of the latent channels (a map without sub-streams of its own)."""

    name = "half"

    def coded_latents(self, net, y):
        mask = torch.zeros(y.shape, dtype=torch.bool, device=y.device)
        mask[:, : y.shape[1] // 2] = True
        return mask, []

    def decode_coded_latents(self, substreams, shape):
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[:, : shape[1] // 2] = True
        return mask


def test_tools_code_tiled_streams(photo, model):
    stream = codec.encode(photo, model, 3, tool=Unchanged(), tile=SMALL_TILE)
    header, _ = unpack(stream)
    assert header.version == TILED_VERSION and header.tool == "unchanged"
    assert np.array_equal(
        codec.decode(stream, tool=Unchanged()),
        codec.decode(codec.encode(photo, model, 3, tile=SMALL_TILE)),
    )
    with pytest.raises(ToolMismatchError):
        codec.decode(stream)
    half = codec.encode(photo, model, 3, tool=HalfTheChannels(), tile=SMALL_TILE)
    latents = codec.analyse(model, photo, 3, tool=HalfTheChannels(), tile=SMALL_TILE)
    assert not latents.y[:, model.net.config.M // 2 :].any()
    assert np.array_equal(
        codec.decode(half, tool=HalfTheChannels()),
        codec.reconstruct(model, latents, 3, *photo.shape[:2], tool=HalfTheChannels()),
    )


def test_a_context_model_codes_tiles_in_order(tmp_path, photo):
    """ELIC's steps read the latents of earlier tiles; encoder and decoder agree on them."""
    torch.manual_seed(0)
    config = HyperpriorConfig(
        N=16, M=32, lambdas=(0.004, 0.1), entropy_model="elic", groups=(8, 24)
    )
    save_model_file(tmp_path / "elic.pt", "elic-test", ElicHyperprior(config).eval(), {})
    elic = load_model_file(tmp_path / "elic.pt")
    stream = codec.encode(photo, elic, 1, tile=SMALL_TILE)
    assert unpack(stream)[0].version == TILED_VERSION
    latents = codec.analyse(elic, photo, 1, tile=SMALL_TILE)
    header, _, decoded = codec.decode_latents(stream, elic)
    assert np.array_equal(decoded.y, latents.y) and np.array_equal(decoded.z, latents.z)
    assert torch.equal(decoded.y_hat, latents.y_hat)
    assert np.array_equal(
        codec.decode(stream, elic), codec.reconstruct(elic, latents, 1, *photo.shape[:2])
    )
