import numpy as np
import pytest

from anchors.avif import AvifCodec
from anchors.jpeg2000 import Jpeg2000Codec
from anchors.jxl import JxlCodec, jxl_command
from anchors.pillow_io import PillowDecodeError
from anchors.webp import WebpCodec
from ctc.codec import Codec
from ctc.metrics.psnr import psnr_rgb
from ctc.ratecontrol import Tolerance, match_rate
from ctc.registry import load_codec

# (codec, low-rate knob, high-rate knob, words its version must hold)
CASES = {
    "jpeg2000": (Jpeg2000Codec, 0.5, 3.0, ("OpenJPEG", "9/7")),
    "webp": (WebpCodec, 20, 90, ("libwebp", "method 6")),
    "avif": (AvifCodec, 20, 90, ("libavif", "libaom", "444")),
    "jxl": (JxlCodec, 6.0, 0.5, ("libjxl", "FFmpeg")),
}


@pytest.mark.parametrize("name", CASES)
def test_registered_roundtrip_rate_order_and_determinism(name, odd_crop):
    cls, low, high, words = CASES[name]
    codec = load_codec(name)
    assert isinstance(codec, cls) and isinstance(codec, Codec)
    assert all(w in codec.version() for w in words)
    small, large = codec.encode(odd_crop, low), codec.encode(odd_crop, high)
    assert len(small) < len(large)
    decoded_small, decoded_large = codec.decode(small), codec.decode(large)
    assert decoded_large.shape == odd_crop.shape and decoded_large.dtype == np.uint8
    assert psnr_rgb(odd_crop, decoded_small) < psnr_rgb(odd_crop, decoded_large)
    assert psnr_rgb(odd_crop, decoded_large) > 30
    assert codec.encode(odd_crop, high) == large


@pytest.mark.parametrize("name", ["jpeg2000", "webp", "avif"])
def test_pillow_anchors_reject_other_files(name, crop):
    codec = CASES[name][0]()
    with pytest.raises(PillowDecodeError, match="not a decodable"):
        codec.decode(b"\x00" * 40)


def test_jpeg2000_hits_a_target_through_rate_control(crop):
    result = match_rate(Jpeg2000Codec(), crop, 1.0, Tolerance(-5, 5))
    assert result.in_tolerance and result.n_encodes <= 6


def test_jxl_command_and_range(tmp_path, crop):
    cmd = jxl_command("ffmpeg", tmp_path / "a.rgb", 64, 48, 1.5, tmp_path / "o.jxl")
    assert cmd[cmd.index("-distance") + 1] == "1.5" and cmd[cmd.index("-c:v") + 1] == "libjxl"
    with pytest.raises(ValueError, match="distance 20.0 outside"):
        JxlCodec().encode(crop, 20.0)
