"""Coding tools against the reference codec (nic.extensions): a tool that changes nothing codes
the anchor's latents, the reference path stays version 3 byte for byte, and a bit-allocation map
leaves latents uncoded, decoded as their predicted means."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import pytest
import torch

from nic import codec, zoo
from nic.bitstream import TOOL_VERSION, VERSION, BitstreamError, Header, pack, unpack
from nic.codec import ToolMismatchError
from nic.ctc_codec import NicCodec
from nic.extensions import CodingTool


class Unchanged(CodingTool):
    """Every hook at the reference's default."""

    name = "unchanged"


class FirstChannels(CodingTool):
    """Codes only the first `kept` latent channels everywhere; one 32-bit word says how many."""

    name = "first-channels"

    def __init__(self, kept: int = 96) -> None:
        self.kept = kept

    def coded_latents(self, net, y):
        mask = torch.zeros(y.shape, dtype=torch.bool, device=y.device)
        mask[:, : self.kept] = True
        return mask, [struct.pack(">I", self.kept)]

    def decode_coded_latents(self, substreams, shape):
        if len(substreams) != 1 or len(substreams[0]) != 4:
            raise BitstreamError("first-channels: expected one 4-byte sub-stream")
        (kept,) = struct.unpack(">I", substreams[0])
        if not 1 <= kept <= shape[1]:
            raise BitstreamError(f"first-channels: {kept} channels outside 1..{shape[1]}")
        mask = torch.zeros(shape, dtype=torch.bool)
        mask[:, :kept] = True
        return mask


@pytest.fixture(scope="module", params=["nic-masked-n128-v2", "nic-mshp-n128-v2"])
def model(request):
    return zoo.load(request.param)


def test_the_reference_path_is_version_3_and_a_tool_that_changes_nothing_codes_its_latents(
    model, small_photo
):
    reference = codec.encode(small_photo, model, 3)
    assert reference[4] == VERSION and NicCodec().tool is None
    header, parts = unpack(reference)
    assert header.tool == "" and len(parts) == 2
    tool = Unchanged()
    stream = codec.encode(small_photo, model, 3, tool=tool)
    assert stream[4] == TOOL_VERSION
    tool_header, tool_parts = unpack(stream)
    assert (tool_header.tool, tool_header.tool_substreams) == ("unchanged", 0)
    assert tool_parts == parts  # the same hyper-latent and latent sub-streams, bit for bit
    np.testing.assert_array_equal(
        codec.decode(stream, model, tool=tool), codec.decode(reference, model)
    )


def test_a_stream_decodes_only_with_the_tool_that_made_it(model, small_photo):
    tool = FirstChannels()
    stream = codec.encode(small_photo, model, 3, tool=tool)
    reference = codec.encode(small_photo, model, 3)
    with pytest.raises(ToolMismatchError, match="coding tool 'first-channels'.*reference codec"):
        codec.decode(stream, model)
    with pytest.raises(ToolMismatchError, match="by the reference codec; .* 'unchanged'"):
        codec.decode(reference, model, tool=Unchanged())
    with pytest.raises(ToolMismatchError, match="'first-channels'; .* 'unchanged'"):
        codec.decode(stream, model, tool=Unchanged())


def test_latents_outside_the_map_cost_nothing_and_decode_as_their_means(model, small_photo):
    tool = FirstChannels(kept=96)
    stream = codec.encode(small_photo, model, 3, tool=tool)
    assert len(stream) < len(codec.encode(small_photo, model, 3))
    latents = codec.analyse(model, small_photo, 3, tool=tool)
    assert not latents.y[:, 96:].any()  # residuals of uncoded latents are 0
    header, _, decoded = codec.decode_latents(stream, model, tool=tool)
    np.testing.assert_array_equal(decoded.y, latents.y)
    torch.testing.assert_close(decoded.y_hat, latents.y_hat, rtol=0, atol=0)
    h, w = small_photo.shape[:2]
    pixels = codec.decode(stream, model, tool=tool)
    np.testing.assert_array_equal(pixels, codec.reconstruct(model, latents, 3, h, w, tool))
    assert pixels.shape == small_photo.shape and header.tool_substreams == 1


def test_the_decoder_refuses_a_map_the_tool_did_not_write(model, small_photo):
    tool = FirstChannels()
    header, parts = unpack(codec.encode(small_photo, model, 3, tool=tool))
    for side in (struct.pack(">I", 0), struct.pack(">I", 10_000), b"\0" * 8):
        altered = pack(header, [*parts[:2], side])
        with pytest.raises(BitstreamError, match="first-channels"):
            codec.decode(altered, model, tool=tool)


def test_rate_control_codes_with_the_tool(small_photo):
    class Codec(NicCodec):
        name = "nic-first-channels"
        tool = FirstChannels()

    tool_codec = Codec()
    assert tool_codec.version().endswith(", tool first-channels")
    rate, data, encodes = tool_codec.encode_to_target(small_photo, 0.5, 0.45, 0.55)
    assert unpack(data)[0].tool == "first-channels" and encodes >= 1
    assert 0.45 <= 8 * len(data) / small_photo.shape[0] / small_photo.shape[1] <= 0.55
    assert tool_codec.decode(data).shape == small_photo.shape


@pytest.mark.parametrize(
    ("tool", "count", "message"),
    [
        ("", 1, "sub-streams of a coding tool need the tool's name"),
        ("x" * 33, 0, "coding tool name"),
        ("bad name", 0, "coding tool name"),
        ("ok", 5, "0..4 sub-streams"),
    ],
)
def test_the_container_refuses_malformed_tool_fields(tool, count, message):
    header = Header(1, bytes(4), 0, 0, 8, 8, tool=tool, tool_substreams=count)
    with pytest.raises(ValueError, match=message):
        pack(header, [b""] * (2 + count))


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (lambda body: body.replace(b"\x02ok", b"\x00ok"), "coding tool name of 0 bytes"),
        (lambda body: body.replace(b"\x02ok", b"\x02o "), "not letters, digits"),
        (lambda body: body.replace(b"\x02ok\x01", b"\x02ok\x05"), "5 coding tool sub-streams"),
    ],
)
def test_unpack_refuses_malformed_tool_fields(patch, message):
    good = pack(Header(1, bytes(4), 0, 0, 8, 8, tool="ok", tool_substreams=1), [b""] * 3)
    assert unpack(good)[0].tool == "ok"
    with pytest.raises(BitstreamError, match=message):
        unpack(patch(good))


def test_a_map_that_codes_nothing_and_maps_of_the_wrong_form(model, small_photo):
    class Nothing(CodingTool):
        name = "nothing"

        def coded_latents(self, net, y):
            return torch.zeros(y.shape, dtype=torch.bool, device=y.device), [b"\0" * 4]

        def decode_coded_latents(self, substreams, shape):
            return torch.zeros(shape, dtype=torch.bool)

    stream = codec.encode(small_photo, model, 3, tool=Nothing())
    assert codec.decode(stream, model, tool=Nothing()).shape == small_photo.shape

    class Wrong(CodingTool):
        name = "wrong"

        def coded_latents(self, net, y):
            return torch.ones(y.shape[1:], dtype=torch.bool, device=y.device), []

    with pytest.raises(ValueError, match="wrong: coded_latents gave a torch.bool"):
        codec.encode(small_photo, model, 3, tool=Wrong())


def test_a_tool_without_sub_streams_refuses_streams_that_carry_some(model, small_photo):
    header, parts = unpack(codec.encode(small_photo, model, 3, tool=Unchanged()))
    junk = pack(dataclasses.replace(header, tool_substreams=1), [*parts, b"\0" * 4])
    with pytest.raises(BitstreamError, match="unchanged: its streams have no sub-streams"):
        codec.decode(junk, model, tool=Unchanged())


def test_on_device_keeps_the_codec_and_its_switch(small_photo):
    class Codec(NicCodec):
        name = "nic-first-channels"

        def __init__(self, switch=None):
            super().__init__(None)
            self.tool = None if switch == "off" else FirstChannels()

    from nic.ctc_codec import NicReference

    off = Codec("off").on_device("cpu")
    assert off.tool is None and type(off) is Codec
    assert off.encode(small_photo, 3) == NicReference().on_device("cpu").encode(small_photo, 3)
    assert Codec().on_device("cpu").tool is not None
