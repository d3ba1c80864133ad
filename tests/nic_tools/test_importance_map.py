"""The importance-map tool: its mask and proxy gradient (Li et al., CVPR 2018), its map coded
in its own sub-stream, decoding refusing maps it did not write, and its off switch = nic-ref."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nic import codec
from nic.bitstream import BitstreamError, pack, unpack
from nic.ctc_codec import NicReference
from nic.entropy import encode_symbols
from nic_tools.importance_map import (
    GROUPS,
    GroupMask,
    ImportanceMapCodec,
    ImportanceMapTool,
    group_ranks,
)


def test_the_mask_keeps_the_first_ceil_l_p_groups():
    group = group_ranks(torch.arange(32))  # 32 channels, 2 per group
    p = torch.tensor([0.0, 0.01, 0.5, 1.0]).view(1, 1, 2, 2)
    mask = GroupMask.apply(p, group)
    kept = mask.sum(dim=1).view(-1).tolist()
    assert kept == [0, 2 * 1, 2 * 8, 32]  # ceil(16 p) groups of 2 channels


def test_the_proxy_gradient_is_a_one_level_ramp_around_each_step():
    group = group_ranks(torch.arange(GROUPS))  # one channel per group
    p = torch.tensor([[[[0.30]]]], requires_grad=True)  # L p = 4.8
    GroupMask.apply(p, group).sum().backward()
    # dm_k/dp = L where k - 1 <= 4.8 < k + 1, i.e. for groups k = 4 and 5
    assert p.grad.item() == pytest.approx(2 * GROUPS)
    weights = torch.arange(GROUPS, dtype=torch.float32).view(1, -1, 1, 1)
    p.grad = None
    (GroupMask.apply(p, group) * weights).sum().backward()
    assert p.grad.item() == pytest.approx(GROUPS * (4 + 5))


def test_the_map_network_is_trained_through_the_mask():
    tool = ImportanceMapTool(weights=None, channels=192)
    y = torch.randn(1, 192, 4, 4) * 3
    p = tool.net(y)
    loss = GroupMask.apply(p, group_ranks(tool.order)).mean()
    loss.backward()
    grads = [q.grad for q in tool.net.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.fixture(scope="module")
def tool():
    return ImportanceMapTool(weights=None)


def test_streams_carry_the_map_and_decode_with_the_tool(tool, small_photo):
    model = NicReference().model
    stream = codec.encode(small_photo, model, 3, tool=tool)
    header, parts = unpack(stream)
    assert header.tool == "importance-map" and header.tool_substreams == 1
    latents = codec.analyse(model, small_photo, 3, tool=tool)
    _, _, decoded = codec.decode_latents(stream, model, tool=tool)
    np.testing.assert_array_equal(decoded.y, latents.y)
    pixels = codec.decode(stream, model, tool=tool)
    assert pixels.shape == small_photo.shape
    assert len(stream) < len(codec.encode(small_photo, model, 3))  # latents left out


def test_a_map_the_tool_did_not_write_is_refused(tool, small_photo):
    model = NicReference().model
    header, parts = unpack(codec.encode(small_photo, model, 3, tool=tool))
    h, w = -(-small_photo.shape[0] // 64) * 4, -(-small_photo.shape[1] // 64) * 4
    too_many = np.full((1, 1, h, w), GROUPS + 1, dtype=np.int64)
    bad = encode_symbols(too_many, np.zeros_like(too_many), tool.tables)
    with pytest.raises(BitstreamError, match="map values outside"):
        codec.decode(pack(header, [*parts[:2], bad]), model, tool=tool)
    with pytest.raises(BitstreamError, match="importance-map map"):
        codec.decode(pack(header, [*parts[:2], b"\0" * 4]), model, tool=tool)


def test_switched_off_it_is_nic_ref(small_photo):
    assert ImportanceMapCodec("off").encode(small_photo, 3) == NicReference().encode(small_photo, 3)
    with pytest.raises(ValueError, match="on or off"):
        ImportanceMapCodec("maybe")


def test_the_shipped_weights_load_and_name_themselves():
    tool = ImportanceMapTool()
    assert "weights sha256:" in tool.version() and len(tool.map_counts) == GROUPS + 1
    assert sorted(tool.order.tolist()) == list(range(192))
    assert ImportanceMapCodec().version().endswith(tool.version())
