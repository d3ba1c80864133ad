import os
import shutil

import numpy as np
import pytest

from anchors.bpg import (
    MAGIC,
    BpgCodec,
    bpg_header,
    bpgdec_command,
    bpgenc_command,
    parse_header,
    read_ue7,
    ue7,
    x265_command,
)
from anchors.ffmpeg import AnchorError, ffmpeg_version
from ctc.codec import Codec
from ctc.metrics.psnr import psnr_rgb


@pytest.fixture(scope="module")
def codec():
    return BpgCodec(implementation="embedded")


def nal_types(stream: bytes) -> list[int]:
    """HEVC NAL unit types of an Annex-B stream (type = bits 1..6 of the first header byte)."""
    parts = stream.split(b"\x00\x00\x01")[1:]
    return [(p[0] >> 1) & 0x3F for p in parts if p]


def test_ue7_matches_the_bpg_spec_examples():
    assert [ue7(8), ue7(542), ue7(728855)] == [b"\x08", b"\x84\x1e", b"\xac\xbe\x17"]
    assert read_ue7(b"\xac\xbe\x17", 0) == (728855, 3)
    with pytest.raises(AnchorError, match="non-canonical"):
        read_ue7(b"\x80\x08", 0)


def test_is_a_ctc_codec_whose_version_says_what_runs(codec):
    assert isinstance(codec, Codec) and codec.name == "bpg" and not codec.external
    assert (codec.knob.kind, codec.knob.low, codec.knob.high) == ("integer", 0, 51)
    assert not codec.knob.rate_increases
    version = codec.version()
    assert version.startswith("libx265 ") and f"via {ffmpeg_version()}" in version
    assert "bpgenc-equivalent, 444, ycbcr601" in version and "x265 veryslow" in version


def test_file_is_the_bpg_header_then_an_intra_hevc_stream_without_sei(codec, odd_crop):
    data = codec.encode(odd_crop, 30)
    width, height, stream = parse_header(data)
    assert (width, height) == (67, 51)
    assert data == bpg_header(67, 51, len(stream)) + stream and data[:4] == MAGIC
    assert len(data) - len(stream) == 4 + 2 + 1 + 1 + len(ue7(len(stream)))
    types = nal_types(stream)
    assert types[:3] == [32, 33, 34] and types[3] in (19, 20)  # VPS SPS PPS, one IDR slice
    assert 39 not in types and 40 not in types  # no SEI: x265's info SEI is off


def test_roundtrip_odd_sides_and_rate_falls_with_qp(codec, odd_crop):
    sizes = [len(codec.encode(odd_crop, qp)) for qp in (12, 27, 42)]
    assert sizes[0] > sizes[1] > sizes[2]
    decoded = codec.decode(codec.encode(odd_crop, 22))
    assert decoded.shape == odd_crop.shape and decoded.dtype == np.uint8
    assert psnr_rgb(odd_crop, decoded) > 38
    assert codec.encode(odd_crop, 22) == codec.encode(odd_crop, 22.2)  # deterministic, whole QP


def test_bad_input_and_bad_files_are_clear_errors(codec, crop):
    with pytest.raises(ValueError, match="QP 52 outside 0..51"):
        codec.encode(crop, 52)
    with pytest.raises(ValueError, match="expected uint8"):
        codec.encode(crop.astype(np.float32), 30)
    with pytest.raises(AnchorError, match="bad magic"):
        codec.decode(b"not a bpg file at all")
    data = codec.encode(crop, 30)
    with pytest.raises(AnchorError, match="picture data"):
        codec.decode(data[: len(data) // 2])


def test_embedded_command_uses_bpgenc_settings(tmp_path):
    cmd = x265_command("ffmpeg", tmp_path / "in.yuv", 8, 6, 27, 8, tmp_path / "o.hevc")
    assert (
        cmd[cmd.index("-pix_fmt") + 1] == "yuv444p" and cmd[cmd.index("-preset") + 1] == "veryslow"
    )
    assert cmd[cmd.index("-tune") + 1] == "ssim"
    params = cmd[cmd.index("-x265-params") + 1].split(":")
    assert {"qp=27", "keyint=1", "info=0", "hash=0"} <= set(params)


def test_external_commands_are_the_ctc_recipe(tmp_path):
    enc = bpgenc_command("/opt/bpgenc", tmp_path / "a.png", 32, 8, tmp_path / "a.bpg")
    recipe = ["-f", "444", "-c", "ycbcr", "-b", "8", "-e", "x265", "-q", "32", "-m", "8"]
    assert enc == ["/opt/bpgenc", *recipe, "-o", str(tmp_path / "a.bpg"), str(tmp_path / "a.png")]
    assert bpgdec_command("bpgdec", tmp_path / "a.bpg", tmp_path / "b.png") == [
        "bpgdec", "-o", str(tmp_path / "b.png"), str(tmp_path / "a.bpg")]  # fmt: skip


def test_missing_or_misconfigured_binaries_are_clear_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(AnchorError, match="bpgenc and bpgdec not found"):
        BpgCodec(implementation="bpgenc")
    assert not BpgCodec().external  # auto falls back to the embedded encoder
    with pytest.raises(AnchorError, match="configured path /nowhere/bpgenc does not exist"):
        BpgCodec(bpgenc="/nowhere/bpgenc")
    monkeypatch.setenv("CTC_BPG_LEVEL", "12")
    with pytest.raises(AnchorError, match="CTC_BPG_LEVEL must be 1..9"):
        BpgCodec()


@pytest.mark.skipif(
    not (shutil.which("bpgenc") or os.environ.get("CTC_BPGENC")), reason="no bpgenc here"
)
def test_real_bpgenc_roundtrip(crop):
    codec = BpgCodec(implementation="bpgenc")
    data = codec.encode(crop, 30)
    assert data[:4] == b"BPG\xfb" and codec.version().startswith("bpgenc ")
    assert psnr_rgb(crop, codec.decode(data)) > 30
