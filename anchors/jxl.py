"""JPEG XL (ISO/IEC 18181) anchor: libjxl through the FFmpeg of the imageio-ffmpeg wheel.

Encoding: 8-bit RGB (taken as sRGB) to libjxl's lossy VarDCT mode with XYB, effort 7 (libjxl's
default), one thread; the knob is libjxl's Butteraugli distance 0.05..15 (continuous, rate falls
as it grows). The file is the bare JPEG XL codestream that FFmpeg's libjxl encoder writes.
Decoding is libjxl's, through FFmpeg, to 8-bit RGB.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np

from anchors.ffmpeg import (
    AnchorError,
    ffmpeg_exe,
    ffmpeg_version,
    raw_input_args,
    run_bytes,
    run_tool,
)
from anchors.inputs import check_image
from anchors.pillow_io import pillow_decode
from ctc.codec import Knob

EFFORT = 7


def jxl_command(
    ffmpeg: str, rgb: Path, width: int, height: int, distance: float, out: Path
) -> list[str]:
    """The FFmpeg command that encodes one raw RGB frame with libjxl."""
    return [
        ffmpeg, "-v", "error", "-nostdin", "-y", *raw_input_args("rgb24", width, height, rgb),
        "-frames:v", "1", "-c:v", "libjxl", "-distance", f"{distance:.6g}",
        "-effort", str(EFFORT), "-threads", "1", "-f", "image2pipe", str(out),
    ]  # fmt: skip


_VERSION = re.compile(r"^libjxl via (FFmpeg \S+) .*\(lossy VarDCT, XYB, effort (\d+)\)")


def label_for(version: str) -> str | None:
    """What ran, from a version string of this anchor: "libjxl VarDCT, effort 7, via FFmpeg
    9.0.2" (this FFmpeg build does not say libjxl's version); None for a version it does not
    know."""
    match = _VERSION.match(version)
    return f"libjxl VarDCT, effort {match.group(2)}, via {match.group(1)}" if match else None


class JxlCodec:
    """libjxl lossy (VarDCT, XYB), effort 7; knob: Butteraugli distance."""

    name = "jxl"
    extension = "jxl"
    knob = Knob(name="distance", kind="continuous", low=0.05, high=15.0, rate_increases=False)

    def peak_memory(self, width: int, height: int) -> int:
        """The most bytes coding a width x height image takes (ctc.codec), with a margin over the
        110-121 bytes/pixel measured at 2048x1536 and 4096x3072 (this process and FFmpeg's
        libjxl)."""
        return 100_000_000 + 160 * width * height

    def version(self) -> str:
        return f"libjxl via {ffmpeg_version()} (lossy VarDCT, XYB, effort {EFFORT})"

    label_for = staticmethod(label_for)

    @property
    def label(self) -> str:
        """What runs, in a few words (label_for of the version)."""
        return label_for(self.version()) or self.name

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        height, width = check_image(image, "jxl")
        distance = float(knob_value)
        if not self.knob.low <= distance <= self.knob.high:
            raise ValueError(f"jxl: distance {distance} outside 0.05..15")
        with tempfile.TemporaryDirectory(prefix="ctc-jxl-") as tmp:
            rgb, out = Path(tmp, "in.rgb"), Path(tmp, "out.jxl")
            rgb.write_bytes(np.ascontiguousarray(image).tobytes())
            run_tool(jxl_command(ffmpeg_exe(), rgb, width, height, distance, out), "ffmpeg libjxl")
            data = out.read_bytes()
        if not data:
            raise AnchorError("jxl: libjxl wrote an empty file")
        return data

    def decode(self, data: bytes) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="ctc-jxl-") as tmp:
            path = Path(tmp, "in.jxl")
            path.write_bytes(data)
            args = [ffmpeg_exe(), "-v", "error", "-nostdin", "-threads", "1", "-i", str(path)]
            args += ["-frames:v", "1", "-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "-"]
            ppm = run_bytes(args, "ffmpeg libjxl decoder")
        return pillow_decode(ppm, "PPM", "jxl (decoded picture)")
