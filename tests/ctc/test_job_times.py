"""EncT / DecT are one encode at the final knob and one decode, for every kind of rate control."""

import pytest
from ctc_testing import SelfMatchingJpeg
from PIL import Image

from ctc.condition import load_condition
from ctc.images import pixel_sha256
from ctc.job import Job, JobError, execute


class CountingSelfMatchingJpeg(SelfMatchingJpeg):
    """Records the quality of every encode, so a test sees which encodes the job made."""

    def __init__(self) -> None:
        super().__init__()
        self.encodes: list[float] = []

    def encode(self, image, knob_value):
        self.encodes.append(float(knob_value))
        return super().encode(image, knob_value)


class Unreproducible(SelfMatchingJpeg):
    """Its rate control returns a file that its encode does not give at the returned knob."""

    def encode_to_target(self, image, target_bpp, min_bpp, max_bpp):
        quality, data = super().encode_to_target(image, target_bpp, min_bpp, max_bpp)
        return quality, data + b"\0"


def _job(tmp_path, crops, codec_name: str) -> Job:
    image = crops["astro"]
    path = tmp_path / "astro.png"
    Image.fromarray(image).save(path)
    condition = load_condition("quick")
    return Job(
        codec_name, "v", "astro", str(path), pixel_sha256(image), 1.0, condition,
        str(tmp_path), "bitstreams/astro.jpg",
    )  # fmt: skip


def test_a_self_matching_codec_is_timed_on_one_encode_at_its_final_knob(tmp_path, crops):
    codec = CountingSelfMatchingJpeg()
    row = execute(_job(tmp_path, crops, "selfjpeg"), codec)
    assert row["rate_control"] == "codec"
    search = codec.encodes[:-1]
    assert len(search) > 3  # its scan made several encodes ...
    assert codec.encodes[-1] == row["knob_value"]  # ... and the job timed one more, at the knob
    assert row["encode_seconds"] < row["rate_control_seconds"]


def test_a_knob_that_does_not_reproduce_the_file_fails_the_job(tmp_path, crops):
    with pytest.raises(JobError, match="not the .* bytes its rate control returned"):
        execute(_job(tmp_path, crops, "unreproducible"), Unreproducible())
