import pytest

from anchors.ffmpeg import AnchorError
from anchors.vvc import CROP_MAGIC, VvcCodec, vvenc_command
from ctc.codec import Codec
from ctc.metrics.psnr import psnr_rgb


@pytest.fixture(scope="module")
def codec():
    return VvcCodec(preset="faster")


def test_is_a_ctc_codec_whose_version_names_vvenc_and_its_preset(codec):
    assert isinstance(codec, Codec) and codec.name == "vvc"
    assert (codec.knob.low, codec.knob.high, codec.knob.rate_increases) == (0, 63, False)
    version = codec.version()
    assert version.startswith("VVenC ") and "preset faster" in version and "420 10 bit" in version
    assert VvcCodec().preset == "fast"  # the frozen run's default
    assert codec.label.endswith("stand-in for VTM")


def test_even_sides_give_a_raw_vvc_stream_odd_sides_a_crop_record(codec, crop, odd_crop):
    even = codec.encode(crop, 32)
    assert even[:4] in (b"\x00\x00\x00\x01",) or even[:3] == b"\x00\x00\x01"
    decoded = codec.decode(even)
    assert decoded.shape == crop.shape and psnr_rgb(crop, decoded) > 28
    odd = codec.encode(odd_crop, 32)
    assert odd[:4] == CROP_MAGIC and odd[4:8] == bytes([0, 67, 0, 51])
    assert codec.decode(odd).shape == odd_crop.shape


def test_rate_falls_with_qp_and_encoding_is_deterministic(codec, crop):
    sizes = [len(codec.encode(crop, qp)) for qp in (17, 32, 47)]
    assert sizes[0] > sizes[1] > sizes[2]
    assert codec.encode(crop, 27) == codec.encode(crop, 27)


def test_errors_are_clear(codec, crop):
    with pytest.raises(ValueError, match="QP 64 outside 0..63"):
        codec.encode(crop, 64)
    with pytest.raises(AnchorError, match="ffmpeg vvc decoder failed"):
        codec.decode(b"\x00\x00\x01garbage")
    with pytest.raises(AnchorError, match="preset must be one of"):
        VvcCodec(preset="placebo")


def test_command_lines(tmp_path):
    cmd = vvenc_command("ffmpeg", tmp_path / "i.yuv", 64, 48, 37, "fast", tmp_path / "o.266")
    for flag, value in (("-pix_fmt", "yuv420p10le"), ("-c:v", "libvvenc"), ("-qp", "37"),
                        ("-qpa", "0"), ("-preset", "fast")):  # fmt: skip
        assert cmd[cmd.index(flag) + 1] == value
    assert cmd[-3:] == ["-f", "vvc", str(tmp_path / "o.266")]
