"""The VTM anchor: without a build it answers only from frozen results and says how to build VTM;
with the pinned build (anchors.vtm_build; $CTC_VTM_DIR or the default folder) it codes for real.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

import anchors.vtm as vtm
import anchors.vtm_build as vtm_build
from anchors.ffmpeg import AnchorError
from anchors.vtm import (
    CONFIG,
    PINNED_VERSION,
    VTM_COMMIT,
    VTM_RELEASE,
    VtmCodec,
    decoder_command,
    encoder_command,
    vtm_dir,
)
from anchors.vtm_build import BuildError, allow_warnings, record_build
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


# Fake builds: shell scripts and a configuration of our own, pinned by monkeypatching.

ENCODER, DECODER = "EncoderAppStatic", "DecoderAppStatic"
SCRIPT = "#!/bin/sh\n{body}\n"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fake_build(folder: Path, monkeypatch, encoder: str = "exit 0", decoder: str = "exit 0",
                hashes: bool = True) -> Path:  # fmt: skip
    """A folder like anchors.vtm_build's, whose configuration is the pinned one for the test."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in ((ENCODER, encoder), (DECODER, decoder)):
        (folder / name).write_text(SCRIPT.format(body=body))
        (folder / name).chmod(0o755)
    (folder / CONFIG).write_text("IntraPeriod : 1\n")
    monkeypatch.setattr(vtm, "CONFIG_SHA256", _sha(folder / CONFIG))
    record = {"release": VTM_RELEASE, "commit": VTM_COMMIT}
    if hashes:
        record["sha256"] = {n: _sha(folder / n) for n in (ENCODER, DECODER, CONFIG)}
    (folder / "build.json").write_text(json.dumps(record))
    return folder


def test_the_pinned_version_needs_the_recorded_files_and_the_pinned_configuration(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(vtm, "banner_version", lambda args, pattern: "8.0")
    build = _fake_build(tmp_path / "b", monkeypatch)
    assert VtmCodec(str(build)).version() == PINNED_VERSION
    (build / CONFIG).write_text("IntraPeriod : 1\nQP : 22\n")  # an edited configuration
    edited = VtmCodec(str(build)).version()
    assert edited != PINNED_VERSION and edited.startswith("VTM 8.0 EncoderApp/DecoderApp (")
    assert f"sha256 {_sha(build / CONFIG)[:12]}" in edited

    build = _fake_build(tmp_path / "c", monkeypatch)
    (build / DECODER).write_text(SCRIPT.format(body="exit 1"))  # a replaced binary
    assert VtmCodec(str(build)).version() != PINNED_VERSION

    build = _fake_build(tmp_path / "d", monkeypatch)
    monkeypatch.setattr(vtm, "CONFIG_SHA256", "0" * 64)  # recorded, but not VTM 8.0's own
    assert VtmCodec(str(build)).version() != PINNED_VERSION

    build = _fake_build(tmp_path / "e", monkeypatch, hashes=False)  # a build.json of before
    assert VtmCodec(str(build)).version() != PINNED_VERSION


def test_the_pinned_configuration_hash_is_that_of_vtm_8_0():
    assert re.fullmatch(r"[0-9a-f]{64}", vtm.CONFIG_SHA256)
    config = vtm_dir() / CONFIG
    if not (config.is_file() and (vtm_dir() / "build.json").is_file()):
        pytest.skip("no VTM build here (python -m anchors.vtm_build)")
    assert _sha(config) == vtm.CONFIG_SHA256


def test_record_adds_the_hashes_only_to_a_pinned_build(tmp_path, monkeypatch):
    build = _fake_build(tmp_path / "b", monkeypatch, hashes=False)
    monkeypatch.setattr(vtm_build, "banner_version", lambda args, pattern: "23.4")
    with pytest.raises(BuildError, match="EncoderAppStatic: banner release 23.4, expected 8.0"):
        record_build(build)
    monkeypatch.setattr(vtm_build, "banner_version", lambda args, pattern: "8.0")
    (build / CONFIG).write_text("QP : 22\n")
    with pytest.raises(BuildError, match=f"{CONFIG} .* is not VTM 8.0's"):
        record_build(build)
    build = _fake_build(tmp_path / "c", monkeypatch, hashes=False)
    assert vtm_build.main(["--record", str(build)]) == 0
    recorded = json.loads((build / "build.json").read_text())
    assert recorded["commit"] == VTM_COMMIT and recorded["sha256"][CONFIG] == vtm.CONFIG_SHA256
    assert VtmCodec(str(build)).version() == PINNED_VERSION
    (build / "build.json").write_text(json.dumps({"release": "9.0", "commit": "abc"}))
    with pytest.raises(BuildError, match="not a build of VTM 8.0"):
        record_build(build)
    with pytest.raises(BuildError, match="no .*build.json: not a build of anchors.vtm_build"):
        record_build(tmp_path)


@pytest.mark.parametrize(
    ("mode", "body", "error"),
    [
        (0o644, "exit 0", "EncoderAppStatic is not executable"),
        (0o755, None, "VTM EncoderApp: cannot run .*EncoderAppStatic: Exec format error"),
        (0o755, "exit 0", "EncoderApp exited 0 without writing a bitstream"),
    ],
)
def test_a_broken_encoder_fails_in_one_line(tmp_path, monkeypatch, crop, mode, body, error):
    build = _fake_build(tmp_path / "b", monkeypatch)
    if body is None:
        (build / ENCODER).write_bytes(b"\x7fELF not a program")
    else:
        (build / ENCODER).write_text(SCRIPT.format(body=body))
    (build / ENCODER).chmod(mode)
    codec = VtmCodec(str(build))
    assert codec.available == (mode == 0o755)
    with pytest.raises(AnchorError, match=error) as failure:
        codec.encode(crop, 32)
    assert "\n" not in str(failure.value)
    if mode != 0o755:
        assert error in codec.unavailable and "DecoderApp" not in codec.unavailable


def test_a_broken_decoder_fails_in_one_line_and_soon(tmp_path, monkeypatch):
    build = _fake_build(tmp_path / "b", monkeypatch)
    (build / DECODER).write_bytes(b"\x7fELF not a program")
    with pytest.raises(AnchorError, match="VTM DecoderApp: cannot run .*Exec format error"):
        VtmCodec(str(build)).decode(struct.pack(">HH", 8, 8) + b"stream")
    (build / DECODER).chmod(0o600)
    codec = VtmCodec(str(build))
    assert not codec.available and "DecoderAppStatic is not executable" in codec.unavailable
    timeouts = []

    def fake_run_tool(args, what, timeout):
        timeouts.append((what, timeout))
        if what.endswith("EncoderApp"):
            Path(args[args.index("-b") + 1]).write_bytes(b"stream")
        else:
            Path(args[args.index("-o") + 1]).write_bytes(bytes(3 * 2 * 8 * 8))
        return ""

    monkeypatch.setattr(vtm, "run_tool", fake_run_tool)
    (build / DECODER).chmod(0o755)
    codec = VtmCodec(str(build))
    codec.decode(codec.encode(np.zeros((8, 8, 3), np.uint8), 32))
    (_, encode_s), (_, decode_s) = timeouts
    assert decode_s <= 300 < encode_s


def test_a_size_record_that_does_not_fit_the_decoded_picture_is_refused(tmp_path, monkeypatch):
    # DecoderApp writes a 64x48 picture (10-bit 4:4:4): records that pad to another size fail;
    # one that pads to 64x48 (57..64 x 41..48) cannot be told from the right one (docstring).
    picture = 3 * 2 * 64 * 48
    decoder = (
        f'while [ $# -gt 0 ]; do [ "$1" = -o ] && head -c {picture} /dev/zero > "$2"; shift; done'
    )
    build = _fake_build(tmp_path / "b", monkeypatch, decoder=decoder)
    codec = VtmCodec(str(build))
    assert codec.decode(struct.pack(">HH", 64, 48) + b"stream").shape == (48, 64, 3)
    assert codec.decode(struct.pack(">HH", 60, 44) + b"stream").shape == (44, 60, 3)  # the limit
    for width, height in ((56, 40), (72, 48), (64, 56)):
        record = struct.pack(">HH", width, height)
        coded = f"{-(-width // 8) * 8}x{-(-height // 8) * 8}"
        with pytest.raises(AnchorError, match=f"size record {width}x{height} \\(coded {coded}\\) "
                           "does not fit the decoded picture \\(3072 pixels\\)"):  # fmt: skip
            codec.decode(record + b"stream")


def test_a_failed_build_leaves_no_clone_and_keeps_only_logs(tmp_path, monkeypatch, capsys):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    dest = tmp_path / "dest"
    assert vtm_build.main(["--source", str(tmp_path / "nonexistent"), "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    assert "git clone failed" in err and "kept" not in err and str(temp) not in err
    assert list(temp.iterdir()) == [] and not dest.exists()

    other = tmp_path / "other"  # a repository without VTM_COMMIT: cloned, then refused
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    subprocess.run(["git", "-C", str(other), "-c", "user.name=t", "-c", "user.email=t@t",
                    "commit", "-q", "--allow-empty", "-m", "x"], check=True)  # fmt: skip
    assert vtm_build.main(["--source", str(other), "--dest", str(dest)]) == 1
    err = capsys.readouterr().err
    assert f"git checkout {VTM_COMMIT} failed" in err and "kept" not in err
    assert list(temp.iterdir()) == []

    def failing_build(source, dest, jobs, work):
        (work / "src").mkdir()
        (work / "src" / "CMakeLists.txt").write_text("x")
        vtm_build._run(["sh", "-c", "echo configuring; echo 'CMake Error: no'; exit 1"], "cmake",
                       work, work / "cmake.log")  # fmt: skip

    monkeypatch.setattr(vtm_build, "build", failing_build)
    assert vtm_build.main(["--dest", str(dest)]) == 1
    err = capsys.readouterr().err.strip()
    (work,) = temp.iterdir()
    assert [p.name for p in work.iterdir()] == ["cmake.log"]
    assert err == f"vtm_build: cmake failed: CMake Error: no (log: {work / 'cmake.log'})"


@pytest.mark.skipif(
    not VtmCodec().available, reason="no VTM build here (python -m anchors.vtm_build)"
)
def test_a_real_build_is_pinned_only_with_its_hashes_and_its_configuration(tmp_path):
    build = tmp_path / "VTM-8.0"
    shutil.copytree(vtm_dir(), build)
    record = json.loads((build / "build.json").read_text())
    record.pop("sha256", None)
    (build / "build.json").write_text(json.dumps(record))
    assert VtmCodec(str(build)).version() != PINNED_VERSION
    record_build(build)
    assert VtmCodec(str(build)).version() == PINNED_VERSION
    with (build / CONFIG).open("a") as config:
        config.write("QP : 22\n")
    edited = VtmCodec(str(build)).version()
    assert edited.startswith("VTM 8.0 EncoderApp/DecoderApp (encoder_intra_vtm.cfg sha256 ")
    with pytest.raises(BuildError, match="is not VTM 8.0's"):
        record_build(build)


@pytest.mark.skipif(
    not VtmCodec().available, reason="no VTM build here (python -m anchors.vtm_build)"
)
def test_real_vtm_refuses_a_size_record_of_another_coded_size():
    codec = VtmCodec()
    image = np.tile(np.arange(0, 240, 20, dtype=np.uint8)[None, :, None], (9, 1, 3))  # 12x9
    stream = codec.encode(image, 32)
    assert stream[:4] == struct.pack(">HH", 12, 9) and codec.decode(stream).shape == image.shape
    with pytest.raises(AnchorError, match="size record 8x8 \\(coded 8x8\\) does not fit"):
        codec.decode(struct.pack(">HH", 8, 8) + stream[4:])
