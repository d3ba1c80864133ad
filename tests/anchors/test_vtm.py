"""The VTM anchor: without a build it answers only from frozen results and says how to build VTM;
with the pinned build (anchors.vtm_build; $CTC_VTM_DIR or the default folder) it codes for real.
"""

from __future__ import annotations

import struct

import pytest

from anchors.ffmpeg import AnchorError
from anchors.vtm import (
    CONFIG,
    PINNED_VERSION,
    VTM_COMMIT,
    VtmCodec,
    decoder_command,
    encoder_command,
    vtm_dir,
)
from anchors.vtm_build import BuildError, allow_warnings
from ctc.codec import Codec
from ctc.metrics.psnr import psnr_rgb


def test_without_a_build_it_has_the_pinned_version_and_says_how_to_build(tmp_path, crop):
    codec = VtmCodec(str(tmp_path))
    assert isinstance(codec, Codec) and codec.name == "vtm" and not codec.available
    assert codec.version() == PINNED_VERSION and VTM_COMMIT[:10] in PINNED_VERSION
    assert (codec.knob.low, codec.knob.high, codec.knob.rate_increases) == (0, 63, False)
    assert "python -m anchors.vtm_build" in codec.unavailable
    with pytest.raises(AnchorError, match="no VTM build in .*anchors.vtm_build"):
        codec.encode(crop, 32)
    with pytest.raises(AnchorError, match="no VTM build"):
        codec.decode(struct.pack(">HH", 8, 8) + b"\x00\x00\x01")


def test_the_size_record_is_checked_before_anything_runs(tmp_path):
    codec = VtmCodec(str(tmp_path))
    with pytest.raises(AnchorError, match="shorter than its size record"):
        codec.decode(b"\x00\x08\x00")
    with pytest.raises(AnchorError, match="size record 0x8 is empty"):
        codec.decode(struct.pack(">HH", 0, 8) + b"x")


def test_ctc_vtm_dir_names_the_build(tmp_path, monkeypatch):
    monkeypatch.setenv("CTC_VTM_DIR", str(tmp_path))
    assert vtm_dir() == tmp_path and VtmCodec().folder == tmp_path


def test_command_lines(tmp_path):
    enc = encoder_command(tmp_path / "EncoderApp", tmp_path / CONFIG, tmp_path / "i.yuv", 64, 48,
                          37, tmp_path / "b")  # fmt: skip
    assert enc[1:3] == ["-c", str(tmp_path / CONFIG)] and "--QP=37" in enc
    assert {"--InputChromaFormat=444", "--ChromaFormatIDC=444", "--InternalBitDepth=10",
            "--OutputBitDepth=10", "--SourceWidth=64", "--SourceHeight=48",
            "--FramesToBeEncoded=1"} <= set(enc)  # fmt: skip
    assert decoder_command(tmp_path / "D", tmp_path / "b", tmp_path / "r.yuv")[-2:] == ["-d", "10"]


def test_the_build_changes_only_the_gcc_warnings_as_errors_line(tmp_path):
    lists = tmp_path / "CMakeLists.txt"
    lists.write_text(
        "# bb_enable_warnings( gcc warnings-as-errors -Wno-sign-compare )\n"
        "bb_enable_warnings( gcc warnings-as-errors -Wno-sign-compare -Wno-class-memaccess)\n"
        "  bb_enable_warnings( clang warnings-as-errors\n"
    )
    allow_warnings(lists)
    assert lists.read_text().splitlines() == [
        "# bb_enable_warnings( gcc warnings-as-errors -Wno-sign-compare )",
        "bb_enable_warnings( gcc -Wno-sign-compare -Wno-class-memaccess)",
        "  bb_enable_warnings( clang warnings-as-errors",
    ]
    with pytest.raises(BuildError, match="another VTM version"):
        allow_warnings(lists)


@pytest.mark.skipif(
    not VtmCodec().available, reason="no VTM build here (python -m anchors.vtm_build)"
)
def test_real_vtm_codes_odd_sizes_deterministically(odd_crop):
    codec = VtmCodec()
    first = codec.encode(odd_crop, 32)
    assert first[:4] == struct.pack(">HH", 67, 51) and first == codec.encode(odd_crop, 32)
    decoded = codec.decode(first)
    assert decoded.shape == odd_crop.shape and psnr_rgb(odd_crop, decoded) > 28
    assert len(codec.encode(odd_crop, 42)) < len(first)
