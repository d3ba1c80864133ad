"""VVC anchor, the embedded stand-in for VTM: VVenC through FFmpeg.

libvvenc through the FFmpeg of the imageio-ffmpeg wheel. libvvenc accepts only yuv420p10le (it
warns and codes 4:2:0 when asked for 4:4:4), so the input is BT.709 full-range Y'CbCr at 10 bits
with 4:2:0 chroma (2x2 mean, centre siting), one intra picture at constant QP, perceptual QP
adaptation off (-qpa 0: it trades PSNR for subjective quality), one thread; FFmpeg's own VVC
decoder decodes it, chroma is upsampled bilinearly and converted back to 8-bit RGB. libvvenc
needs even sides: an odd side is padded by repeating the last row/column and the file then
starts with an 8-byte crop record (b"CROP", width, height as big-endian 16-bit) before the raw
VVC stream; even-sided images (Kodak) are the raw stream alone.

It is not the reference: on Kodak it is a few percent better than BPG where VTM is about a
fifth better (docs/anchors.md), so reports name it as a stand-in; the reference software is the
`vtm` anchor (anchors.vtm). VVenC preset: $CTC_VVENC_PRESET (faster, fast, medium, slow,
slower; default fast, chosen for the cost of the frozen Kodak run: docs/anchors.md).
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from pathlib import Path

import numpy as np

from anchors import FROZEN_RESULTS
from anchors.colour import yuv_to_rgb
from anchors.ffmpeg import (
    AnchorError,
    encoder_library_version,
    ffmpeg_decode_raw,
    ffmpeg_exe,
    ffmpeg_version,
    raw_input_args,
    read_planes,
    run_tool,
    write_planes,
)
from anchors.inputs import check_image, check_qp
from ctc.codec import Knob
from ctc.metrics.colour import rgb_to_yuv

VVENC_PRESETS = ("faster", "fast", "medium", "slow", "slower")
DEFAULT_PRESET = "fast"
BIT_DEPTH = 10
CROP_MAGIC = b"CROP"


def vvenc_command(
    ffmpeg: str, yuv: Path, width: int, height: int, qp: int, preset: str, out: Path
) -> list[str]:
    """The FFmpeg command of the embedded encode (libvvenc, 4:2:0 10 bit, intra, QP)."""
    return [
        ffmpeg, "-v", "error", "-nostdin", "-y",
        *raw_input_args("yuv420p10le", width, height, yuv), "-frames:v", "1",
        "-c:v", "libvvenc", "-preset", preset, "-qp", str(qp), "-qpa", "0", "-threads", "1",
        "-f", "vvc", str(out),
    ]  # fmt: skip


_VVENC_VERSION = re.compile(
    r"^(VVenC \S+) via FFmpeg .*\(libvvenc preset (\w+),.*? (\d)(\d)(\d) (\d+) bit"
)


def label_for(version: str) -> str | None:
    """What ran, from a version string of this anchor (rows of any run, frozen rows too):
    "VVenC 1.15.0-dev preset fast, 4:2:0 10-bit, via FFmpeg — stand-in for VTM"; None for a
    version it does not know."""
    match = _VVENC_VERSION.match(version)
    if match:
        encoder, preset, *chroma, bits = match.groups()
        return (f"{encoder} preset {preset}, {':'.join(chroma)} {bits}-bit, via FFmpeg — "
                "stand-in for VTM")  # fmt: skip
    return None


def _pad_even(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class VvcCodec:
    """VVC intra by VVenC, the stand-in for VTM; knob: QP 0..63 (rate falls as QP grows)."""

    name = "vvc"
    frozen_results = FROZEN_RESULTS  # ctc.frozen: rows frozen on Kodak (anchors/results/kodak)
    extension = "266"
    knob = Knob(name="qp", kind="integer", low=0, high=63, rate_increases=False)

    def __init__(self, preset: str | None = None) -> None:
        self.preset = preset or os.environ.get("CTC_VVENC_PRESET", DEFAULT_PRESET)
        if self.preset not in VVENC_PRESETS:
            raise AnchorError(f"vvc: VVenC preset must be one of {', '.join(VVENC_PRESETS)}, "
                              f"not {self.preset!r}")  # fmt: skip
        self._version: str | None = None

    def peak_memory(self, width: int, height: int) -> int:
        """The most bytes coding a width x height image takes (ctc.codec), with a margin over the
        216-253 bytes/pixel measured at 2048x1536 and 4096x3072 (this process and FFmpeg's VVenC or
        VVC decoder)."""
        return 100_000_000 + 320 * width * height

    def version(self) -> str:
        if self._version is None:
            self._version = (
                f"{encoder_library_version('libvvenc')} via {ffmpeg_version()} (libvvenc preset "
                f"{self.preset}, qpa 0, intra, 420 10 bit, ycbcr709 full range; FFmpeg VVC "
                "decoder)"
            )
        return self._version

    label_for = staticmethod(label_for)

    @property
    def label(self) -> str:
        """What runs, in a few words (label_for of the version)."""
        return label_for(self.version()) or self.name

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        height, width = check_image(image, "vvc")
        qp = check_qp(knob_value, 0, 63, "vvc")
        with tempfile.TemporaryDirectory(prefix="ctc-vvc-") as tmp:
            yuv, out = Path(tmp, "in.yuv"), Path(tmp, "out.bin")
            padded = _pad_even(image)
            ph, pw = padded.shape[:2]
            write_planes(yuv, rgb_to_yuv(padded, "bt709", BIT_DEPTH, "420"), BIT_DEPTH)
            cmd = vvenc_command(ffmpeg_exe(), yuv, pw, ph, qp, self.preset, out)
            run_tool(cmd, "ffmpeg libvvenc")
            stream = out.read_bytes()
        if not stream:
            raise AnchorError("vvc: libvvenc wrote an empty stream")
        if (ph, pw) != (height, width):
            return CROP_MAGIC + struct.pack(">HH", width, height) + stream
        return stream

    def decode(self, data: bytes) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="ctc-vvc-") as tmp:
            bitstream = Path(tmp, "in.bin")
            crop = None
            if data[:4] == CROP_MAGIC:
                if len(data) < 8:
                    raise AnchorError("vvc: truncated crop record")
                crop = struct.unpack(">HH", data[4:8])
                data = data[8:]
            bitstream.write_bytes(data)
            width, height, raw = ffmpeg_decode_raw(bitstream, "yuv420p10le", "ffmpeg vvc decoder")
        shapes = [(height, width), *[((height + 1) // 2, (width + 1) // 2)] * 2]
        y, cb, cr = read_planes(raw, shapes, BIT_DEPTH, "vvc")
        rgb = yuv_to_rgb(y, cb, cr, "bt709", BIT_DEPTH)
        if crop:
            w, h = crop
            if w > width or h > height:
                raise AnchorError(f"vvc: crop {w}x{h} larger than the coded {width}x{height}")
            rgb = np.ascontiguousarray(rgb[:h, :w])
        return rgb
