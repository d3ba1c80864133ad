import io

import numpy as np
import PIL
import pytest
from PIL import Image, features
from skimage import data as skdata

from anchors.jpeg import JpegCodec, JpegDecodeError
from ctc.codec import Codec


@pytest.fixture(scope="module")
def image():
    return np.ascontiguousarray(skdata.chelsea()[60:157, 100:231])  # odd sides


def test_is_a_ctc_codec_with_an_integer_rate_increasing_knob():
    codec = JpegCodec()
    assert isinstance(codec, Codec)
    assert (codec.knob.kind, codec.knob.low, codec.knob.high) == ("integer", 1, 95)
    assert codec.knob.rate_increases and codec.name == "jpeg"


def test_version_names_pillow_and_its_libjpeg():
    version = JpegCodec().version()
    assert f"Pillow {PIL.__version__}" in version
    lib = features.version_feature("libjpeg_turbo") or features.version_codec("jpg")
    assert lib in version


def test_roundtrip_is_a_baseline_420_jpeg_that_pillow_decodes_identically(image):
    codec = JpegCodec()
    data = codec.encode(image, 75)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.size == (131, 97)
        assert not im.info.get("progressive") and not im.info.get("progression")
        assert im.layer[1][1:3] == (1, 1) and im.layer[0][1:3] == (2, 2)  # 4:2:0 sampling
        expected = np.asarray(im.convert("RGB"))
    decoded = codec.decode(data)
    assert decoded.dtype == np.uint8 and decoded.shape == image.shape
    assert np.array_equal(decoded, expected)
    assert np.abs(decoded.astype(int) - image).mean() < 6


def test_rate_grows_with_quality_and_encoding_is_deterministic(image):
    codec = JpegCodec()
    sizes = [len(codec.encode(image, q)) for q in (5, 25, 50, 75, 95)]
    assert sizes == sorted(sizes) and len(set(sizes)) == 5
    assert codec.encode(image, 50) == codec.encode(image, 50.2)  # rounds to a whole quality


def test_bad_input_is_a_clear_error(image):
    codec = JpegCodec()
    with pytest.raises(ValueError, match="quality 96 outside 1..95"):
        codec.encode(image, 96)
    with pytest.raises(ValueError, match="expected uint8"):
        codec.encode(image.astype(np.float32), 50)
    with pytest.raises(JpegDecodeError, match="not a decodable JPEG"):
        codec.decode(b"definitely not a jpeg")
    data = codec.encode(image, 50)
    with pytest.raises(JpegDecodeError):
        codec.decode(data[: len(data) // 2])
    png = io.BytesIO()
    Image.fromarray(image).save(png, "PNG")
    with pytest.raises(JpegDecodeError):
        codec.decode(png.getvalue())
