import pytest

from anchors.jpeg import JpegCodec
from ctc.codec import Codec
from ctc.registry import CodecLoadError, load_codec, load_codecs, registered


def test_the_project_registers_its_codecs():
    assert {"jpeg", "nic"} <= set(registered())
    jpeg = load_codec("jpeg")
    assert isinstance(jpeg, JpegCodec) and isinstance(jpeg, Codec)


def test_unknown_name():
    with pytest.raises(CodecLoadError, match="'nope': not registered in entry-point group"):
        load_codec("nope")


@pytest.mark.parametrize(
    "name,reason",
    [
        ("missing_module", "failed to load: ModuleNotFoundError: No module named"),
        ("missing_model", "failed to load: FileNotFoundError: model weights not found"),
        ("not_a_codec", "does not implement the Codec interface"),
    ],
)
def test_a_broken_codec_is_an_error_for_that_codec_only(test_codecs, name, reason):
    loaded, errors = load_codecs([name, "jpeg", "quantzlib"])
    assert set(loaded) == {"jpeg", "quantzlib"}
    assert set(errors) == {name}
    assert reason in str(errors[name]) and str(errors[name]).startswith(f"codec {name!r}: ")
