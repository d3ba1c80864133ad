"""Anchors name what actually runs: label_for(version) of each anchor, for the version strings
its own version() writes (so a change of one without the other fails here), for the frozen
Kodak results, and ctc.report.data.codec_label, which reports use for rows of any run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import anchors.bpg as bpg
import anchors.vtm as vtm
import anchors.vvc as vvc
from ctc.report import data as report_data
from ctc.report.data import codec_label

MANIFEST = Path(__file__).resolve().parents[2] / "anchors/results/kodak/manifest.json"
FROZEN = {name: a["version"] for name, a in json.loads(MANIFEST.read_text())["anchors"].items()}


def test_the_frozen_anchors_are_named_for_what_ran():
    assert vvc.label_for(FROZEN["vvc"]) == (
        "VVenC 1.15.0-dev preset fast, 4:2:0 10-bit, via FFmpeg — stand-in for VTM"
    )
    assert bpg.label_for(FROZEN["bpg"]) == (
        "x265 4.3+49 preset veryslow, 4:4:4 8-bit, via FFmpeg — bpgenc-equivalent stand-in for BPG"
    )
    assert codec_label("vvc", FROZEN["vvc"]) == vvc.label_for(FROZEN["vvc"])
    assert codec_label("bpg", FROZEN["bpg"]) == bpg.label_for(FROZEN["bpg"])


def _bare(cls, **attributes):
    """An anchor object without its constructor (which looks for binaries)."""
    obj = cls.__new__(cls)
    obj.__dict__.update(attributes, _version=None)
    return obj


@pytest.mark.parametrize("preset", vvc.VVENC_PRESETS)
def test_vvc_labels_follow_its_version_strings(monkeypatch, preset):
    monkeypatch.setattr(vvc, "encoder_library_version", lambda name: "VVenC 1.16.0")
    monkeypatch.setattr(vvc, "ffmpeg_version", lambda: "FFmpeg 9.1 (n9.1-3-gabc)")
    codec = _bare(vvc.VvcCodec, preset=preset)
    assert codec.label == (
        f"VVenC 1.16.0 preset {preset}, 4:2:0 10-bit, via FFmpeg — stand-in for VTM"
    )


def test_vtm_labels_follow_its_version_strings(monkeypatch, tmp_path):
    pinned = vtm.VtmCodec(str(tmp_path))  # no build there: the pinned version, frozen rows only
    assert pinned.label == "VTM 8.0 (encoder_intra_vtm.cfg), 4:4:4 10-bit"
    other = tmp_path / "other"
    other.mkdir()
    for name in ("EncoderApp", "DecoderApp", vtm.CONFIG):
        (other / name).write_text("#")
    monkeypatch.setattr(vtm, "banner_version", lambda args, pattern: "23.4")
    own = vtm.VtmCodec(str(other))  # a VTM of the user's: its banner and configuration hash
    assert own.label.startswith("VTM 23.4 (encoder_intra_vtm.cfg sha256 ")
    assert own.label.endswith("), 4:4:4 10-bit") and "stand-in" not in own.label


@pytest.mark.parametrize("level", [1, 5, 8, 9])
def test_bpg_labels_follow_its_version_strings(monkeypatch, level):
    monkeypatch.setattr(bpg, "encoder_library_version", lambda name: "x265 4.4+2-0123abcd")
    monkeypatch.setattr(bpg, "ffmpeg_version", lambda: "FFmpeg 9.1 (n9.1-3-gabc)")
    codec = _bare(bpg.BpgCodec, external=False, level=level)
    assert codec.label == (
        f"x265 4.4+2 preset {bpg.X265_PRESETS[level]}, 4:4:4 8-bit, via FFmpeg — "
        "bpgenc-equivalent stand-in for BPG"
    )
    monkeypatch.setattr(bpg, "banner_version", lambda args, pattern: "0.9.8")
    real = _bare(bpg.BpgCodec, external=True, bpgenc="bpgenc", level=level)
    assert real.label == f"bpgenc 0.9.8 level {level}, 4:4:4 8-bit"


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("jpeg", ["libjpeg", "baseline 4:2:0", "Pillow"]),
        ("jpeg2000", ["OpenJPEG", "9/7", "Pillow"]),
        ("webp", ["libwebp", "method 6", "Pillow"]),
        ("avif", ["libaom", "speed 6", "4:4:4", "libavif"]),
        ("jxl", ["libjxl", "effort 7", "FFmpeg"]),
    ],
)
def test_the_other_anchors_name_their_library(name, words):
    from ctc.registry import CodecLoadError, load_codec

    try:
        codec = load_codec(name)
    except CodecLoadError as e:
        pytest.skip(f"{name} does not load here: {e}")
    version = codec.version()
    assert codec.label == type(codec).label_for(version) == codec_label(name, version)
    for word in words:
        assert word in codec.label, (word, codec.label)
    assert "stand-in" not in codec.label


def test_labels_of_unknown_versions_and_codecs_fall_back_to_the_name(monkeypatch):
    assert vvc.label_for("something else") is None and bpg.label_for("") is None
    assert codec_label("vvc", "something else") == "vvc"
    assert codec_label("vvc", "") == "vvc"
    assert codec_label("not-registered", FROZEN["vvc"]) == "not-registered"
    assert codec_label("nic:some-model", "nic 0.3.0, model x") == "nic:some-model"
    assert codec_label("anchors.vvc:VvcCodec", FROZEN["vvc"]) == "anchors.vvc:VvcCodec"

    def broken(version):
        raise RuntimeError("a codec's own bug")

    monkeypatch.setattr(report_data, "_label_function", lambda name: broken)
    assert codec_label("vvc", FROZEN["vvc"]) == "vvc"  # a report is still written


def test_a_learned_codec_without_labels_is_not_imported_for_one():
    import subprocess
    import sys

    code = (
        "import sys; from ctc.report.data import codec_label; "
        "assert codec_label('nic', 'nic 0.3.0') == 'nic'; "
        "assert codec_label('vvc', sys.argv[1]).startswith('VVenC'); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, FROZEN["vvc"]], capture_output=True,
                         text=True, check=True)  # fmt: skip
    assert out.stdout.strip() == "False"
